import t from 'tap'
import type { ProbeAnswer } from '../../webhook/cluster/mixed-protocol.js'
import { createMetrics } from '../../webhook/server/metrics.js'
import { reportedMixedProtocolCapability } from '../../webhook/server/mixed-protocol.js'
import type { MixedProtocolGateSetting } from '../../webhook/rules/service.js'
import { parseKubeVersion, type KubeVersion } from '../../webhook/rules/version.js'

const forbidden: ProbeAnswer = { kind: 'status', code: 403, reason: 'Forbidden', message: 'services is forbidden: User "system:serviceaccount:nlb-guard-system:nlb-guard" cannot create resource "services"' }
const refused: ProbeAnswer = { kind: 'status', code: 422, reason: 'Invalid', message: "Service \"nlb-guard-mixed-protocol-probe\" is invalid: spec.ports: Invalid value: []core.ServicePort{…}: may not contain more than 1 protocol when type is 'LoadBalancer'" }

interface Line {
  level: 'info' | 'warn'
  fields: Record<string, unknown>
  message: string
}

/** The server's capability with a scripted probe, a real registry and a log that keeps its lines. */
function setup(setting: MixedProtocolGateSetting, answers: ProbeAnswer[] | undefined, version: string | null = '1.25.16') {
  const lines: Line[] = []
  const metrics = createMetrics({ defaultMetrics: false })
  const current: { version: KubeVersion | undefined } = { version: version === null ? undefined : parseKubeVersion(version) }
  let calls = 0
  const probe = answers === undefined ? undefined : async () => answers[Math.min(calls++, answers.length - 1)] as ProbeAnswer
  const capability = reportedMixedProtocolCapability({
    setting,
    probe,
    version: () => current.version,
    log: {
      info: (fields, message) => lines.push({ level: 'info', fields: fields as Record<string, unknown>, message }),
      warn: (fields, message) => lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
    },
    metrics,
  })
  const gauge = async () => (await metrics.mixedProtocolCapability.get()).values.map((v) => ({ source: v.labels.source, value: v.value }))
  return { capability, lines, gauge, current, calls: () => calls }
}

t.test('RBAC refuses the probe: the version table, said once in the log and in the gauge', async (t) => {
  const { capability, lines, gauge } = setup('auto', [forbidden])
  t.same(await gauge(), [], 'nothing claimed before the first probe')
  for (let i = 0; i < 5; i++) await capability.refresh('1.25.16')
  t.equal(lines.length, 1, 'five refreshes, one line')
  t.match(lines[0], { level: 'warn', fields: { source: 'version-table', reason: /^HTTP 403 Forbidden: services is forbidden/ }, message: /cannot tell; judging by the version table/ })
  t.same(await gauge(), [{ source: 'version-table', value: 1 }], '1.25 defaults to the gate on')
  t.equal(capability.current().gate, 'auto')
})

t.test('the probe answers: its answer, one line per change, one series at a time', async (t) => {
  const { capability, lines, gauge } = setup('auto', [forbidden, refused, refused, { kind: 'accepted' }])
  await capability.refresh('1.25.16')
  t.same(await gauge(), [{ source: 'version-table', value: 1 }])
  await capability.refresh('1.25.16')
  await capability.refresh('1.25.16')
  t.same(await gauge(), [{ source: 'probe', value: 0 }], 'the version-table series is gone')
  t.equal(capability.current().gate, 'refused')
  await capability.refresh('1.25.16')
  t.same(await gauge(), [{ source: 'probe', value: 1 }])
  t.same(lines.map((l) => [l.level, l.fields['source']]), [['warn', 'version-table'], ['info', 'probe'], ['info', 'probe']])
  t.match(lines[1], { message: /the apiserver refused a dry-run one/, fields: { apiserver: /may not contain more than 1 protocol/ } })
  t.match(lines[2], { message: /the apiserver accepted a dry-run one/ })
})

t.test('configuration overrides: never probes, the gauge says config', async (t) => {
  const disabled = setup('disabled', [{ kind: 'accepted' }])
  await disabled.capability.refresh('1.25.16')
  t.equal(disabled.calls(), 0)
  t.same(disabled.capability.current(), { gate: 'disabled', source: 'config' })
  t.same(await disabled.gauge(), [{ source: 'config', value: 0 }])
  t.match(disabled.lines, [{ level: 'info', fields: { source: 'config', mixedProtocolLBService: 'disabled' } }])
  const enabled = setup('enabled', [refused], '1.19.16')
  t.same(await enabled.gauge(), [{ source: 'config', value: 0 }], 'the gate does not exist on 1.19: forcing it on changes nothing')
})

t.test('the gauge follows the version when the table or a forced gate judges', async (t) => {
  const { capability, gauge, current, lines } = setup('auto', undefined, null)
  t.same(await gauge(), [], 'no version yet: no claim')
  current.version = parseKubeVersion('1.23.17')
  capability.versionChanged()
  t.same(await gauge(), [{ source: 'version-table', value: 0 }])
  current.version = parseKubeVersion('1.24.0')
  capability.versionChanged()
  t.same(await gauge(), [{ source: 'version-table', value: 1 }])
  t.match(lines, [{ level: 'info', message: /version table \(--kube-version is set: no probe\)/ }], 'no cluster to probe is not a warning')
  t.equal(lines.length, 1)
})
