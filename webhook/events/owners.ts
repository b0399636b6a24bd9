import { isRecord } from '../../lib/record.js'
import type { InvolvedObject } from './recorder.js'

/**
 * Which object a controller-created Pod's Event goes on, resolved by the Event sender (never the
 * admission): a pod's controller is a ReplicaSet when a Deployment made it, and `kubectl describe
 * deployment` shows only the Deployment's own Events. So a ReplicaSet whose controller is a
 * Deployment hands its Event up to that Deployment (one GET of the ReplicaSet, apps/v1, then cached
 * by uid); any other owner keeps it. A Job owned by a CronJob keeps it too: `kubectl get jobs` lists
 * Jobs, they are described by name, and following them up would need `get` on every Job.
 */

/** What the GET of a ReplicaSet tells: its uid (to match the pod's reference) and its owners. */
export interface OwnerFacts {
  readonly uid: string | undefined
  readonly ownerReferences: unknown
}

/** Reads a ReplicaSet (apps/v1); rejects on 403, 404, a timeout. */
export type ReadReplicaSet = (namespace: string, name: string) => Promise<OwnerFacts>

/** The closed set of the lookups' results (and of their metric's `result` label). */
export const OWNER_LOOKUP_RESULTS = ['cached', 'fetched', 'failed'] as const
export type OwnerLookupResult = (typeof OWNER_LOOKUP_RESULTS)[number]

export interface OwnerResolverOptions {
  readonly readReplicaSet: ReadReplicaSet
  /** ReplicaSets remembered, at most; the least recently used is forgotten first. */
  readonly maxCached?: number
  readonly onLookup?: (result: OwnerLookupResult) => void
  /** A failed lookup: the Event stays on the ReplicaSet. */
  readonly onError?: (error: unknown, involved: InvolvedObject) => void
}

/** Resolves to where the Event goes: the Deployment above a ReplicaSet, or `involved` itself. Never rejects. */
export type ResolveInvolved = (involved: InvolvedObject) => Promise<InvolvedObject>

/** A DNS subdomain name's limit (253); the reference is read from the apiserver, kept to sane sizes anyway. */
const MAX_NAME = 253

export function createOwnerResolver(options: OwnerResolverOptions): ResolveInvolved {
  const maxCached = options.maxCached ?? 1024
  // Insertion order is recency: a hit is deleted and set again. The owner of a ReplicaSet does not
  // change in practice (a Deployment's ReplicaSets keep their controller until deleted; orphaning
  // and adoption are rare, and an entry then points at the former owner until it is forgotten).
  const cache = new Map<string, InvolvedObject>()
  const failed = (error: unknown, involved: InvolvedObject): InvolvedObject => {
    options.onLookup?.('failed')
    options.onError?.(error, involved)
    return involved
  }

  return async (involved) => {
    if (involved.kind !== 'ReplicaSet' || !involved.apiVersion.startsWith('apps/')) return involved
    const known = cache.get(involved.uid)
    if (known !== undefined) {
      cache.delete(involved.uid)
      cache.set(involved.uid, known)
      options.onLookup?.('cached')
      return known
    }
    let facts: OwnerFacts
    try {
      facts = await options.readReplicaSet(involved.namespace, involved.name)
    } catch (error: unknown) {
      return failed(error, involved)
    }
    // The pod's ReplicaSet was deleted and another took its name: nothing to say about its owner.
    if (facts.uid !== involved.uid) return failed(new Error(`ReplicaSet ${involved.namespace}/${involved.name} now has uid ${String(facts.uid)}, not the pod's ${involved.uid}`), involved)
    const target = deploymentOf(facts.ownerReferences, involved.namespace) ?? involved
    cache.set(involved.uid, target)
    if (cache.size > maxCached) cache.delete(cache.keys().next().value as string)
    options.onLookup?.('fetched')
    return target
  }
}

/** The Deployment among a ReplicaSet's owner references, when it is the controller. */
export function deploymentOf(ownerReferences: unknown, namespace: string): InvolvedObject | undefined {
  if (!Array.isArray(ownerReferences)) return undefined
  const controller = ownerReferences.find((o: unknown) => isRecord(o) && o['controller'] === true)
  if (!isRecord(controller)) return undefined
  const { apiVersion, kind, name, uid } = controller
  if (kind !== 'Deployment' || typeof apiVersion !== 'string' || !apiVersion.startsWith('apps/')) return undefined
  if (typeof name !== 'string' || typeof uid !== 'string') return undefined
  if (![name, uid].every((field) => field !== '' && field.length <= MAX_NAME)) return undefined
  return { apiVersion, kind, namespace, name, uid }
}
