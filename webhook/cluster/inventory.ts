import type { KubeConfig } from '@kubernetes/client-node'
import { AppsV1Api, BatchV1Api, CoreV1Api } from '@kubernetes/client-node'
import { errorMessage } from '../../lib/errors.js'

/**
 * What `nlb-guard audit` reads of a live cluster, with list calls only (manifests/audit/rbac.yaml
 * grants exactly these): every Service and Pod, and the ReplicaSets and Jobs that tell which
 * Deployment or CronJob a pod belongs to. Objects come as the apiserver sends them (JSON: dates as
 * strings), pods without managedFields and with only their phase of status, owners as their metadata alone.
 */
export interface ClusterInventory {
  readonly services: readonly unknown[]
  readonly pods: readonly unknown[]
  /** ReplicaSets and Jobs: metadata (name, namespace, ownerReferences) only. */
  readonly owners: ReadonlyArray<{ readonly kind: string; readonly metadata: unknown }>
}

/** Items per list call: the apiserver pages large lists (kubectl uses 500 too). */
const PAGE = 500

type Page = { items: unknown[]; metadata?: { _continue?: string | undefined } | undefined }

async function listAll(what: string, list: (page: { limit: number; _continue?: string }) => Promise<Page>): Promise<unknown[]> {
  const items: unknown[] = []
  let next: string | undefined
  do {
    let page: Page
    try {
      page = await list({ limit: PAGE, ...(next === undefined ? {} : { _continue: next }) })
    } catch (error: unknown) {
      throw new InventoryError(`cannot list ${what}: ${describe(error)}`, { cause: error })
    }
    for (const item of page.items) items.push(item)
    next = page.metadata?._continue || undefined
  } while (next !== undefined)
  return items
}

export class InventoryError extends Error {
  override name = 'InventoryError'
}

export async function readInventory(kubeConfig: KubeConfig): Promise<ClusterInventory> {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  const apps = kubeConfig.makeApiClient(AppsV1Api)
  const batch = kubeConfig.makeApiClient(BatchV1Api)
  const [services, pods, replicaSets, jobs] = await Promise.all([
    listAll('services', (p) => core.listServiceForAllNamespaces(p)),
    listAll('pods', (p) => core.listPodForAllNamespaces(p)),
    listAll('replicasets', (p) => apps.listReplicaSetForAllNamespaces(p)),
    listAll('jobs', (p) => batch.listJobForAllNamespaces(p)),
  ])
  return {
    services: services.map(wire),
    pods: pods.map((pod) => {
      const { status, ...rest } = wire(pod) as { status?: { phase?: unknown }; metadata?: Record<string, unknown> }
      if (rest.metadata !== undefined) delete rest.metadata['managedFields']
      return { ...rest, status: { phase: status?.phase } }
    }),
    owners: [
      ...replicaSets.map((rs) => ({ kind: 'ReplicaSet', metadata: (wire(rs) as { metadata?: unknown }).metadata })),
      ...jobs.map((job) => ({ kind: 'Job', metadata: (wire(job) as { metadata?: unknown }).metadata })),
    ],
  }
}

/** client-node's models hold Date objects where the API sends RFC 3339 strings; the rules read the API's form. */
function wire(object: unknown): unknown {
  return JSON.parse(JSON.stringify(object)) as unknown
}

/** The apiserver's answer, briefly: client-node's ApiException message carries every response header. */
function describe(error: unknown): string {
  const api = error as { code?: unknown; body?: unknown }
  if (typeof api.code === 'number') {
    let message: string | undefined
    try {
      message = (JSON.parse(String(api.body)) as { message?: string }).message
    } catch {
      // not a Status
    }
    return `HTTP ${api.code}${message === undefined ? '' : `: ${message.slice(0, 500)}`}`
  }
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ''
  return `${errorMessage(error)}${cause}`
}
