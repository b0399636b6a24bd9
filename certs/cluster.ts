/**
 * The few Kubernetes calls certificate bootstrap and `certs inject` make, behind interfaces small
 * enough for an in-memory fake (test/fixtures/cert-cluster.ts); the client-node implementation is in
 * certs/kube-client.ts. The shapes are the API's own JSON, reduced to the fields we read or write.
 */

/**
 * A Secret as the API returns it: `data` values are base64. Metadata fields we do not read (uid,
 * annotations, ownerReferences, …) are carried through so that a replace keeps them.
 */
export interface SecretObject {
  readonly metadata: {
    readonly name: string
    readonly namespace: string
    /** Set by the apiserver; `replace` sends it back for optimistic concurrency. */
    readonly resourceVersion?: string | undefined
    readonly labels?: Readonly<Record<string, string>> | undefined
    readonly [field: string]: unknown
  }
  readonly type?: string | undefined
  readonly data?: Readonly<Record<string, string>> | undefined
}

export interface SecretClient {
  /** undefined when there is no such Secret (404). */
  read(namespace: string, name: string): Promise<SecretObject | undefined>
  /** Throws ConflictError when it already exists (409 AlreadyExists). */
  create(secret: SecretObject): Promise<SecretObject>
  /** Throws ConflictError when `metadata.resourceVersion` is no longer the current one (409). */
  replace(secret: SecretObject): Promise<SecretObject>
}

export type WebhookKind = 'mutating' | 'validating'

export const WEBHOOK_KINDS: readonly WebhookKind[] = ['mutating', 'validating']

export const WEBHOOK_KIND_NAMES: Readonly<Record<WebhookKind, string>> = {
  mutating: 'MutatingWebhookConfiguration',
  validating: 'ValidatingWebhookConfiguration',
}

/** A Mutating- or ValidatingWebhookConfiguration: only what caBundle injection touches. */
export interface WebhookConfigurationObject {
  readonly metadata: { readonly name: string; readonly resourceVersion?: string | undefined }
  readonly webhooks?: readonly { readonly name: string; readonly clientConfig?: { readonly caBundle?: string | undefined } | undefined }[] | undefined
}

/** RFC 6902 operations, as many as caBundle injection uses. */
export type JsonPatchOperation =
  | { readonly op: 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown }

export interface WebhookConfigurationClient {
  /** undefined when there is no such configuration (404). */
  read(kind: WebhookKind, name: string): Promise<WebhookConfigurationObject | undefined>
  /** A JSON Patch; throws ConflictError when one of its `test` operations fails. */
  patch(kind: WebhookKind, name: string, operations: readonly JsonPatchOperation[]): Promise<void>
}
