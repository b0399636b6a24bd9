// The mixed-protocol probe on a real kube-apiserver: nlb-guard, running as its own ServiceAccount
// with the shipped RBAC, asks the apiserver with a dry-run whether it accepts a mixed TCP+UDP
// LoadBalancer Service; its own webhook is called for that dry-run and lets it through; nothing is
// stored; and without the RBAC it falls back to the version table, saying so.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { waitFor } from '../fixtures/cli.js'
import { startControlPlane, type ControlPlane } from './harness.js'
import { metricsText, type NlbGuard, pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(10 * 60_000)

const NAMESPACE = 'nlb-guard-system'
const PROBE = 'nlb-guard-mixed-protocol-probe'

/** The `nlb_guard_mixed_protocol_capability` series, as `source=value`. */
async function capabilitySeries(guard: NlbGuard): Promise<string[]> {
  const text = await metricsText(guard.metricsPort)
  return [...text.matchAll(/^nlb_guard_mixed_protocol_capability\{source="([^"]+)"\} (\S+)$/gm)].map((m) => `${m[1]}=${m[2]}`)
}

function logLines(guard: NlbGuard): Array<Record<string, unknown>> {
  return guard
    .log()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

const capabilityLines = (guard: NlbGuard) => logLines(guard).filter((l) => String(l['msg']).startsWith('mixed-protocol LoadBalancer Services:'))

/** A kubeconfig for nlb-guard's own ServiceAccount, with a token from the TokenRequest API. */
async function serviceAccountKubeconfig(cp: ControlPlane, file: string): Promise<string> {
  const token = (await cp.kubectl(['create', 'token', 'nlb-guard', '-n', NAMESPACE, '--duration=1h'])).stdout.trim()
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cp.server, 'certificate-authority-data': Buffer.from(cp.ca).toString('base64') } }],
      users: [{ name: 'nlb-guard', user: { token } }],
      contexts: [{ name: 'nlb-guard', context: { cluster: 'e2e', user: 'nlb-guard', namespace: NAMESPACE } }],
      'current-context': 'nlb-guard',
    }),
  )
  return file
}

function mixedService(annotations: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'unmarked-probe', namespace: NAMESPACE, annotations },
    spec: { type: 'LoadBalancer', ports: [{ name: 'tcp', port: 53, protocol: 'TCP' }, { name: 'udp', port: 53, protocol: 'UDP' }] },
  })
}

t.test('the mixed-protocol probe on kube-apiserver 1.37', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  const dir = t.testdir()
  const manifests = await renderManifests(cp)
  const rest = manifests.filter((m) => m.kind !== 'MutatingWebhookConfiguration' && m.kind !== 'ValidatingWebhookConfiguration')
  // The namespace, ServiceAccount and RBAC exactly as shipped (the Deployment is stored, never run).
  const applied = await cp.kubectl(['apply', '-f', '-'], { input: toYaml(rest), allowFail: true })
  t.equal(applied.code, 0, `manifests/base applied: ${applied.stderr}`)
  const kubeconfig = await serviceAccountKubeconfig(cp, join(dir, 'kubeconfig'))
  // Deny what nlb-guard can deny in a namespace it does not skip: a probe nlb-guard's rules looked
  // at would be refused by nlb-guard itself (the in-tree provider cannot build mixed protocols).
  const config = join(dir, 'config.yaml')
  await writeFile(config, stringify({ excludedNamespaces: [], unbuildableMixedProtocol: 'deny' }))

  t.test('accepted on 1.37, through nlb-guard\'s own webhook, nothing stored', async (t) => {
    const guard = await startNlbGuard(['--kubeconfig', kubeconfig, '--config', config], {
      // The webhooks send everything, nlb-guard's namespace included, to this nlb-guard before it
      // starts: its very first probe passes through its own webhook.
      async beforeStart(target) {
        const webhooks = pointAt(manifests, target, (w) => {
          const { namespaceSelector: _n, matchConditions: _m, ...rest } = w
          return rest
        })
        await cp.kubectl(['apply', '-f', '-'], { input: toYaml(webhooks) })
        // In use once a Service write fails for want of a server to call.
        await waitFor('the apiserver calls the webhooks', async () => {
          const r = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: mixedService({}), allowFail: true })
          return /failed calling webhook/.test(r.stderr)
        }, 60_000)
      },
    })
    t.teardown(() => guard.stop())

    const lines = capabilityLines(guard)
    t.match(lines, [{ level: 30, source: 'probe', msg: 'mixed-protocol LoadBalancer Services: the apiserver accepted a dry-run one' }], 'ready only after the probe; one line')
    t.equal(lines.length, 1)
    t.same(await capabilitySeries(guard), ['probe=1'])

    const probes = guard.admissions().filter((a) => a['name'] === PROBE)
    t.match(probes, [{ webhook: 'mutate', namespace: NAMESPACE, operation: 'CREATE', dryRun: true, decision: 'allowed' }, { webhook: 'validate', dryRun: true, decision: 'allowed' }], "nlb-guard's own webhooks were asked, and allowed it")
    t.equal(probes.length, 2)

    const stored = await cp.kubectl(['get', 'services', '-n', NAMESPACE, '-o', 'name'])
    t.same(stored.stdout.trim().split('\n'), ['service/nlb-guard'], 'dryRun=All: nothing stored (only the webhook Service from manifests/base)')
    const probe = await cp.kubectl(['get', 'service', PROBE, '-n', NAMESPACE], { allowFail: true })
    t.match(probe.stderr, /NotFound/)

    // The control: the same Service without the marker is what nlb-guard denies here.
    const unmarked = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: mixedService({}), allowFail: true })
    t.match(unmarked.stderr, /admission webhook "services\.nlb-guard\.io" denied the request: .*in-tree AWS cloud provider never builds a mixed-protocol load balancer/)
  })

  t.test('without the RBAC: the version table, said in the log and the metric', async (t) => {
    await cp.kubectl(['delete', 'rolebinding', PROBE, '-n', NAMESPACE])
    const guard = await startNlbGuard(['--kubeconfig', kubeconfig, '--config', config])
    t.teardown(() => guard.stop())
    const lines = capabilityLines(guard)
    t.match(lines, [{
      level: 40,
      source: 'version-table',
      reason: /^HTTP 403 Forbidden: services is forbidden: User "system:serviceaccount:nlb-guard-system:nlb-guard" cannot create resource "services"/,
      msg: 'mixed-protocol LoadBalancer Services: the dry-run probe cannot tell; judging by the version table until it can',
    }])
    t.equal(lines.length, 1)
    t.same(await capabilitySeries(guard), ['version-table=1'], '1.37: the table says it can')
  })

  t.test('configuration forces the gate: no probe, the metric says config', async (t) => {
    // The same account without the probe's RBAC: a probe would fail and warn. Forced, nothing is asked.
    const forced = join(dir, 'forced.yaml')
    await writeFile(forced, stringify({ mixedProtocolLBService: 'disabled' }))
    const forcedGuard = await startNlbGuard(['--kubeconfig', kubeconfig, '--config', forced])
    t.teardown(() => forcedGuard.stop())
    t.match(capabilityLines(forcedGuard), [{ level: 30, source: 'config', mixedProtocolLBService: 'disabled' }])
    t.equal(capabilityLines(forcedGuard).length, 1)
    t.same(await capabilitySeries(forcedGuard), ['config=1'], 'GA on 1.37: the forced-off gate cannot switch it off')
  })
})
