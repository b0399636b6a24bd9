import t from 'tap'
import type { MixedProtocolFact, ProbeAnswer, ProbeResult } from '../../webhook/cluster/mixed-protocol.js'
import { classifyProbeAnswer, mixedProtocolCapability, mixedProtocolFact, probeService } from '../../webhook/cluster/mixed-protocol.js'
import { mutateService } from '../../webhook/rules/service.js'
import { Service } from '../../webhook/k8s/objects.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

// What the apiservers answer, as measured on the real ones (shared/notes/old-apiservers.md); the
// NodePorts in the struct dump change from run to run.
const REFUSED_119 =
  'Service "nlb-guard-mixed-protocol-probe" is invalid: spec.ports: Invalid value: []core.ServicePort{core.ServicePort{Name:"tcp", Protocol:"TCP", Port:53, TargetPort:intstr.IntOrString{Type:0, IntVal:53, StrVal:""}, NodePort:31823}, core.ServicePort{Name:"udp", Protocol:"UDP", Port:53, TargetPort:intstr.IntOrString{Type:0, IntVal:53, StrVal:""}, NodePort:31823}}: cannot create an external load balancer with mix protocols'
const REFUSED_125 =
  'Service "nlb-guard-mixed-protocol-probe" is invalid: spec.ports: Invalid value: []core.ServicePort{…}: may not contain more than 1 protocol when type is \'LoadBalancer\''

