// `nlb-guard audit` on a real kube-apiserver: objects created while nlb-guard was not registered are
// reported (and `kubectl get svc -A -o yaml | nlb-guard check -` names the same Services); once it is
// registered, new objects arrive corrected and drop out of the report; the read-only ClusterRole in
// manifests/audit is all the audit needs.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, runCli } from '../fixtures/cli.js'
import { eventually, startControlPlane, type ControlPlane } from './harness.js'
import { pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(20 * 60_000)

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'


const service = (name: string, namespace: string, ports: Array<[number, string]>, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, annotations },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: ports.map(([port, protocol]) => ({ name: `${protocol.toLowerCase()}-${port}`, port, protocol })) },
})

const container = (name: string, udpPort: number) => ({ name, image: 'example/app:1', ports: [{ name: 'udp', containerPort: udpPort, protocol: 'UDP' }] })

interface Record_ { kind: string; namespace: string | null; name: string; rule: string | null; action: string; message: string }
const records = (stdout: string): Record_[] => stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record_)
const failing = (rs: Record_[]) => rs.filter((r) => r.action !== 'hint').map((r) => `${r.action} ${r.kind} ${r.namespace}/${r.name}${r.rule ? ` ${r.rule}` : ''}`).sort()

t.test('audit on a real kube-apiserver', async (t) => {
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())
  const kubectl = cp.kubectl.bind(cp)
  const apply = async (objects: unknown[]) => {
    await eventually('objects stored (the ServiceCIDR comes up after the apiserver)', async () => {
      const r = await kubectl(['apply', '-f', '-'], { input: toYaml(objects), allowFail: true })
      return r.code === 0 ? r : undefined
    })
  }
  await kubectl(['create', 'namespace', 'legacy'])

  // Before nlb-guard: a UDP Service without the nlb annotation (S2), a TCP+UDP one the in-tree
  // provider never builds (pending), a clean TCP one, a clean one for IP targets, and pods of a
  // Deployment behind it without the health-check sidecar (no controller-manager runs here, so
  // the ReplicaSet and pods are created by hand, with the owner references a controller sets).
  await apply([
    service('dns', 'legacy', [[53, 'UDP']]),
    service('echo', 'legacy', [[12345, 'TCP'], [12345, 'UDP']]),
    service('web', 'legacy', [[443, 'TCP']]),
    service('sip', 'legacy', [[5060, 'UDP']], { [TYPE]: 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' }),
    service('kube-dns-udp', 'kube-system', [[53, 'UDP']]),
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'sip', namespace: 'legacy' }, spec: { selector: { matchLabels: { app: 'sip' } }, template: { metadata: { labels: { app: 'sip' } }, spec: { containers: [container('sip', 5060)] } } } },
  ])
  const deployment = JSON.parse((await kubectl(['get', 'deployment', 'sip', '-n', 'legacy', '-o', 'json'])).stdout)
  const owner = (kind: string, o: { metadata: { name: string; uid: string } }) => ({ apiVersion: kind === 'Deployment' ? 'apps/v1' : 'apps/v1', kind, name: o.metadata.name, uid: o.metadata.uid, controller: true })
  await apply([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'sip-5d8f', namespace: 'legacy', ownerReferences: [owner('Deployment', deployment)] }, spec: { selector: { matchLabels: { app: 'sip' } }, template: { metadata: { labels: { app: 'sip' } }, spec: { containers: [container('sip', 5060)] } } } }])
  const replicaSet = JSON.parse((await kubectl(['get', 'replicaset', 'sip-5d8f', '-n', 'legacy', '-o', 'json'])).stdout)
  const pod = (name: string, containers: unknown[]) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'legacy', labels: { app: 'sip' }, ownerReferences: [owner('ReplicaSet', replicaSet)] }, spec: { containers } })
  await apply([
    pod('sip-5d8f-a', [container('sip', 5060)]),
    pod('sip-5d8f-b', [container('sip', 5060)]),
    { ...pod('sip-with-sidecar', [container('sip', 5060), { name: 'nlb-guard-healthcheck', image: 'example/hc:1' }]), metadata: { name: 'sip-with-sidecar', namespace: 'legacy', labels: { app: 'sip' } } },
  ])

  const expected = ['change Service legacy/dns S2', 'change Service legacy/echo S2', 'missing-sidecar Deployment legacy/sip P1', 'pending Service legacy/echo S1']

  t.test('lists every object created before registration that the rules would change', async (t) => {
    const run = await runCli(['audit', '--kubeconfig', cp.kubeconfig, '-o', 'json'])
    t.equal(run.code, 1, run.stderr)
    const rs = records(run.stdout)
    t.same(failing(rs), expected, 'dns, echo and the sip pods; not web, not the pod with the sidecar, not kube-system')
    const sidecar = rs.find((r) => r.action === 'missing-sidecar')
    t.match(sidecar?.message, /^2 running pod\(s\) \(sip-5d8f-a, sip-5d8f-b\) lack .*kubectl -n legacy rollout restart deployment\/sip$/)
    const text = await runCli(['audit', '--kubeconfig', cp.kubeconfig])
    t.equal(text.code, 1)
    t.match(text.stdout, /^cluster: Service legacy\/dns: would change \(S2\): added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/m)
    t.match(text.stdout, /nlb-guard audit: 3 object\(s\) would be changed or denied\n$/)
  })

  t.test('kubectl get svc -A -o yaml | nlb-guard check - names each broken Service', async (t) => {
    const list = await kubectl(['get', 'svc', '-A', '-o', 'yaml'])
    const run = await runCli(['check', '-', '-o', 'json'], { input: list.stdout })
    t.equal(run.code, 1, run.stderr)
    const services = records(run.stdout).filter((r) => r.action !== 'hint').map((r) => `${r.namespace}/${r.name}`)
    t.same([...new Set(services)].sort(), ['kube-system/kube-dns-udp', 'legacy/dns', 'legacy/echo'], 'check reads the List kubectl prints; it knows no excluded namespaces')
  })

  t.test('once registered, new objects arrive corrected; the old ones are still reported', async (t) => {
    const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig])
    t.teardown(() => guard.stop())
    const manifests = await renderManifests(cp)
    const webhooks = pointAt(manifests, guard)
    const rest = manifests.filter((m) => m.kind !== 'MutatingWebhookConfiguration' && m.kind !== 'ValidatingWebhookConfiguration')
    await apply([...rest, ...webhooks])
    const created = await eventually('the webhook mutates new Services', async () => {
      const r = await kubectl(['apply', '-o', 'json', '-f', '-'], { input: JSON.stringify(service('dns-new', 'legacy', [[53, 'UDP']])), allowFail: true })
      const annotations = r.code === 0 ? JSON.parse(r.stdout).metadata.annotations : undefined
      if (annotations?.[TYPE] === 'nlb') return r
      if (r.code === 0) await kubectl(['delete', 'service', 'dns-new', '-n', 'legacy'])
      return undefined
    })
    t.ok(created)
    const run = await runCli(['audit', '--kubeconfig', cp.kubeconfig, '-o', 'json'])
    t.equal(run.code, 1)
    t.same(failing(records(run.stdout)), expected, 'dns-new is fine; what predates nlb-guard still needs fixing')
  })

  t.test("manifests/audit's read-only ClusterRole is all the audit needs", async (t) => {
    const applied = await kubectl(['apply', '-k', join(ROOT, 'manifests/audit')], { allowFail: true })
    t.equal(applied.code, 0, applied.stderr)
    const as = ['--as', 'system:serviceaccount:nlb-guard-system:nlb-guard-audit']
    for (const [verb, resource, allowed] of [['list', 'pods', 'yes'], ['list', 'replicasets.apps', 'yes'], ['get', 'services', 'no'], ['create', 'services', 'no'], ['patch', 'pods', 'no'], ['list', 'secrets', 'no']] as const) {
      const r = await kubectl(['auth', 'can-i', verb, resource, '-A', ...as], { allowFail: true })
      t.equal(r.stdout.trim(), allowed, `${verb} ${resource}: ${allowed}`)
    }
    const token = (await kubectl(['create', 'token', 'nlb-guard-audit', '-n', 'nlb-guard-system'])).stdout.trim()
    const kubeconfig = join(cp.dir, 'audit-kubeconfig')
    await writeFile(kubeconfig, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cp.server, 'certificate-authority-data': Buffer.from(cp.ca).toString('base64') } }],
      users: [{ name: 'audit', user: { token } }],
      contexts: [{ name: 'audit', context: { cluster: 'e2e', user: 'audit' } }],
      'current-context': 'audit',
    }))
    const run = await runCli(['audit', '--kubeconfig', kubeconfig, '-o', 'json'])
    t.equal(run.code, 1, run.stderr)
    t.same(failing(records(run.stdout)), expected)
    const denied = await runCli(['audit', '--kubeconfig', kubeconfig.replace('audit-kubeconfig', 'kubeconfig-missing')])
    t.equal(denied.code, 3, 'a kubeconfig that cannot be read is an input error')
    t.match(denied.stderr, /^nlb-guard audit: cannot load the kubeconfig: /)
  })
})
