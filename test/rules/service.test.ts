import fastJsonPatch from 'fast-json-patch'
import t, { type Test } from 'tap'
import type { Service } from '../../webhook/k8s/objects.js'
import type { Decision, JsonPatchOp } from '../../webhook/rules/decision.js'
import { warningsOf } from '../../webhook/rules/decision.js'
import type { MixedProtocolGate, ServiceRuleInput } from '../../webhook/rules/service.js'
import { mixedProtocolUnsupportedReason, mutateService, SERVICE_RULES } from '../../webhook/rules/service.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const TYPE_PATH = '/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-type'
const CROSS = 'service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled'
const CROSS_PATH = '/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-cross-zone-load-balancing-enabled'
const ATTRS = 'service.beta.kubernetes.io/aws-load-balancer-attributes'
const ATTRS_PATH = '/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-attributes'

interface ServiceShape {
  name?: string
  annotations?: Record<string, string> | null
  ports?: Array<[number, string] | [number, string, string]>
  type?: string
  etp?: 'Local' | 'Cluster'
  lbClass?: string
  deleting?: boolean
}

function service(shape: ServiceShape = {}): Service {
  const metadata: Record<string, unknown> = { name: shape.name ?? 'echo', namespace: 'demo' }
  if (shape.annotations !== undefined) metadata['annotations'] = shape.annotations
  if (shape.deleting) metadata['deletionTimestamp'] = '2026-01-01T00:00:00Z'
  const spec: Record<string, unknown> = {
    type: shape.type ?? 'LoadBalancer',
    selector: { app: 'echo' },
    ports: (shape.ports ?? [[53, 'UDP']]).map(([port, protocol, name]) => ({ port, protocol, ...(name ? { name } : {}) })),
  }
  if (shape.etp) spec['externalTrafficPolicy'] = shape.etp
  if (shape.lbClass) spec['loadBalancerClass'] = shape.lbClass
  return { apiVersion: 'v1', kind: 'Service', metadata, spec } as Service
}

interface Case {
  name: string
  object: ServiceShape
  old?: ServiceShape
  version?: string
  gate?: MixedProtocolGate
  unbuildable?: 'warn' | 'deny'
  /** Exact operations, or 'denied' with the rule and message patterns. */
  ops?: JsonPatchOp[]
  denied?: { rule: string; message: RegExp[] }
  /** Each pattern must match a distinct warning; the count must match too (on a denial: its hints). */
  warnings?: RegExp[]
}

function input(c: Case, object: Service = service(c.object)): ServiceRuleInput {
  return {
    operation: c.old ? 'UPDATE' : 'CREATE',
    object,
    oldObject: c.old ? service(c.old) : undefined,
    namespace: 'demo',
    cluster: { version: parseKubeVersion(c.version ?? '1.30.0'), mixedProtocolGate: c.gate ?? 'auto' },
    policy: { unbuildableMixedProtocol: c.unbuildable ?? 'warn' },
  }
}

const TCP_UDP: ServiceShape['ports'] = [[12345, 'TCP', 'tcpecho'], [12345, 'UDP', 'udpecho']]
const nlb = { [TYPE]: 'nlb' }

