// Faults with the real control plane: nlb-guard must never need a restart to recover.
import { get as httpGet } from 'node:http'
import t from 'tap'
import { waitFor } from '../fixtures/cli.js'
import { startControlPlane } from './harness.js'
import { pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(30 * 60_000)

function readyz(port: number): Promise<{ status: number; reasons: string[] }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reasons: (JSON.parse(body) as { reasons: string[] }).reasons }))
    }).on('error', reject)
  })
}

function metric(port: number, name: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => {
        const line = body.split('\n').find((l) => l.startsWith(`${name} `))
        resolve(line === undefined ? undefined : Number(line.split(' ')[1]))
      })
    }).on('error', reject)
  })
}

const udpService = (name: string, app: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    // IP targets: the NLB health-checks the pods, so injection: auto gives them the sidecar.
    metadata: { name, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } },
    spec: { type: 'LoadBalancer', selector: { app }, ports: [{ port: 5060, protocol: 'UDP' }] },
  })
const pod = (app: string) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${app}-0`, labels: { app } }, spec: { containers: [{ name: 'c', image: 'x' }] } })

t.test('the apiserver absent when nlb-guard starts: not ready, then ready when it comes', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  await cp.stopApiserver()
  const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig], { waitReady: false })
  t.teardown(() => guard.stop())
  const down = await readyz(guard.metricsPort)
  t.equal(down.status, 503, 'not ready without the apiserver')
  t.same(down.reasons, ['cluster version: not known yet', 'mixed-protocol probe: not answered yet', 'warn-only namespaces: not listed yet', 'service cache: not synced yet'])
  await waitFor('the log says why', async () => /not ready: cannot read the cluster version/.test(guard.log()))
  t.equal(guard.child.exitCode, null, 'still running')

  await cp.startApiserver()
  const started = Date.now()
  await waitFor('readiness once the apiserver is back', async () => (await readyz(guard.metricsPort)).status === 200, 90_000)
  t.comment(`ready ${Date.now() - started} ms after the apiserver came back`)
  t.match(guard.log(), /"msg":"cluster version"/)
  t.match(guard.log(), /"msg":"service cache synced/)
  // The probe ran once the version was read; this cluster has no nlb-guard-system namespace to run it in.
  t.match(guard.log(), /"source":"version-table","reason":"HTTP 404 NotFound: namespaces \\"nlb-guard-system\\" not found".*"msg":"mixed-protocol LoadBalancer Services: the dry-run probe cannot tell/)
})

t.test('the apiserver restarted mid-run: the Service cache re-lists and stays correct', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig])
  t.teardown(() => guard.stop())
  const manifests = await renderManifests(cp)
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(pointAt(manifests, guard)) })
  await cp.kubectl(['create', 'namespace', 'fault'])
  const ns = ['-n', 'fault']
  const sidecarFor = async (app: string): Promise<boolean> => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', ...ns, '-f', '-'], { input: pod(app), allowFail: true })
    if (r.code !== 0) return false
    return (JSON.parse(r.stdout) as { spec: { initContainers?: unknown[] } }).spec.initContainers?.length === 1
  }
  await waitFor('Service a created', async () => (await cp.kubectl(['apply', ...ns, '-f', '-'], { input: udpService('a', 'a'), allowFail: true })).code === 0, 60_000)
  await waitFor('pods of a get the sidecar', () => sidecarFor('a'), 60_000)

  await cp.restartApiserver()
  // Changes made after the restart reach the cache only through a new list or watch.
  await cp.kubectl(['apply', ...ns, '-f', '-'], { input: udpService('b', 'b') })
  await cp.kubectl(['delete', 'service', 'a', ...ns])
  await waitFor('pods of b get the sidecar', () => sidecarFor('b'), 90_000)
  await waitFor('pods of a no longer do', async () => !(await sidecarFor('a')), 90_000)
  t.pass('the cache followed a Service created and one deleted after the restart')
  t.equal(await metric(guard.metricsPort, 'nlb_guard_service_cache_size'), 1, 'cache size in the metrics')
  t.equal((await readyz(guard.metricsPort)).status, 200, 'ready throughout recovery')
})
