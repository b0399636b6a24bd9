// A stand-in kube-apiserver for the Pod benchmark: `/version`, and a list and watch of N Services,
// served by testkit/fake-apiserver.ts, so `nlb-guard serve --kubeconfig` fills its real informer cache.
import { startFakeApiserver as startFake, type FakeApiserver } from '../testkit/fake-apiserver.ts'

/**
 * `count` LoadBalancer Services like a big cluster's: one selects the benchmarked Pod (namespace
 * `demo`, `app.kubernetes.io/name: coredns`, UDP 5353, which the pod does not serve on TCP, so the
 * sidecar is injected); 1 in 100 are other Services in `demo`; the rest are spread over 1,000 other
 * namespaces; 3 in 4 are TCP-only. The cache keeps the UDP ones; the rule must find ours among them.
 */
export function serviceItems(count: number): unknown[] {
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
  return items
}

export function startFakeApiserver(count: number, dir: string): Promise<FakeApiserver> {
  return startFake(dir, serviceItems(count), `fake-apiserver-${count}`)
}