const cases: Case[] = [
  // S1: the cluster cannot create mixed-protocol LoadBalancers.
  ...['1.15.12', '1.19.16'].map<Case>((version) => ({
    name: `S1 mixed TCP+UDP denied on ${version}`,
    object: { ports: TCP_UDP },
    version,
    denied: {
      rule: 'S1',
      message: [/Service demo\/echo/, /TCP and UDP/, new RegExp(`Kubernetes ${version.replace(/\./g, '\\.')}`), /"echo-tcp" with the TCP ports/, /"echo-udp" with the UDP ports/, /tcpecho 12345\/TCP, udpecho 12345\/UDP/, /1\.26/],
    },
  })),
  { name: 'S1 mixed denied on 1.22 with the gate at its default (off)', object: { ports: TCP_UDP }, version: '1.22.17', denied: { rule: 'S1', message: [/feature gate is off by default before Kubernetes 1\.24/, /echo-udp/] } },
  { name: 'S1 mixed allowed on 1.22 when the gate is on', object: { ports: TCP_UDP, annotations: nlb }, version: '1.22.17', gate: 'enabled', ops: [], warnings: [/in-tree AWS cloud provider never builds a mixed-protocol/, /instance targets and externalTrafficPolicy: Cluster/] },
  { name: 'S1 mixed allowed on 1.24 (gate on by default)', object: { ports: TCP_UDP, annotations: nlb }, version: '1.24.17', ops: [], warnings: [/never builds a mixed-protocol/, /no working health check/] },
  { name: 'S1 mixed denied on 1.24 when the gate is off', object: { ports: TCP_UDP }, version: '1.24.17', gate: 'disabled', denied: { rule: 'S1', message: [/feature gate is off on this cluster/] } },
  // The apiserver's answer to nlb-guard's dry-run probe outranks the version's default.
  { name: 'S1 mixed allowed on 1.22 when the apiserver accepted a dry-run one', object: { ports: TCP_UDP, annotations: nlb }, version: '1.22.17', gate: 'accepted', ops: [], warnings: [/never builds a mixed-protocol/, /no working health check/] },
  { name: 'S1 mixed denied on 1.25 when the apiserver refused a dry-run one', object: { ports: TCP_UDP }, version: '1.25.16', gate: 'refused', denied: { rule: 'S1', message: [/Kubernetes 1\.25\.16\) cannot create: the MixedProtocolLBService feature gate is off on this cluster \(its apiserver refused a dry-run of such a Service\)/, /"echo-udp" with the UDP ports/] } },
  { name: 'S1 refused on 1.19 keeps the version reason', object: { ports: TCP_UDP }, version: '1.19.16', gate: 'refused', denied: { rule: 'S1', message: [/need Kubernetes 1\.26 or later/] } },
  { name: 'S1 gate setting ignored from 1.26 (GA)', object: { ports: TCP_UDP, annotations: nlb }, version: '1.30.0', gate: 'disabled', ops: [], warnings: [/never builds/, /health check/] },
  { name: 'S1 in-tree unbuildable mixed: deny by policy', object: { ports: TCP_UDP, annotations: nlb }, unbuildable: 'deny', denied: { rule: 'S1', message: [/in-tree AWS cloud provider never builds/, /Split it/] } },
  { name: 'S1 SCTP+TCP+UDP names three Services', object: { ports: [[1, 'TCP'], [2, 'UDP'], [3, 'SCTP']] }, version: '1.19.16', denied: { rule: 'S1', message: [/TCP and UDP and SCTP/, /"echo-sctp" with the SCTP ports/, /split it into 3 Services/] } },
  { name: 'S1 protocol omitted counts as TCP', object: { ports: [[80, undefined as unknown as string], [53, 'UDP']] }, version: '1.19.16', denied: { rule: 'S1', message: [/TCP and UDP/] } },
  { name: 'S1 UPDATE of an already mixed LoadBalancer is ratcheted', object: { ports: TCP_UDP, annotations: nlb }, old: { ports: TCP_UDP, annotations: nlb }, version: '1.19.16', ops: [], warnings: [/already so before this update/, /never builds/, /health check/] },
  { name: 'S1 UPDATE that makes a LoadBalancer mixed is denied', object: { ports: TCP_UDP, annotations: nlb }, old: { ports: [[53, 'UDP']], annotations: nlb }, version: '1.19.16', denied: { rule: 'S1', message: [/cannot create/] } },
  { name: 'S1 AWS LBC needs the TCP_UDP listener annotation for a shared port', object: { ports: TCP_UDP, annotations: { [TYPE]: 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }, ops: [], warnings: [/port 12345 for both TCP and UDP/] },
  { name: 'S1 AWS LBC with the TCP_UDP listener annotation is clean', object: { ports: TCP_UDP, annotations: { [TYPE]: 'nlb-ip', 'service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener': 'true' } }, ops: [] },
  { name: 'S1 unknown loadBalancerClass: no AWS advice', object: { ports: TCP_UDP, lbClass: 'example.com/lb' }, ops: [] },

  // S2: UDP needs a Network Load Balancer.
  { name: 'S2 UDP without annotations gets the whole map', object: {}, ops: [{ op: 'add', path: '/metadata/annotations', value: { [TYPE]: 'nlb' } }], warnings: [/added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/, /health check/] },
  { name: 'S2 UDP with null annotations gets the whole map', object: { annotations: null }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [TYPE]: 'nlb' } }], warnings: [/Classic ELB cannot carry UDP/, /health check/] },
  { name: 'S2 UDP with other annotations gets one escaped key', object: { annotations: { 'example.com/owner': 'team-a' } }, ops: [{ op: 'add', path: TYPE_PATH, value: 'nlb' }], warnings: [/UDP ports \(53\/UDP\)/, /health check/] },
  ...['nlb', 'external', 'nlb-ip'].map<Case>((type) => ({ name: `S2 type ${type} left alone`, object: { annotations: { [TYPE]: type }, etp: 'Local' }, ops: type === 'nlb' ? [{ op: 'add', path: CROSS_PATH, value: 'true' }] : [{ op: 'add', path: ATTRS_PATH, value: 'load_balancing.cross_zone.enabled=true' }], warnings: [/set annotation/] })),
  { name: 'S2 type clb with UDP denied', object: { annotations: { [TYPE]: 'clb' } }, denied: { rule: 'S2', message: [/is "clb"/, /cannot carry UDP/, /Set it to "nlb"/] } },
  { name: 'S2 TCP-only Service keeps its Classic ELB', object: { ports: [[80, 'TCP']] }, ops: [] },
  { name: 'S2 loadBalancerClass set: left alone', object: { lbClass: 'service.k8s.aws/nlb' }, ops: [], warnings: [/health check/] },
  { name: 'S2 ignore annotation skips everything', object: { annotations: { 'nlb-guard.io/ignore': 'true', [TYPE]: 'clb' }, ports: TCP_UDP }, version: '1.19.16', ops: [] },
  { name: 'S2 a Service being deleted is never blocked', object: { annotations: { [TYPE]: 'clb' }, deleting: true }, ops: [] },
  { name: 'S2 not a LoadBalancer: nothing', object: { type: 'ClusterIP', ports: TCP_UDP }, version: '1.19.16', ops: [] },
  { name: 'S2 UPDATE that drops the type annotation restores it', object: { annotations: { other: 'x' } }, old: { annotations: { other: 'x', [TYPE]: 'nlb' } }, ops: [{ op: 'add', path: TYPE_PATH, value: 'nlb' }], warnings: [/restored annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/, /health check/] },
  { name: 'S2 UPDATE that drops every annotation restores the map', object: {}, old: { annotations: { [TYPE]: 'external' } }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [TYPE]: 'external' } }], warnings: [/restored/, /health check/] },
  { name: 'S2 UPDATE that changes the type is denied', object: { annotations: { [TYPE]: 'external' } }, old: { annotations: nlb }, denied: { rule: 'S2', message: [/from "nlb" to "external"/, /orphaned/, /nlb-guard\.io\/allow-lb-type-change/] } },
  { name: 'S2 UPDATE that changes the type with the opt-out', object: { annotations: { [TYPE]: 'external', 'nlb-guard.io/allow-lb-type-change': 'true' } }, old: { annotations: nlb }, ops: [], warnings: [/health check/] },
  { name: 'S2 UPDATE that drops the type with the opt-out: UDP still needs an NLB', object: { annotations: { 'nlb-guard.io/allow-lb-type-change': 'true' } }, old: { annotations: nlb }, ops: [{ op: 'add', path: TYPE_PATH, value: 'nlb' }], warnings: [/added annotation/, /health check/] },
  { name: 'S2 UPDATE that adds UDP to a live Classic ELB is denied, the mixed-protocol warning kept', object: { ports: [[80, 'TCP'], [53, 'UDP']] }, old: { ports: [[80, 'TCP']] }, denied: { rule: 'S2', message: [/runs a Classic ELB/, /Create a new Service for the UDP ports/] }, warnings: [/never builds a mixed-protocol/] },
  { name: 'S1 before S2: with unbuildable mixed protocols denied by policy, the same UPDATE stops at S1', object: { ports: [[80, 'TCP'], [53, 'UDP']] }, old: { ports: [[80, 'TCP']] }, denied: { rule: 'S1', message: [/never builds a mixed-protocol/] }, unbuildable: 'deny' },
  { name: 'S2 UPDATE that swaps a live Classic ELB to UDP is denied', object: { ports: [[53, 'UDP']] }, old: { ports: [[80, 'TCP']] }, denied: { rule: 'S2', message: [/runs a Classic ELB/, /orphan the Classic ELB/, /Create a new Service for the UDP ports/] } },
  { name: 'S2 UPDATE that adds the nlb type to a live Classic ELB is denied', object: { annotations: nlb }, old: { ports: [[80, 'TCP']] }, denied: { rule: 'S2', message: [/from unset \(a Classic ELB\) to "nlb"/] } },
  { name: 'S2 UPDATE turning a ClusterIP into a UDP LoadBalancer adds nlb', object: {}, old: { type: 'ClusterIP' }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [TYPE]: 'nlb' } }], warnings: [/added annotation/, /health check/] },
  { name: 'S2 UPDATE of a Classic ELB that already had UDP is ratcheted', object: { annotations: { [TYPE]: 'clb', l: '1' } }, old: { annotations: { [TYPE]: 'clb' } }, ops: [], warnings: [/already so before this update/, /health check/] },

  // S3: cross-zone when externalTrafficPolicy is Local.
  { name: 'S3 in-tree: legacy key added with the type', object: { etp: 'Local' }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [TYPE]: 'nlb', [CROSS]: 'true' } }], warnings: [/added annotation/, /set annotation service\.beta\.kubernetes\.io\/aws-load-balancer-cross-zone-load-balancing-enabled: "true"/] },
  { name: 'S3 TCP Classic ELB with Local also gets cross-zone', object: { etp: 'Local', ports: [[443, 'TCP']] }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [CROSS]: 'true' } }], warnings: [/works sometimes/] },
  { name: 'S3 already enabled: nothing', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'True' } }, ops: [] },
  { name: 'S3 legacy key disabled: denied', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'false' } }, denied: { rule: 'S3', message: [/turns cross-zone load balancing off/, /nlb-guard\.io\/allow-single-zone/] } },
  { name: 'S3 legacy key disabled with the opt-out', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: '0', 'nlb-guard.io/allow-single-zone': 'true' } }, ops: [] },
  { name: 'S3 legacy key not a boolean: denied', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'yes' } }, denied: { rule: 'S3', message: [/cannot read as a boolean/] } },
  { name: 'S3 AWS LBC: attributes merged keeping the others in order', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'deletion_protection.enabled=true, dns_record.client_routing_policy=any_availability_zone' } }, ops: [{ op: 'replace', path: ATTRS_PATH, value: 'deletion_protection.enabled=true, dns_record.client_routing_policy=any_availability_zone,load_balancing.cross_zone.enabled=true' }], warnings: [/load_balancing\.cross_zone\.enabled=true/] },
  { name: 'S3 AWS LBC class: attributes added', object: { etp: 'Local', lbClass: 'service.k8s.aws/nlb' }, ops: [{ op: 'add', path: '/metadata/annotations', value: { [ATTRS]: 'load_balancing.cross_zone.enabled=true' } }], warnings: [/set annotation/] },
  { name: 'S3 EKS Auto Mode ignores the legacy key: attributes added', object: { etp: 'Local', lbClass: 'eks.amazonaws.com/nlb', annotations: { [CROSS]: 'true' } }, ops: [{ op: 'add', path: ATTRS_PATH, value: 'load_balancing.cross_zone.enabled=true' }], warnings: [/attributes/] },
  { name: 'S3 attributes disable cross-zone: denied', object: { etp: 'Local', annotations: { [TYPE]: 'nlb-ip', [ATTRS]: 'load_balancing.cross_zone.enabled=false' } }, denied: { rule: 'S3', message: [/aws-load-balancer-attributes/] } },
  { name: 'S3 attributes already enabled: nothing', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled=true' } }, ops: [] },
  { name: 'S3 unknown loadBalancerClass: left alone', object: { etp: 'Local', lbClass: 'example.com/lb' }, ops: [] },
  { name: 'S3 UPDATE of an already single-zone Service is ratcheted', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'false', x: 'y' } }, old: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'false' } }, ops: [], warnings: [/already so before this update/] },
  { name: 'S3 UPDATE that turns on Local with cross-zone off is denied', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'false' } }, old: { etp: 'Cluster', annotations: { ...nlb, [CROSS]: 'false' } }, denied: { rule: 'S3', message: [/turns cross-zone load balancing off/] } },

  // S3: the attributes list read as the AWS Load Balancer Controller's ParseStringMapAnnotation reads it.
  { name: 'S3 repeated cross-zone attribute: the last value (false) is the one the controller applies', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled=true,load_balancing.cross_zone.enabled=false' } }, denied: { rule: 'S3', message: [/turns cross-zone load balancing off/, /load_balancing\.cross_zone\.enabled=false/] } },
  { name: 'S3 repeated cross-zone attribute: the last value (true) wins', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled=false, load_balancing.cross_zone.enabled=true' } }, ops: [] },
  { name: 'S3 a value with a space after "=" is not true or false to the controller: denied, even with the opt-out', object: { etp: 'Local', annotations: { [TYPE]: 'external', 'nlb-guard.io/allow-single-zone': 'true', [ATTRS]: 'load_balancing.cross_zone.enabled= false' } }, denied: { rule: 'S3', message: [/is " false"/, /neither true nor false/] } },
  { name: 'S3 a cross-zone value that is not a boolean: denied, even with the opt-out', object: { etp: 'Local', lbClass: 'service.k8s.aws/nlb', annotations: { 'nlb-guard.io/allow-single-zone': 'true', [ATTRS]: 'load_balancing.cross_zone.enabled=yes' } }, denied: { rule: 'S3', message: [/"yes"/, /load_balancing\.cross_zone\.enabled=true/] } },
  { name: 'S3 an attributes entry without "=" makes the list unreadable: denied', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'deletion_protection.enabled' } }, denied: { rule: 'S3', message: [/"deletion_protection\.enabled" is not key=value/] } },
  { name: 'S3 a key spaced before "=" is another key to the controller: cross-zone is still added', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled =false' } }, ops: [{ op: 'replace', path: ATTRS_PATH, value: 'load_balancing.cross_zone.enabled =false,load_balancing.cross_zone.enabled=true' }], warnings: [/set annotation/] },
  { name: 'S3 legacy key not a boolean: denied even with the opt-out', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: 'yes', 'nlb-guard.io/allow-single-zone': 'true' } }, denied: { rule: 'S3', message: [/cannot read as a boolean/] } },
  { name: 'S3 in-tree: an empty legacy value is unset to the cloud provider, so it is set to true', object: { etp: 'Local', annotations: { ...nlb, [CROSS]: '' } }, ops: [{ op: 'replace', path: CROSS_PATH, value: 'true' }], warnings: [/set annotation/] },
  { name: 'S3 AWS LBC: an empty legacy value fails ParseBoolAnnotation: denied', object: { etp: 'Local', annotations: { [TYPE]: 'external', [CROSS]: '' } }, denied: { rule: 'S3', message: [/"", which the AWS cloud provider and controller cannot read as a boolean/] } },

  // S4: hints.
  { name: 'S4 UDP with ip targets: no hint', object: { annotations: { [TYPE]: 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }, ops: [] },
  { name: 'S4 UDP with Cluster policy: hint', object: { annotations: nlb, etp: 'Cluster' }, ops: [], warnings: [/NLB probes the UDP NodePort over TCP/] },
]

