// Warn-only per namespace on a real kube-apiserver: with the global setting `enforce`, a namespace
// labelled nlb-guard.io/enforcement=warn gets its UDP LoadBalancer Service stored exactly as written,
// with kubectl printing what enforce would have changed; an unlabelled namespace's is mutated; and
// removing the label brings enforcement back (nlb-guard's namespace informer sees the change by watch).
import t from 'tap'
import { eventually, startControlPlane, type ControlPlane } from './harness.js'
import { metricsText, pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(15 * 60_000)

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const udp = (name: string, namespace: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } })

t.test('enforcement: warn for one labelled namespace on a real kube-apiserver', async (t) => {
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())
  const manifests = await renderManifests(cp)
  const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig], { readyTimeoutMs: 180_000 })
  t.teardown(() => guard.stop())
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(pointAt(manifests, guard)) })
  await cp.kubectl(['create', 'namespace', 'rollout'])
  await cp.kubectl(['create', 'namespace', 'prod'])
  await cp.kubectl(['label', 'namespace', 'rollout', 'nlb-guard.io/enforcement=warn'])
  const annotationOf = async (name: string, namespace: string) =>
    (JSON.parse((await cp.kubectl(['get', 'service', name, '-n', namespace, '-o', 'json'])).stdout) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.[TYPE]

  // The webhook registration, then the label, reach nlb-guard's informer by watch.
  await eventually('the label seen', async () => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: udp('probe', 'rollout'), allowFail: true })
    return r.code === 0 && r.stderr.includes('enforcement: warn') ? r : undefined
  }, 120_000)

  const created = await cp.kubectl(['create', '-f', '-'], { input: udp('dns', 'rollout') })
  t.match(created.stderr, /Warning: nlb-guard \(enforcement: warn, nothing changed\) would have added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/, 'kubectl prints what enforce would have done')
  t.equal(await annotationOf('dns', 'rollout'), undefined, 'labelled namespace: stored exactly as written')

  const enforced = await cp.kubectl(['create', '-f', '-'], { input: udp('dns', 'prod') })
  t.notMatch(enforced.stderr, /enforcement: warn/)
  t.equal(await annotationOf('dns', 'prod'), 'nlb', 'unlabelled namespace: mutated')

  const metrics = await metricsText(guard.metricsPort)
  t.match(metrics, /nlb_guard_warn_only_total\{rule="S2",action="change",dry_run="false"\} 1\b/, 'the would-be change counted as warn-only')
  t.match(metrics, /nlb_guard_mutations_total\{rule="S2",dry_run="false"\} 1\b/, 'the real one as a mutation')

  await cp.kubectl(['label', 'namespace', 'rollout', 'nlb-guard.io/enforcement-'])
  await eventually('enforced again once the label is gone', async () => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: udp('again', 'rollout') })
    const object = JSON.parse(r.stdout) as { metadata: { annotations?: Record<string, string> } }
    return object.metadata.annotations?.[TYPE] === 'nlb' ? true : undefined
  })
  t.pass('label removed: the namespace is enforced again')

  // The chart's RBAC: list and watch on namespaces (nlb-guard ran as admin above), and no more.
  const rbac = manifests.filter((m) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(String(m.kind)))
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(rbac) })
  const as = ['auth', 'can-i', '--as=system:serviceaccount:nlb-guard-system:nlb-guard']
  const can = async (...args: string[]) => (await cp.kubectl([...as, ...args], { allowFail: true })).stdout.trim()
  t.equal(await can('list', 'namespaces'), 'yes')
  t.equal(await can('watch', 'namespaces'), 'yes')
  t.equal(await can('update', 'namespaces'), 'no', 'it never writes namespaces')
})
