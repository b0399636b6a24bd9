import type { V1ObjectMeta, V1Secret } from '@kubernetes/client-node'
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { errorMessage } from '../lib/errors.js'
import type { JsonPatchOperation, SecretClient, SecretObject, WebhookConfigurationClient, WebhookConfigurationObject, WebhookKind } from './cluster.js'
import { ConflictError } from './errors.js'

/**
 * The cluster connection: a kubeconfig file when given, otherwise client-node's defaults (in-cluster
 * service account, then $KUBECONFIG and ~/.kube/config). `serve` and `certs inject` both use it.
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig()
  if (file === undefined) kubeConfig.loadFromDefault()
  else kubeConfig.loadFromFile(file)
  return kubeConfig
}

/** The Secret calls of certificate bootstrap, through client-node. */
export function kubeSecretClient(kubeConfig: KubeConfig): SecretClient {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  return {
    async read(namespace, name) {
      try {
        return fromSecret(await core.readNamespacedSecret({ name, namespace }))
      } catch (error: unknown) {
        if (statusOf(error) === 404) return undefined
        throw error
      }
    },
    async create(secret) {
      try {
        return fromSecret(await core.createNamespacedSecret({ namespace: secret.metadata.namespace, body: toSecret(secret) }))
      } catch (error: unknown) {
        throw conflictOr(error, `Secret ${secret.metadata.namespace}/${secret.metadata.name} already exists`)
      }
    },
    async replace(secret) {
      const { name, namespace } = secret.metadata
      try {
        return fromSecret(await core.replaceNamespacedSecret({ name, namespace, body: toSecret(secret) }))
      } catch (error: unknown) {
        throw conflictOr(error, `Secret ${namespace}/${name} changed since it was read`)
      }
    },
  }
}

/** Reads and JSON-patches Mutating/ValidatingWebhookConfigurations, through client-node. */
export function kubeWebhookConfigurationClient(kubeConfig: KubeConfig): WebhookConfigurationClient {
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api)
  // client-node picks the patch content type from the first one the API lists; say which we send.
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
  return {
    async read(kind, name) {
      try {
        const object = kind === 'mutating' ? await api.readMutatingWebhookConfiguration({ name }) : await api.readValidatingWebhookConfiguration({ name })
        return fromWebhookConfiguration(object, name)
      } catch (error: unknown) {
        if (statusOf(error) === 404) return undefined
        throw error
      }
    },
    async patch(kind: WebhookKind, name: string, operations: readonly JsonPatchOperation[]) {
      try {
        if (kind === 'mutating') await api.patchMutatingWebhookConfiguration({ name, body: operations }, jsonPatch)
        else await api.patchValidatingWebhookConfiguration({ name, body: operations }, jsonPatch)
      } catch (error: unknown) {
        // A failed `test` operation comes back as 422 Unprocessable Entity (apiserver patch.go wraps
        // jsonpatch errors as Invalid), a concurrent change of the object as 409.
        const status = statusOf(error)
        if (status === 409 || status === 422) {
          const detail = errorMessage(error)
          throw new ConflictError(`${kind} webhook configuration ${name} changed since it was read (HTTP ${status}: ${detail})`, { cause: error })
        }
        throw error
      }
    },
  }
}

function fromSecret(secret: V1Secret): SecretObject {
  const metadata = secret.metadata ?? {}
  return {
    metadata: { ...metadata, name: metadata.name ?? '', namespace: metadata.namespace ?? '' },
    type: secret.type,
    data: secret.data,
  }
}

function toSecret(secret: SecretObject): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    // Everything read comes back, resourceVersion included: that is what makes replace conditional.
    metadata: { ...secret.metadata } as V1ObjectMeta,
    ...(secret.type !== undefined && { type: secret.type }),
    ...(secret.data !== undefined && { data: { ...secret.data } }),
  }
}

function fromWebhookConfiguration(
  object: { metadata?: { name?: string; resourceVersion?: string }; webhooks?: { name: string; clientConfig: { caBundle?: string } }[] },
  name: string,
): WebhookConfigurationObject {
  return {
    metadata: { name: object.metadata?.name ?? name, resourceVersion: object.metadata?.resourceVersion },
    webhooks: (object.webhooks ?? []).map((webhook) => ({ name: webhook.name, clientConfig: { caBundle: webhook.clientConfig.caBundle } })),
  }
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined
}

function conflictOr(error: unknown, message: string): unknown {
  return statusOf(error) === 409 ? new ConflictError(message, { cause: error }) : error
}
