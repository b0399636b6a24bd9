import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node'
import { CoreV1Api, ListWatch, Watch } from '@kubernetes/client-node'
import type { Service } from '../k8s/objects.js'
import { portProtocol } from '../k8s/objects.js'
import { backoff, type RetryPolicy } from '../../lib/retry.js'
import * as A from '../rules/annotations.js'

/** What the Pod rule needs from the cluster: the UDP LoadBalancer Services of one namespace. */
export interface ServiceLookup {
  servicesIn(namespace: string): readonly Service[]
}

/** Annotations the Pod rule reads; the cache keeps no others. */
const KEPT_ANNOTATIONS = [A.IGNORE, A.AWS_LB_TYPE, A.AWS_NLB_TARGET_TYPE, A.AWS_HEALTHCHECK_PORT, A.AWS_HEALTHCHECK_PROTOCOL]

type CachedService = Service & KubernetesObject

/**
 * The part of a Service the Pod rule reads, or null when it is not a LoadBalancer with UDP ports.
 * Keeping only this makes 10,000 Services in a cluster cost the cache almost nothing.
 */
export function slimService(object: unknown): CachedService | null {
  const service = object as Service & { metadata?: { resourceVersion?: string } }
  if (service?.spec?.type !== 'LoadBalancer') return null
  const udp = (service.spec.ports ?? []).filter((p) => portProtocol(p) === 'UDP')
  if (udp.length === 0) return null
  const annotations = service.metadata?.annotations ?? {}
  const kept = Object.fromEntries(KEPT_ANNOTATIONS.filter((k) => annotations[k] !== undefined).map((k) => [k, annotations[k] as string]))
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: service.metadata?.name ?? '',
      namespace: service.metadata?.namespace ?? '',
      ...(service.metadata?.resourceVersion === undefined ? {} : { resourceVersion: service.metadata.resourceVersion }),
      annotations: kept,
    },
    spec: {
      type: 'LoadBalancer',
      selector: service.spec.selector ?? {},
      ...(service.spec.loadBalancerClass == null ? {} : { loadBalancerClass: service.spec.loadBalancerClass }),
      // Where the NLB health-checks (rules/injection.ts): Local with instance targets means kube-proxy.
      ...(service.spec.externalTrafficPolicy == null ? {} : { externalTrafficPolicy: service.spec.externalTrafficPolicy }),
      // The name too: aws-load-balancer-healthcheck-port may name a port.
      ports: udp.map((p) => ({ ...(p.name == null ? {} : { name: p.name }), port: p.port, protocol: 'UDP', ...(p.targetPort === undefined ? {} : { targetPort: p.targetPort }) })),
    },
  } as CachedService
}

/**
 * client-node's Watch, with every event reduced to slimService: a Service that stops being a UDP
 * LoadBalancer arrives as DELETED, so ListWatch's store holds only the Services we index.
 */
class SlimServiceWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true },
      (phase, object: KubernetesObject, watchObject) => {
        if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return callback(phase, object, watchObject)
        const slim = slimService(object)
        if (slim !== null) return callback(phase, slim, watchObject)
        // Not (or no longer) ours: delete by name, and keep the resourceVersion moving.
        return callback('DELETED', { metadata: { name: object.metadata?.name, namespace: object.metadata?.namespace, resourceVersion: object.metadata?.resourceVersion } }, watchObject)
      },
      done,
    )
  }
}

export interface ServiceCacheOptions {
  readonly onSynced: (count: number) => void
  readonly onError: (error: unknown, retryInMs: number) => void
  readonly onSize: (count: number) => void
  /** Backoff after a failed list or a watch the informer gives up on (default 1 s doubling to 30 s). */
  readonly retry?: RetryPolicy
}

export interface ServiceCache extends ServiceLookup {
  synced(): boolean
  size(): number
  start(): void
  stop(): Promise<void>
}

/**
 * An informer over Services in all namespaces. ListWatch relists on 410 Gone and reconnects dropped
 * watches; on any other error it stops, so this restarts it with exponential backoff.
 */
export function startServiceCache(kubeConfig: KubeConfig, options: ServiceCacheOptions): ServiceCache {
  const api = kubeConfig.makeApiClient(CoreV1Api)
  let synced = false
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  const delays = backoff(options.retry ?? { initialMs: 1000, maxMs: 30_000 })

  const list = async (): Promise<KubernetesListObject<CachedService>> => {
    const services = await api.listServiceForAllNamespaces()
    const items = services.items.map(slimService).filter((s): s is CachedService => s !== null)
    const firstSync = !synced
    synced = true
    delays.reset()
    if (firstSync) options.onSynced(items.length)
    return { ...services, items } as KubernetesListObject<CachedService>
  }
  const informer = new ListWatch<CachedService>('/api/v1/services', new SlimServiceWatch(kubeConfig), list, false)
  // Counted from the events: informer.list() copies the whole store, too much per event at 10,000 Services.
  let count = 0
  informer.on('add', () => options.onSize(++count))
  informer.on('delete', () => options.onSize(--count))
  informer.on('error', (error: unknown) => {
    if (stopped) return
    const delay = delays.next()
    options.onError(error, delay)
    clearTimeout(retry)
    retry = setTimeout(() => void informer.start(), delay)
    retry.unref()
  })

  return {
    servicesIn: (namespace) => informer.list(namespace),
    synced: () => synced,
    size: () => count,
    start: () => void informer.start(),
    async stop() {
      stopped = true
      clearTimeout(retry)
      await informer.stop()
    },
  }
}
