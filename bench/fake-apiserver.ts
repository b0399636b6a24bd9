// A stand-in kube-apiserver for the Pod benchmark: `/version`, and a list and watch of N Services,
// so `nlb-guard serve --kubeconfig` fills its real informer cache without a control plane.
// Node builtins only (the bench runs as .ts on Node 24's type stripping).
import { createServer, type Server } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface FakeApiserver {
  readonly kubeconfig: string
  stop(): Promise<void>
}

/**
 * `count` LoadBalancer Services like a big cluster's: one selects the benchmarked Pod (namespace
 * `demo`, `app.kubernetes.io/name: coredns`, UDP 5353, which the pod does not serve on TCP, so the
 * sidecar is injected); 1 in 100 are other Services in `demo`; the rest are spread over 1,000 other
 * namespaces; 3 in 4 are TCP-only. The cache keeps the UDP ones; the rule must find ours among them.
 */
export function serviceList(count: number): unknown {
  const items = []
  for (let i = 0; i < count; i++) {
    const ours = i === 0
    const namespace = ours || i % 100 === 0 ? 'demo' : `ns-${i % 1000}`
    items.push({
      // IP targets: the NLB health-checks the pods, so the Pod rule (injection: auto) adds the sidecar.
      metadata: { name: `svc-${i}`, namespace, resourceVersion: String(i + 1), uid: `u-${i}`, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } },
      spec: {
        type: 'LoadBalancer',
        selector: ours ? { 'app.kubernetes.io/name': 'coredns' } : { app: `app-${i}` },
        ports: [{ name: 'p', port: 5353, protocol: ours || i % 4 === 0 ? 'UDP' : 'TCP', targetPort: 5353 }],
      },
    })
  }
  return { apiVersion: 'v1', kind: 'ServiceList', metadata: { resourceVersion: String(count + 1) }, items }
}

export async function startFakeApiserver(count: number, dir: string): Promise<FakeApiserver> {
  const list = JSON.stringify(serviceList(count))
  const watches = new Set<import('node:http').ServerResponse>()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/version') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ major: '1', minor: '30', gitVersion: 'v1.30.0' }))
    } else if (url.pathname === '/api/v1/services' && url.searchParams.get('watch') === 'true') {
      // An open watch with nothing to say: the cache stays as listed.
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      watches.add(res)
      res.on('close', () => watches.delete(res))
    } else if (url.pathname === '/api/v1/services') {
      res.setHeader('content-type', 'application/json')
      res.end(list)
    } else {
      res.statusCode = 404
      res.end(JSON.stringify({ kind: 'Status', code: 404 }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const kubeconfig = join(dir, `fake-apiserver-${count}.kubeconfig`)
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain HTTP unless TLS verification is off; this is loopback only.
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'fake' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }),
  )
  return {
    kubeconfig,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const res of watches) res.destroy()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
