import t from 'tap'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import type { AdmissionDeps, AdmissionMode } from '../../webhook/admission/handler.js'
import { admit } from '../../webhook/admission/handler.js'
import { podRules } from '../../webhook/admission/pod-rules.js'
import { decodeReview } from '../../webhook/admission/review.js'
import { SidecarConfig } from '../../webhook/config.js'
import type { Service } from '../../webhook/k8s/objects.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

/*
 * admit(): routing by group/version/kind, excluded namespaces, an unknown cluster version, objects
 * that do not have the shape of their kind, and mutate vs validate. The rules themselves are proven
 * in test/rules/; here only which rule answers and how the answer is framed.
 */

// IP targets: the NLB health-checks the pod itself, so injection: auto (the default) adds the sidecar.
const UDP_SERVICE: Service = { metadata: { name: 'sip', namespace: 'demo', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }, spec: { type: 'LoadBalancer', selector: { app: 'sip' }, ports: [{ port: 5060, protocol: 'UDP' }] } }
const lookup = { servicesIn: (namespace: string) => (namespace === 'demo' ? [UDP_SERVICE] : []) }

function deps(options: { mutateWorkloads?: boolean; version?: string | null } = {}): AdmissionDeps {
  const sidecar = SidecarConfig.parse({ image: 'example/nlb-guard:test', mutateWorkloads: options.mutateWorkloads ?? false })
  const version = options.version === null ? undefined : parseKubeVersion(options.version ?? '1.30.0')
  return {
    config: { excludedNamespaces: ['kube-system'], mixedProtocolLBService: 'auto', unbuildableMixedProtocol: 'warn' },
    clusterVersion: () => version,
    rules: podRules(lookup, sidecar),
  }
}

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'sip-0', labels: { app: 'sip' } }, spec: { containers: [{ name: 'app', ports: [{ containerPort: 5060, protocol: 'UDP' }] }] } }
const deployment = (apiVersion: string) => ({ apiVersion, kind: 'Deployment', metadata: { name: 'sip' }, spec: { template: { metadata: { labels: { app: 'sip' } }, spec: pod.spec } } })

function request(object: unknown, kind: { group: string; version: string; kind: string }, options: { namespace?: string; operation?: string; oldObject?: unknown } = {}) {
  return decodeReview(reviewFor(object, { kind, ...options })).request
}

interface Case {
  name: string
  object: unknown
  kind: { group: string; version: string; kind: string }
  mode?: AdmissionMode
  mutateWorkloads?: boolean
  namespace?: string
  operation?: string
  oldObject?: unknown
  outcome: 'allowed' | 'patched' | 'denied' | 'error'
  rules?: string[]
  code?: number
}

const core = (kind: string) => ({ group: '', version: 'v1', kind })
const cases: Case[] = [
  { name: 'v1 Service: the Service rules', object: serviceObject(), kind: core('Service'), outcome: 'patched', rules: ['S2'] },
  { name: 'a Service kind of another group is not a v1 Service', object: serviceObject(), kind: { group: 'example.com', version: 'v1', kind: 'Service' }, outcome: 'allowed', rules: [] },
  { name: 'a Service kind of another version is not a v1 Service', object: serviceObject(), kind: { group: '', version: 'v2', kind: 'Service' }, outcome: 'allowed', rules: [] },
  { name: 'v1 Pod: the Pod rule', object: pod, kind: core('Pod'), outcome: 'patched', rules: ['P1'] },
  { name: 'a Pod kind of another group is not routed to the Pod rule', object: pod, kind: { group: 'example.com', version: 'v1', kind: 'Pod' }, outcome: 'allowed', rules: [] },
  { name: 'apps/v1 Deployment with mutateWorkloads: its template', object: deployment('apps/v1'), kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, mutateWorkloads: true, outcome: 'patched', rules: ['P1'] },
  { name: 'apps/v1beta2 Deployment is not the kind the table names', object: deployment('apps/v1beta2'), kind: { group: 'apps', version: 'v1beta2', kind: 'Deployment' }, mutateWorkloads: true, outcome: 'allowed', rules: [] },
  { name: 'apps/v1 Deployment without mutateWorkloads: left alone', object: deployment('apps/v1'), kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, outcome: 'allowed', rules: [] },
  { name: 'an excluded namespace is never touched', object: serviceObject(), kind: core('Service'), namespace: 'kube-system', outcome: 'allowed', rules: [] },
  { name: 'validate: a change the object needs and lacks is a denial', object: serviceObject(), kind: core('Service'), mode: 'validate', outcome: 'denied', rules: ['S2'] },
  { name: 'validate: an advisory change is reported, never patched', object: serviceObject({ tcp: true, udp: false, local: true }), kind: core('Service'), mode: 'validate', outcome: 'allowed', rules: ['S3'] },
  { name: 'validate: a denial is a denial there too', object: serviceObject({ annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'clb' } }), kind: core('Service'), mode: 'validate', outcome: 'denied', rules: ['S2'] },
  { name: 'a Service that is not a Service: 400', object: { spec: { ports: 'all of them' } }, kind: core('Service'), outcome: 'error', code: 400 },
  { name: 'an UPDATE whose stored Service is not a Service: 400', object: serviceObject(), kind: core('Service'), operation: 'UPDATE', oldObject: { spec: 'gone' }, outcome: 'error', code: 400 },
  { name: 'DELETE of a Service: nothing to decide', object: serviceObject(), kind: core('Service'), operation: 'DELETE', outcome: 'allowed', rules: [] },
  { name: 'a Pod that is not a Pod: 400', object: { spec: { containers: 'app' } }, kind: core('Pod'), outcome: 'error', code: 400 },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const options = { ...(c.namespace === undefined ? {} : { namespace: c.namespace }), ...(c.operation === undefined ? {} : { operation: c.operation }), ...(c.oldObject === undefined ? {} : { oldObject: c.oldObject }) }
    const admission = admit(request(c.object, c.kind, options), c.mode ?? 'mutate', deps({ mutateWorkloads: c.mutateWorkloads ?? false }))
    t.equal(admission.outcome, c.outcome)
    t.equal(admission.response.uid, 'uid-1', 'the uid is echoed')
    if (c.rules !== undefined) t.same(admission.rules, c.rules)
    if (c.code !== undefined) t.equal(admission.response.status?.code, c.code)
    if (c.mode === 'validate' && c.outcome === 'allowed') t.match(admission.response.warnings, [/^nlb-guard would have set annotation/])
    t.equal(admission.response.patch !== undefined, c.outcome === 'patched', 'a patch exactly when patched')
  })
}

