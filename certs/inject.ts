import type { JsonPatchOperation, WebhookConfigurationClient, WebhookConfigurationObject, WebhookKind } from './cluster.js'
import { WEBHOOK_KINDS } from './cluster.js'
import { ConflictError } from './errors.js'

export type InjectionResult =
  | { readonly kind: WebhookKind; readonly found: false }
  | {
      readonly kind: WebhookKind
      readonly found: true
      /** Every webhook of the configuration, by name. */
      readonly webhooks: readonly string[]
      /** The webhooks whose caBundle was different and has been set. */
      readonly changed: readonly string[]
    }

// Two writers (another replica, `kubectl apply` of the configuration) can reorder the webhook list
// between our read and our patch; the patch's `test` ops then fail and we read again.
const ATTEMPTS = 3

/**
 * The JSON Patch that sets caBundle on every webhook of `configuration` whose caBundle differs, each
 * guarded by a `test` of the webhook's name so that a list reordered since the read fails the patch
 * instead of writing into the wrong webhook. Empty when nothing differs.
 */
export function caBundlePatch(configuration: WebhookConfigurationObject, caBundle: string): JsonPatchOperation[] {
  const operations: JsonPatchOperation[] = []
  for (const [index, webhook] of (configuration.webhooks ?? []).entries()) {
    if (webhook.clientConfig?.caBundle === caBundle) continue
    operations.push({ op: 'test', path: `/webhooks/${index}/name`, value: webhook.name })
    // `add` on an object member replaces it when present (RFC 6902 §4.1), so it works with or
    // without an existing caBundle; clientConfig itself is required by the API.
    operations.push({ op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle })
  }
  return operations
}

/**
 * Sets `caBundle` (base64 PEM) on every webhook of nlb-guard's own MutatingWebhookConfiguration and
 * ValidatingWebhookConfiguration called `name`: configurations of other names are never read. A
 * configuration that does not exist is reported, not created (it comes from the install manifests).
 */
export async function injectCaBundle(client: WebhookConfigurationClient, name: string, caBundle: string): Promise<InjectionResult[]> {
  const results: InjectionResult[] = []
  for (const kind of WEBHOOK_KINDS) results.push(await injectInto(client, kind, name, caBundle))
  return results
}

async function injectInto(client: WebhookConfigurationClient, kind: WebhookKind, name: string, caBundle: string): Promise<InjectionResult> {
  for (let attempt = 1; ; attempt++) {
    const configuration = await client.read(kind, name)
    if (configuration === undefined) return { kind, found: false }
    const webhooks = (configuration.webhooks ?? []).map((webhook) => webhook.name)
    const operations = caBundlePatch(configuration, caBundle)
    if (operations.length === 0) return { kind, found: true, webhooks, changed: [] }
    try {
      await client.patch(kind, name, operations)
    } catch (error: unknown) {
      if (error instanceof ConflictError && attempt < ATTEMPTS) continue
      throw error
    }
    const changed = operations.flatMap((operation) => (operation.op === 'test' ? [String(operation.value)] : []))
    return { kind, found: true, webhooks, changed }
  }
}
