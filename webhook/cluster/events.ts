import { randomBytes } from 'node:crypto'
import type { CoreV1Event, KubeConfig } from '@kubernetes/client-node'
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node'
import type { ReadReplicaSet } from '../events/owners.js'
import type { EventSink, OutgoingEvent } from '../events/recorder.js'

/**
 * Sends nlb-guard's Events as core/v1 Events: the API every supported version serves (1.16 has no
 * events.k8s.io/v1, added in 1.19), and the one `kubectl describe` reads on every version (both
 * APIs store the same objects). Needs `create` and `patch` on events (the chart's ClusterRole).
 */
export function kubeEventSink(kubeConfig: KubeConfig, instance: string): EventSink {
  const api = kubeConfig.makeApiClient(CoreV1Api)
  return async (event: OutgoingEvent) => {
    const now = new Date()
    const namespace = event.involved.namespace
    if (event.existing !== undefined) {
      try {
        await api.patchNamespacedEvent({
          name: event.existing,
          namespace,
          body: [
            { op: 'replace', path: '/count', value: event.count },
            { op: 'replace', path: '/lastTimestamp', value: now.toISOString() },
            { op: 'replace', path: '/message', value: event.message },
          ],
        })
        return event.existing
      } catch (error: unknown) {
        // The Event is gone (the apiserver keeps Events an hour by default): start a new one.
        if ((error as { code?: unknown }).code !== 404) throw error
      }
    }
    const body: CoreV1Event = {
      metadata: { name: eventName(event.involved.name), namespace },
      involvedObject: { ...event.involved },
      reason: event.reason,
      message: event.message,
      type: event.reason === 'Denied' || event.reason === 'WouldDeny' ? 'Warning' : 'Normal',
      source: { component: 'nlb-guard' },
      reportingComponent: 'nlb-guard',
      reportingInstance: instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: event.count,
    }
    const created = await api.createNamespacedEvent({ namespace, body })
    return created.metadata?.name ?? body.metadata.name as string
  }
}

/** client-go's form: the object's name and a unique suffix (names are at most 253 characters). */
function eventName(involved: string): string {
  return `${involved.slice(0, 236)}.${randomBytes(8).toString('hex')}`
}

/**
 * Reads a ReplicaSet's uid and owner references (apps/v1, served by every supported version), for
 * the Event sender to find its Deployment. Needs `get` on replicasets (the chart's ClusterRole).
 * Gives up after `timeoutMs`: the worker that sends Events waits on it, and so does the shutdown.
 */
export function kubeReplicaSetReader(kubeConfig: KubeConfig, timeoutMs: number): ReadReplicaSet {
  const api = kubeConfig.makeApiClient(AppsV1Api)
  return async (namespace, name) => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs)
    })
    try {
      const replicaSet = await Promise.race([api.readNamespacedReplicaSet({ namespace, name }), timeout])
      return { uid: replicaSet.metadata?.uid, ownerReferences: replicaSet.metadata?.ownerReferences }
    } finally {
      clearTimeout(timer)
    }
  }
}