t.test('before the cluster version is known: 500, never a guess', async (t) => {
  const admission = admit(request(serviceObject(), core('Service')), 'mutate', deps({ version: null }))
  t.equal(admission.outcome, 'error')
  t.equal(admission.response.status?.code, 500)
  t.match(admission.response.status?.message, /does not know the cluster version yet/)
})

t.test('an excluded namespace is answered even before the version is known', async (t) => {
  const admission = admit(request(serviceObject(), core('Service'), { namespace: 'kube-system' }), 'mutate', deps({ version: null }))
  t.equal(admission.outcome, 'allowed')
})

t.test('enforcement warn: nothing changed, nothing denied, every would-be change and denial said', async (t) => {
  const warn = (version = '1.30.0'): AdmissionDeps => ({ ...deps({ version }), config: { ...deps().config, enforcement: 'warn' } })
  const service = (object: unknown) => request(object, { group: '', version: 'v1', kind: 'Service' }, { namespace: 'demo' })
  const udp = service(serviceObject({ udp: true }))
  const changed = admit(udp, 'mutate', warn())
  t.match(changed, { outcome: 'warned', rules: ['S2'], wouldHave: 'changed' })
  t.equal(changed.response.allowed, true)
  t.equal(changed.response.patch, undefined, 'no patch')
  t.match(changed.response.warnings?.[0], /^nlb-guard \(enforcement: warn, nothing changed\) would have added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type/)
  t.match(changed.response.auditAnnotations, { decision: 'would-mutate', rules: 'S2' })

  const mixed = service(serviceObject({ udp: true, tcp: true }))
  const refused = admit(mixed, 'mutate', warn('1.19.16'))
  t.match(refused, { outcome: 'warned', rules: ['S1'], wouldHave: 'denied' })
  t.equal(refused.response.allowed, true, 'not denied')
  t.match(refused.response.warnings?.[0], /^nlb-guard \(enforcement: warn, nothing changed\) would deny this: .*TCP and UDP/s)
  t.match(refused.response.auditAnnotations, { decision: 'would-deny', rules: 'S1', reason: /TCP and UDP/ })
  t.same(admit(mixed, 'mutate', deps({ version: '1.19.16' })).outcome, 'denied', 'the same object is denied under enforce')

  const tcp = admit(service(serviceObject({ udp: false, tcp: true })), 'mutate', warn())
  t.same(tcp, { response: { uid: tcp.response.uid, allowed: true }, outcome: 'allowed', rules: [] }, 'nothing to say: a plain allow')
  t.same(admit(udp, 'validate', warn()), { response: { uid: udp.uid, allowed: true }, outcome: 'allowed', rules: [] }, 'the validating webhook adds nothing to what the mutating one said')
})

t.test('warn-only per namespace: a labelled namespace is warned, the others enforced', async (t) => {
  const labelled = new Set(['rollout'])
  const perNamespace: AdmissionDeps = { ...deps(), warnOnlyNamespace: (namespace) => labelled.has(namespace) }
  const udpIn = (namespace: string) => request(serviceObject({ udp: true }), { group: '', version: 'v1', kind: 'Service' }, { namespace })
  const there = admit(udpIn('rollout'), 'mutate', perNamespace)
  t.match(there, { outcome: 'warned', rules: ['S2'], wouldHave: 'changed' })
  t.equal(there.response.patch, undefined, 'nothing changed in the labelled namespace')
  t.match(there.response.warnings?.[0], /^nlb-guard \(enforcement: warn, nothing changed\) would have added annotation/)
  const elsewhere = admit(udpIn('demo'), 'mutate', perNamespace)
  t.equal(elsewhere.outcome, 'patched', 'the unlabelled namespace is enforced')
  t.equal(admit(udpIn('rollout'), 'validate', perNamespace).outcome, 'allowed', 'the validating webhook adds nothing there either')
  labelled.delete('rollout')
  t.equal(admit(udpIn('rollout'), 'mutate', perNamespace).outcome, 'patched', 'the label removed: enforced again, at the next request')
})
