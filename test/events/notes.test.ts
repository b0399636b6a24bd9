import t from 'tap'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import type { AdmissionDeps, AdmissionMode } from '../../webhook/admission/handler.js'
import { admit } from '../../webhook/admission/handler.js'
import { podRules } from '../../webhook/admission/pod-rules.js'
import { decodeReview } from '../../webhook/admission/review.js'
import { SidecarConfig } from '../../webhook/config.js'
import type { Service } from '../../webhook/k8s/objects.js'
import { eventNoteFor } from '../../webhook/events/notes.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

/*
 * Which object an admission's Event is about: the one `kubectl describe` can match by uid. Real
 * admissions (admit() with the real rules) feed eventNoteFor, so the reasons and messages are the rules'.
 */

const UDP_SERVICE: Service = { metadata: { name: 'sip', namespace: 'demo', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }, spec: { type: 'LoadBalancer', selector: { app: 'sip' }, ports: [{ port: 5060, protocol: 'UDP' }] } }

function deps(enforcement: 'enforce' | 'warn' = 'enforce'): AdmissionDeps {
  return {
    config: { excludedNamespaces: [], mixedProtocolLBService: 'auto', unbuildableMixedProtocol: 'warn', enforcement },
    clusterVersion: () => parseKubeVersion('1.30.0'),
    rules: podRules({ servicesIn: () => [UDP_SERVICE] }, SidecarConfig.parse({ image: 'example/nlb-guard:test' })),
  }
}

function noteOf(object: unknown, options: Parameters<typeof reviewFor>[1] & { dryRun?: boolean } = {}, mode: AdmissionMode = 'mutate', enforcement: 'enforce' | 'warn' = 'enforce') {
  const review = reviewFor(object, options)
  const { request } = decodeReview({ ...review, request: { ...review.request, dryRun: options.dryRun ?? false } })
  return eventNoteFor(request, mode, admit(request, mode, deps(enforcement)))
}

const POD_KIND = { group: '', version: 'v1', kind: 'Pod' }
const RS = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'sip-7d9f', uid: 'rs-uid', controller: true }
const pod = (owners: unknown[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'sip-7d9f-', namespace: 'demo', labels: { app: 'sip' }, ownerReferences: owners },
  spec: { containers: [{ name: 'sip', image: 'sip:1', ports: [{ containerPort: 5060, protocol: 'UDP' }] }] },
})

t.test('a Pod created by a ReplicaSet: the Event goes to its controller, naming the pod', async (t) => {
  const note = noteOf(pod([{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'cm' }, RS]), { kind: POD_KIND })
  t.same(note?.involved, { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: 'demo', name: 'sip-7d9f', uid: 'rs-uid' }, 'the controlling owner, not the first one')
  t.equal(note?.reason, 'Mutated')
  t.match(note?.message, /^Pod sip-7d9f-\*: .*sidecar/i, 'says which pod and what was added')
})

t.test('no Event where describe cannot show it, or for a dry run', async (t) => {
  t.equal(noteOf(pod([]), { kind: POD_KIND }), undefined, 'a bare Pod on CREATE: no uid yet, no owner')
  t.equal(noteOf(pod([{ ...RS, controller: false }]), { kind: POD_KIND }), undefined, 'an owner that is not the controller')
  t.equal(noteOf(pod([{ ...RS, uid: 'u'.repeat(300) }]), { kind: POD_KIND }), undefined, 'an owner reference of absurd size (not validated yet)')
  t.equal(noteOf(pod([RS]), { kind: POD_KIND, dryRun: true }), undefined, 'dry run')
  t.equal(noteOf(serviceObject()), undefined, 'a Service on CREATE: the mutating webhook sees it before it has a uid')
  const object = serviceObject()
  const withUid = { ...object, metadata: { ...(object['metadata'] as object), uid: 'new-uid' } }
  t.match(noteOf(withUid)?.involved, { kind: 'Service', uid: 'new-uid' }, 'a CREATE that does carry a uid: the object itself, as it will be stored so')
  const mixed = serviceObject({ tcp: true, udp: true })
  const deniedWithUid = { ...mixed, metadata: { ...(mixed['metadata'] as object), uid: 'never-stored' } }
  const deniedRequest = decodeReview(reviewFor(deniedWithUid)).request
  const denied = admit(deniedRequest, 'validate', { ...deps(), clusterVersion: () => parseKubeVersion('1.19.16') })
  t.equal(denied.outcome, 'denied', 'mixed protocols on 1.19: denied')
  const deniedNote = eventNoteFor(deniedRequest, 'validate', denied)
  t.equal(deniedNote, undefined, 'a CREATE denied (validating webhook, which sees a uid): never stored, so no Event')
})

t.test('a Service on UPDATE: the Event is about the Service itself', async (t) => {
  const object = serviceObject()
  const withUid: Record<string, unknown> = { ...object, metadata: { ...(object['metadata'] as object), uid: 'svc-uid' } }
  // Stored as ClusterIP, updated to a UDP LoadBalancer: the rules annotate it now.
  const stored = { ...withUid, spec: { ...(withUid['spec'] as object), type: 'ClusterIP' } }
  const note = noteOf(withUid, { operation: 'UPDATE', oldObject: stored })
  t.match(note?.involved, { apiVersion: 'v1', kind: 'Service', namespace: 'demo', uid: 'svc-uid' })
  t.equal(note?.reason, 'Mutated')
  t.match(note?.message, /aws-load-balancer-type/, 'the change, explained as in the warning')
  t.equal(noteOf(withUid, { operation: 'UPDATE', oldObject: stored, dryRun: true }), undefined, 'not for a dry run')
  const warned = noteOf(withUid, { operation: 'UPDATE', oldObject: stored }, 'mutate', 'warn')
  t.equal(warned?.reason, 'WouldMutate', 'warn mode: what would have been done')
  t.match(warned?.message, /enforcement: warn, nothing changed\) would have added annotation/)
  t.equal(noteOf(withUid, { operation: 'UPDATE', oldObject: stored }, 'validate', 'warn'), undefined, 'the validating webhook has nothing to add in warn mode')
})
