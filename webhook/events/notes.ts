import { isRecord } from '../../lib/record.js'
import type { Admission, AdmissionMode } from '../admission/handler.js'
import type { AdmissionRequest } from '../admission/review.js'
import { apiVersionOf } from '../k8s/objects.js'
import { bounded } from '../text/bounded.js'
import type { EventNote, EventReason, InvolvedObject } from './recorder.js'

/**
 * Which object an admission's Event is about, and what it says; undefined when there is none that
 * `kubectl describe` would show. kubectl matches Events by the object's uid (kubectl
 * pkg/describe searchEvents: involvedObject name, namespace, kind and uid), and a mutating webhook
 * sees a CREATE before the apiserver gives the object its uid (rest.BeforeCreate runs after mutating
 * admission): so the object itself on UPDATE (or whenever it carries a uid and will be stored); for
 * a Pod created by a controller, its controller (ownerReferences, controller: true, whose uid is
 * known); nothing else on CREATE.
 * Dry runs change nothing and get no Event.
 */
export function eventNoteFor(request: AdmissionRequest, mode: AdmissionMode, admission: Admission): EventNote | undefined {
  if (request.dryRun === true) return undefined
  const reason = reasonOf(admission)
  if (reason === undefined) return undefined
  const involved = involvedObject(request, reason === 'Denied' || reason === 'WouldDeny')
  if (involved === undefined) return undefined
  const subject = involved.kind === request.kind.kind && involved.name === request.name ? '' : `${request.kind.kind} ${objectName(request)}: `
  return { involved, reason, message: `${subject}${messageOf(admission, mode)}` }
}

/** A DNS subdomain name's limit (253); uids are 36. */
const MAX_NAME = 253

function reasonOf(admission: Admission): EventReason | undefined {
  if (admission.outcome === 'patched') return 'Mutated'
  if (admission.outcome === 'denied') return 'Denied'
  if (admission.outcome === 'warned') return admission.wouldHave === 'denied' ? 'WouldDeny' : 'WouldMutate'
  return undefined
}

/** The warnings (every change explained, or in warn mode what would have been), or the denial. */
function messageOf(admission: Admission, mode: AdmissionMode): string {
  const { response } = admission
  const said = !response.allowed ? (response.status?.message ?? 'denied') : (response.warnings ?? []).join(' | ')
  return `${mode === 'validate' ? '(validating) ' : ''}${said}`
}

function involvedObject(request: AdmissionRequest, denied: boolean): InvolvedObject | undefined {
  const namespace = request.namespace
  if (namespace === undefined) return undefined
  const metadata = metadataOf(request.object)
  const ownUid = metadata?.['uid']
  const ownName = request.name
  // On CREATE only if the object is going to be stored with that uid: the mutating webhook has no
  // uid to see there (test/e2e/events.test.ts checks it on the real apiserver: a Service's CREATE
  // gets no Event, a Pod's goes to its owner); the validating one does, but only denies.
  const storedAs = request.operation === 'UPDATE' || (request.operation === 'CREATE' && !denied)
  if (storedAs && typeof ownUid === 'string' && ownUid !== '' && ownUid.length <= MAX_NAME && ownName !== undefined && ownName !== '' && ownName.length <= MAX_NAME) {
    return { apiVersion: apiVersionOf(request.kind.group, request.kind.version), kind: request.kind.kind, namespace, name: ownName, uid: ownUid }
  }
  if (request.operation !== 'CREATE' || request.kind.kind !== 'Pod') return undefined
  const owners = metadata?.['ownerReferences']
  if (!Array.isArray(owners)) return undefined
  const controller = owners.find((o: unknown) => isRecord(o) && o['controller'] === true)
  if (!isRecord(controller)) return undefined
  const { apiVersion, kind, name, uid } = controller
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || typeof name !== 'string' || typeof uid !== 'string') return undefined
  // Not validated yet (the apiserver checks ownerReferences after admission): kept to sane sizes.
  if (![apiVersion, kind, name, uid].every((field) => field !== '' && field.length <= MAX_NAME)) return undefined
  return { apiVersion, kind, namespace, name, uid }
}

function metadataOf(object: unknown): Record<string, unknown> | undefined {
  return isRecord(object) && isRecord(object['metadata']) ? object['metadata'] : undefined
}

/** A pod's name on CREATE is often still its generateName prefix. */
function objectName(request: AdmissionRequest): string {
  if (request.name !== undefined && request.name !== '') return bounded(request.name)
  const generated = metadataOf(request.object)?.['generateName']
  return typeof generated === 'string' && generated !== '' ? `${bounded(generated)}*` : '(unnamed)'
}