function applied(object: Service, ops: readonly JsonPatchOp[]): Service {
  return fastJsonPatch.applyPatch(structuredClone(object), ops as fastJsonPatch.Operation[], true, false).newDocument
}

function assertWarnings(t: Test, decision: Decision, expected: RegExp[]): void {
  const warnings = warningsOf(decision)
  t.equal(warnings.length, expected.length, `${expected.length} warning(s): ${JSON.stringify(warnings)}`)
  for (const pattern of expected) t.ok(warnings.some((w) => pattern.test(w)), `a warning matches ${pattern}`)
}

for (const c of cases) {
  t.test(c.name, async (t) => {
    const decision = mutateService(input(c))
    if (c.denied) {
      t.equal(decision.allowed, false, 'denied')
      if (decision.allowed) return
      t.equal(decision.rule, c.denied.rule)
      for (const pattern of c.denied.message) t.match(decision.message, pattern)
      assertWarnings(t, decision, c.warnings ?? [])
      return
    }
    t.equal(decision.allowed, true, 'allowed')
    if (!decision.allowed) {
      t.fail(decision.message)
      return
    }
    t.same(decision.ops, c.ops ?? [], 'exact JSON Patch operations')
    t.equal(decision.changes.length > 0, decision.ops.length > 0, 'a change is explained exactly when something changes')
    assertWarnings(t, decision, c.warnings ?? [])
    // The patch applies, and the rules on their own output change nothing more.
    const patched = applied(service(c.object), decision.ops)
    const again = mutateService(input(c, patched))
    t.equal(again.allowed, true, 'the corrected object is allowed')
    if (again.allowed) t.same(again.ops, [], 'idempotent: no further change')
  })
}

