import type { KubeConfig, KubernetesListObject, V1Namespace } from '@kubernetes/client-node'
import { CoreV1Api, ListWatch, Watch } from '@kubernetes/client-node'
import { backoff, type RetryPolicy } from '../../lib/retry.js'
import { WARN_NAMESPACE_LABEL, WARN_NAMESPACE_VALUE } from '../rules/annotations.js'

/**
 * The namespaces labelled `nlb-guard.io/enforcement=warn`, kept by an informer whose list and watch
 * carry that label selector: the apiserver sends only those namespaces (names only are kept), so a
 * cluster of 10,000 namespaces costs what its few labelled ones do. An admission request does not
 * carry its namespace's labels; this is how the handler learns them without a GET per request.
 */
export interface WarnNamespaces {
  has(namespace: string): boolean
  synced(): boolean
  start(): void
  stop(): Promise<void>
}

export interface WarnNamespacesOptions {
  readonly onSynced: (count: number) => void
  readonly onError: (error: unknown, retryInMs: number) => void
  readonly retry?: RetryPolicy
}

export const WARN_NAMESPACE_SELECTOR = `${WARN_NAMESPACE_LABEL}=${WARN_NAMESPACE_VALUE}`

export function startWarnNamespaces(kubeConfig: KubeConfig, options: WarnNamespacesOptions): WarnNamespaces {
  const api = kubeConfig.makeApiClient(CoreV1Api)
  let synced = false
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  const delays = backoff(options.retry ?? { initialMs: 1000, maxMs: 30_000 })

  const list = async (): Promise<KubernetesListObject<V1Namespace>> => {
    const namespaces = await api.listNamespace({ labelSelector: WARN_NAMESPACE_SELECTOR })
    const firstSync = !synced
    synced = true
    delays.reset()
    if (firstSync) options.onSynced(namespaces.items.length)
    return namespaces
  }
  const informer = new ListWatch<V1Namespace>('/api/v1/namespaces', new Watch(kubeConfig), list, false, WARN_NAMESPACE_SELECTOR)
  // A namespace whose label is removed (or changed) leaves the selector: the watch sends it as DELETED.
  informer.on('error', (error: unknown) => {
    if (stopped) return
    const delay = delays.next()
    options.onError(error, delay)
    clearTimeout(retry)
    retry = setTimeout(() => void informer.start(), delay)
    retry.unref()
  })

  return {
    has: (namespace) => informer.get(namespace) !== undefined,
    synced: () => synced,
    start: () => void informer.start(),
    async stop() {
      stopped = true
      clearTimeout(retry)
      await informer.stop()
    },
  }
}
