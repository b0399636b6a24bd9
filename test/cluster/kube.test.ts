import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import { dryRunMixedProtocolService } from '../../webhook/cluster/kube.js'
import { classifyProbeAnswer } from '../../webhook/cluster/mixed-protocol.js'

interface Seen {
  method: string
  path: string
  dryRun: string | null
  body: { metadata?: { name?: string; annotations?: Record<string, string> }; spec?: { type?: string; ports?: Array<{ protocol: string }> } }
}

/** A loopback stand-in for the apiserver's Service create: answers each request with `answer`. */
async function fakeApiserver(t: Test, answer: (res: ServerResponse) => void) {
  const seen: Seen[] = []
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = ''
    for await (const chunk of req) text += String(chunk)
    const url = new URL(req.url ?? '/', 'http://x')
    seen.push({ method: req.method ?? '', path: url.pathname, dryRun: url.searchParams.get('dryRun'), body: JSON.parse(text || '{}') })
    answer(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromOptions({
    // client-node refuses plain http unless told to skip TLS verification.
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'x' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  })
  return { kubeConfig, seen }
}

const json = (code: number, body: unknown) => (res: ServerResponse) => {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
const status = (code: number, reason: string, message: string) => json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message })

t.test('the request: a dry-run create of the mixed-protocol probe in our namespace', async (t) => {
  const { kubeConfig, seen } = await fakeApiserver(t, json(201, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'nlb-guard-mixed-protocol-probe' } }))
  const answer = await dryRunMixedProtocolService(kubeConfig, 'guard-ns', 5000)()
  t.same(answer, { kind: 'accepted' })
  t.equal(seen.length, 1)
  t.match(seen[0], { method: 'POST', path: '/api/v1/namespaces/guard-ns/services', dryRun: 'All' }, 'dryRun=All: nothing is stored')
  t.same(seen[0]?.body.spec?.ports?.map((p) => p.protocol), ['TCP', 'UDP'])
  t.equal(seen[0]?.body.spec?.type, 'LoadBalancer')
  t.equal(seen[0]?.body.metadata?.annotations?.['nlb-guard.io/ignore'], 'true', "nlb-guard's own rules skip it")
})

t.test("the apiserver's refusals reach the decision as its Status says them", async (t) => {
  const cases: Array<[string, (res: ServerResponse) => void, object, string]> = [
    [
      '1.25 with the gate off',
      status(422, 'Invalid', "Service \"nlb-guard-mixed-protocol-probe\" is invalid: spec.ports: Invalid value: []core.ServicePort{}: may not contain more than 1 protocol when type is 'LoadBalancer'"),
      { kind: 'status', code: 422, reason: 'Invalid' },
      'cannot',
    ],
    ['RBAC', status(403, 'Forbidden', 'services is forbidden: User "x" cannot create resource "services"'), { kind: 'status', code: 403, reason: 'Forbidden', message: /cannot create resource/ }, 'unknown'],
    ['namespace missing', status(404, 'NotFound', 'namespaces "guard-ns" not found'), { kind: 'status', code: 404, message: 'namespaces "guard-ns" not found' }, 'unknown'],
    ['not a Status', (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>'), { kind: 'status', code: 502, message: '<html>bad gateway</html>' }, 'unknown'],
    ['401 without a body', (res) => res.writeHead(401).end(), { kind: 'status', code: 401, message: 'HTTP 401' }, 'unknown'],
  ]
  for (const [name, answer, expected, capability] of cases) {
    const { kubeConfig } = await fakeApiserver(t, answer)
    const got = await dryRunMixedProtocolService(kubeConfig, 'guard-ns', 5000)()
    t.match(got, expected, name)
    t.equal(classifyProbeAnswer(got).capability, capability, `${name}: ${capability}`)
  }
})

t.test('no answer: a refused connection and a timeout are failures, never thrown', async (t) => {
  const { kubeConfig } = await fakeApiserver(t, () => {})
  const silent = await dryRunMixedProtocolService(kubeConfig, 'guard-ns', 50)()
  t.same(silent, { kind: 'failed', message: 'no answer within 0.05 s' })

  const closed = new KubeConfig()
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
  closed.loadFromOptions({
    // client-node refuses plain http unless told to skip TLS verification.
    clusters: [{ name: 'gone', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'gone' }],
    contexts: [{ name: 'gone', cluster: 'gone', user: 'gone' }],
    currentContext: 'gone',
  })
  const refused = await dryRunMixedProtocolService(closed, 'guard-ns', 5000)()
  t.match(refused, { kind: 'failed', message: /ECONNREFUSED/ })
})