t.test('the Service rules are named functions, run S1 to S4', async (t) => {
  t.same(
    SERVICE_RULES.map((rule) => rule.name),
    ['mixedProtocols', 'loadBalancerType', 'crossZone', 'healthCheckHints'],
  )
})

t.test('the mixed-protocol support table', async (t) => {
  const table: Array<[string, MixedProtocolGate, boolean]> = [
    ['1.15.0', 'enabled', false],
    ['1.19.16', 'enabled', false],
    ['1.20.0', 'auto', false],
    ['1.20.0', 'enabled', true],
    ['1.23.9', 'auto', false],
    ['1.24.0', 'auto', true],
    ['1.25.4', 'disabled', false],
    ['1.26.0', 'disabled', true],
    ['v1.30.2-eks-1a2b3c', 'auto', true],
    // The apiserver's own answer (the dry-run probe) wins over the table.
    ['1.19.16', 'accepted', true],
    ['1.23.9', 'accepted', true],
    ['1.19.16', 'refused', false],
    ['1.24.0', 'refused', false],
    ['1.25.16', 'refused', false],
  ]
  for (const [version, gate, supported] of table) {
    t.equal(mixedProtocolUnsupportedReason(parseKubeVersion(version), gate) === null, supported, `${version} gate=${gate}`)
  }
})