t.test('the dry-run answer decides what the cluster can do', async (t) => {
  const cases: Array<[string, ProbeAnswer, ProbeResult['capability'], RegExp?]> = [
    ['accepted (1.26+, or 1.20–1.25 with the gate on)', { kind: 'accepted' }, 'can'],
    ['1.19 built-in validation', { kind: 'status', code: 422, reason: 'Invalid', message: REFUSED_119 }, 'cannot'],
    ['1.20–1.25 with the gate off', { kind: 'status', code: 422, reason: 'Invalid', message: REFUSED_125 }, 'cannot'],
    ['RBAC', { kind: 'status', code: 403, reason: 'Forbidden', message: 'services is forbidden: User "system:serviceaccount:nlb-guard-system:nlb-guard" cannot create resource "services" in API group "" in the namespace "nlb-guard-system"' }, 'unknown', /^HTTP 403 Forbidden: services is forbidden/],
    ['no credentials', { kind: 'status', code: 401, message: 'HTTP 401' }, 'unknown', /HTTP 401/],
    ['namespace missing', { kind: 'status', code: 404, reason: 'NotFound', message: 'namespaces "nlb-guard-system" not found' }, 'unknown', /not found/],
    ['a Service of that name exists', { kind: 'status', code: 409, reason: 'AlreadyExists', message: 'services "nlb-guard-mixed-protocol-probe" already exists' }, 'unknown', /AlreadyExists/],
    ['another webhook denies it, quoting the apiserver', { kind: 'status', code: 400, message: 'admission webhook "policy.example.com" denied the request: cannot create an external load balancer with mix protocols' }, 'unknown', /admission webhook/],
    ['another webhook denies it with 422', { kind: 'status', code: 422, message: "admission webhook \"x.example.com\" denied the request: may not contain more than 1 protocol when type is 'LoadBalancer'" }, 'unknown'],
    ['a webhook that does not support dry-run', { kind: 'status', code: 400, reason: 'BadRequest', message: 'admission webhook "x.example.com" does not support dry run' }, 'unknown'],
    ['invalid for another reason', { kind: 'status', code: 422, reason: 'Invalid', message: 'Service "nlb-guard-mixed-protocol-probe" is invalid: spec.ports[1].nodePort: Invalid value: 30053: provided port is already allocated' }, 'unknown'],
    ['an apiserver error', { kind: 'status', code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' }, 'unknown', /HTTP 500/],
    ['network', { kind: 'failed', message: 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443' }, 'unknown', /ECONNREFUSED/],
    ['timeout', { kind: 'failed', message: 'no answer within 10 s' }, 'unknown', /no answer/],
  ]
  for (const [name, answer, capability, reason] of cases) {
    const result = classifyProbeAnswer(answer)
    t.equal(result.capability, capability, name)
    if (result.capability === 'cannot') t.equal(result.message, (answer as { message: string }).message, `${name}: the apiserver's words kept`)
    if (reason !== undefined) t.match(result.capability === 'unknown' ? result.reason : '', reason, `${name}: the reason says why`)
  }
  const long = classifyProbeAnswer({ kind: 'status', code: 400, message: 'x'.repeat(100_000) })
  t.match(long, { capability: 'unknown', reason: /^HTTP 400: x+…\(99510 more characters\)$/ }, 'a caller-sized message is bounded before it reaches the log')
})

t.test('precedence: configuration > probe > version table', async (t) => {
  const can: ProbeResult = { capability: 'can' }
  const cannot: ProbeResult = { capability: 'cannot', message: REFUSED_125 }
  const unknown: ProbeResult = { capability: 'unknown', reason: 'HTTP 403' }
  const table: Array<[Parameters<typeof mixedProtocolFact>[0], ProbeResult | undefined, MixedProtocolFact]> = [
    ['enabled', cannot, { gate: 'enabled', source: 'config' }],
    ['disabled', can, { gate: 'disabled', source: 'config' }],
    ['auto', can, { gate: 'accepted', source: 'probe' }],
    ['auto', cannot, { gate: 'refused', source: 'probe' }],
    ['auto', unknown, { gate: 'auto', source: 'version-table' }],
    ['auto', undefined, { gate: 'auto', source: 'version-table' }],
  ]
  for (const [setting, probe, expected] of table) t.same(mixedProtocolFact(setting, probe), expected, `${setting} + ${probe?.capability ?? 'no probe'}`)
})

t.test('the probe Service: mixed TCP+UDP LoadBalancer, skipped by nlb-guard', async (t) => {
  const object = probeService('nlb-guard-system')
  t.same(object.spec.ports.map((p) => p.protocol), ['TCP', 'UDP'])
  // Even on a cluster nlb-guard takes for 1.19 with unbuildable mixed protocols denied, its own
  // rules leave the probe alone: otherwise the probe would measure nlb-guard, not the apiserver.
  const decision = mutateService({
    operation: 'CREATE',
    object: Service.parse(object),
    namespace: 'nlb-guard-system',
    cluster: { version: parseKubeVersion('1.19.16'), mixedProtocolGate: 'refused' },
    policy: { unbuildableMixedProtocol: 'deny' },
  })
  t.same(decision, { allowed: true, ops: [], changes: [], hints: [] })
})

/** A probe that answers from a list, and counts its calls. */
function scripted(...answers: Array<ProbeAnswer | Error>) {
  const calls = { count: 0 }
  const probe = async (): Promise<ProbeAnswer> => {
    const answer = answers[Math.min(calls.count++, answers.length - 1)]
    if (answer === undefined) throw new Error('no answers scripted')
    if (answer instanceof Error) throw answer
    return answer
  }
  return { probe, calls }
}

const forbidden: ProbeAnswer = { kind: 'status', code: 403, reason: 'Forbidden', message: 'services is forbidden' }
const refused: ProbeAnswer = { kind: 'status', code: 422, reason: 'Invalid', message: REFUSED_125 }

t.test('the capability kept between probes', async (t) => {
  t.test('unsettled until the first probe answers; then the answer', async (t) => {
    const changes: MixedProtocolFact[] = []
    const { probe } = scripted(refused)
    const capability = mixedProtocolCapability({ setting: 'auto', probe, onChange: (fact) => changes.push(fact) })
    t.notOk(capability.settled())
    t.same(capability.current(), { gate: 'auto', source: 'version-table' }, 'the table until then')
    await capability.refresh('1.25.16')
    t.ok(capability.settled())
    t.same(capability.current(), { gate: 'refused', source: 'probe' })
    t.same(changes, [{ gate: 'refused', source: 'probe' }])
  })

  t.test('a failed first probe settles on the table, and says so once', async (t) => {
    const changes: Array<[MixedProtocolFact, ProbeResult | undefined]> = []
    const { probe } = scripted(forbidden, forbidden, new Error('socket hang up'), { kind: 'accepted' })
    const capability = mixedProtocolCapability({ setting: 'auto', probe, onChange: (fact, result) => changes.push([fact, result]) })
    await capability.refresh('1.25.16')
    t.ok(capability.settled(), 'ready: the table is an answer')
    await capability.refresh('1.25.16')
    await capability.refresh('1.25.16')
    t.same(changes, [[{ gate: 'auto', source: 'version-table' }, { capability: 'unknown', reason: 'HTTP 403 Forbidden: services is forbidden' }]], 'three failed probes, one change')
    await capability.refresh('1.25.16')
    t.same(changes.at(-1), [{ gate: 'accepted', source: 'probe' }, { capability: 'can' }], 'a probe that answers takes over')
    t.equal(changes.length, 2)
  })

  t.test('a probe that cannot tell keeps the last answer while the version is the same', async (t) => {
    const changes: MixedProtocolFact[] = []
    const { probe } = scripted({ kind: 'accepted' }, { kind: 'failed', message: 'no answer within 10 s' }, forbidden, { kind: 'failed', message: 'fetch failed' })
    const capability = mixedProtocolCapability({ setting: 'auto', probe, onChange: (fact) => changes.push(fact) })
    await capability.refresh('1.22.17')
    await capability.refresh('1.22.17')
    await capability.refresh('1.22.17')
    t.same(capability.current(), { gate: 'accepted', source: 'probe' }, 'a timeout on 1.22 with the gate on must not turn every mixed Service into a denial')
    t.equal(changes.length, 1)
    await capability.refresh('1.23.17')
    t.same(capability.current(), { gate: 'auto', source: 'version-table' }, 'after an upgrade the old answer is stale: the table')
    t.equal(changes.length, 2)
  })

  t.test('a changed answer is a change; the same answer again is not', async (t) => {
    const changes: MixedProtocolFact[] = []
    const { probe } = scripted(refused, refused, { kind: 'accepted' }, { kind: 'accepted' })
    const capability = mixedProtocolCapability({ setting: 'auto', probe, onChange: (fact) => changes.push(fact) })
    for (let i = 0; i < 4; i++) await capability.refresh('1.25.16')
    t.same(changes, [{ gate: 'refused', source: 'probe' }, { gate: 'accepted', source: 'probe' }])
  })

  t.test('configuration forces the gate: no probe at all', async (t) => {
    for (const setting of ['enabled', 'disabled'] as const) {
      const changes: MixedProtocolFact[] = []
      const { probe, calls } = scripted(refused)
      const capability = mixedProtocolCapability({ setting, probe, onChange: (fact) => changes.push(fact) })
      t.ok(capability.settled(), `${setting}: ready at once`)
      await capability.refresh('1.25.16')
      t.equal(calls.count, 0, `${setting}: the apiserver is not asked`)
      t.same(changes, [{ gate: setting, source: 'config' }])
    }
  })

  t.test('no cluster to ask: the table, settled at once', async (t) => {
    const changes: MixedProtocolFact[] = []
    const capability = mixedProtocolCapability({ setting: 'auto', probe: undefined, onChange: (fact) => changes.push(fact) })
    t.ok(capability.settled())
    await capability.refresh('1.19.16')
    t.same(changes, [{ gate: 'auto', source: 'version-table' }])
  })
})
