// enforcement: warn end to end on a real kube-apiserver: nlb-guard stores a UDP LoadBalancer Service
// exactly as written (no NLB annotation), kubectl prints what enforce would have changed, and the
// would-be change is counted apart from real mutations.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { waitFor } from '../fixtures/cli.js'
import { startControlPlane, type ControlPlane, type KubectlResult } from './harness.js'
import { metricsText, pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(15 * 60_000)

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const udp = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'rollout' }, spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } })

t.test('enforcement: warn on a real kube-apiserver', async (t) => {
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-warn-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'config.yaml'), 'enforcement: warn\n')
  const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig, '--config', join(dir, 'config.yaml')], { readyTimeoutMs: 180_000 })
  t.teardown(() => guard.stop())
  const webhooks = pointAt(await renderManifests(cp), guard)
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(webhooks) })
  await cp.kubectl(['create', 'namespace', 'rollout'])

  let preview: KubectlResult | undefined
  await waitFor('the webhook answers', async () => {
    preview = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: udp('probe'), allowFail: true })
    return preview.code === 0 && preview.stderr.includes('enforcement: warn')
  }, 120_000)

  const created = await cp.kubectl(['create', '-f', '-'], { input: udp('dns') })
  t.equal(created.code, 0, 'admitted')
  t.match(created.stderr, /Warning: nlb-guard \(enforcement: warn, nothing changed\) would have added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/, 'kubectl prints what enforce would have done')
  const stored = JSON.parse((await cp.kubectl(['get', 'service', 'dns', '-n', 'rollout', '-o', 'json'])).stdout) as { metadata: { annotations?: Record<string, string> } }
  t.equal(stored.metadata.annotations?.[TYPE], undefined, 'stored exactly as written: nothing changed')

  const metrics = await metricsText(guard.metricsPort)
  t.match(metrics, /nlb_guard_warn_only_total\{rule="S2",action="change",dry_run="false"\} 1/, 'the would-be change is counted')
  t.match(metrics, /nlb_guard_warn_only_total\{rule="S2",action="change",dry_run="true"\} [1-9]/, 'dry runs apart')
  t.notMatch(metrics, /nlb_guard_mutations_total\{/, 'and no mutation')
})