t.test('an annotation key with ~ and / is escaped per RFC 6901', async (t) => {
  const { setMapEntries } = await import('../../webhook/rules/patch.js')
  t.same(setMapEntries('/metadata/annotations', { a: '1' }, new Map([['x~y/z', 'v']])), [{ op: 'add', path: '/metadata/annotations/x~0y~1z', value: 'v' }])
  t.same(setMapEntries('/metadata/annotations', { a: '1' }, new Map([['a', '1']])), [], 'no op when the value is already there')
})

t.test('an S1 denial for 10,000 ports stays a few hundred characters and still names the fix', async (t) => {
  const ports: NonNullable<ServiceShape['ports']> = Array.from({ length: 10_000 }, (_, i) => [1000 + (i >> 1), i % 2 === 0 ? 'TCP' : 'UDP', `p${i}`])
  const decision = mutateService(input({ name: 'many', object: { name: 'x'.repeat(100_000), ports }, version: '1.19.16' }))
  t.equal(decision.allowed, false)
  if (decision.allowed) return
  t.equal(decision.rule, 'S1')
  t.ok(decision.message.length < 2500, `message is ${decision.message.length} characters`)
  t.match(decision.message, /p0 1000\/TCP, .* and 9990 more\)/, 'ten ports named, the rest counted')
  t.match(decision.message, /Fix: split it into 2 Services, ".*-tcp" with the TCP ports and ".*-udp" with the UDP ports/)
  t.match(decision.message, /Service demo\/x{253}…\(99747 more characters\)/, 'a name too long for Kubernetes is cut, saying so')
})

t.test('caller-written values quoted in messages are bounded', async (t) => {
  const huge = 'v'.repeat(1_000_000)
  const classic = mutateService(input({ name: 'classic', object: { annotations: { [TYPE]: huge } } }))
  t.equal(classic.allowed, false)
  if (!classic.allowed) t.ok(classic.message.length < 1000, `Classic-with-UDP denial is ${classic.message.length} characters`)
  const off = mutateService(input({ name: 'off', object: { etp: 'Local', annotations: { [TYPE]: 'external', [ATTRS]: `${huge},load_balancing.cross_zone.enabled=false` } } }))
  t.equal(off.allowed, false)
  if (!off.allowed) t.ok(off.message.length < 1000, `cross-zone denial is ${off.message.length} characters`)
})
