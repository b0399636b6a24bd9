// A large Pod against a wide Service (issue 13): one Pod with 5,000 containers × 2 ports admitted
// while the cache holds a Service with 10,000 UDP ports selecting it. Before the Pod rule indexed the
// pod's ports this took 1.3 s per admission on the shared event loop, and four in parallel delayed
// an unrelated Service review by 3.3 s. In-process (fastify's inject, JSON parsing included): the
// figure is the rule and the handler, not TLS. Run: npm run bench:large-pod [-- --rounds N]
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureDist, ROOT } from './build.ts'
import { median } from './report.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } })
const rounds = Number(values.rounds)
await ensureDist((line) => console.error(line))
const dist = (path: string) => import(join(ROOT, 'dist', path))
const { buildServer } = await dist('webhook/server/app.js')
const { createMetrics } = await dist('webhook/server/metrics.js')
const { Readiness } = await dist('webhook/server/readiness.js')
const { parseConfig } = await dist('webhook/config.js')
const { podRules } = await dist('webhook/admission/pod-rules.js')
const { parseKubeVersion } = await dist('webhook/rules/version.js')
const { selfSignedForLocalhost } = await dist('certs/issue.js')

const wide = {
  // IP targets: the NLB health-checks the pod, so the rule resolves every port (injection: auto).
  metadata: { name: 'wide', namespace: 'demo', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } },
  spec: { type: 'LoadBalancer', selector: { app: 'big' }, ports: Array.from({ length: 10_000 }, (_, i) => ({ port: 1 + i, protocol: 'UDP', targetPort: i % 2 === 0 ? 20_000 + 2 * ((i / 2) % 5000) : `missing-${i}` })) },
}
const containers = Array.from({ length: 5000 }, (_, i) => ({
  name: `c${i}`,
  image: 'app',
  ports: [{ name: `t${i}`, containerPort: 20_000 + 2 * i, protocol: 'TCP' }, { name: `u${i}`, containerPort: 20_001 + 2 * i, protocol: 'UDP' }],
}))
const review = (uid: string, kind: string, object: unknown) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind }, namespace: 'demo', operation: 'CREATE', object } })
const podBody = review('big', 'Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big', namespace: 'demo', labels: { app: 'big' } }, spec: { containers } })
const serviceBody = review('small', 'Service', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'demo' }, spec: { type: 'LoadBalancer', selector: { app: 'echo' }, ports: [{ port: 53, protocol: 'UDP' }] } })

const config = parseConfig({})
const { serving } = selfSignedForLocalhost(new Date())
const app = buildServer({
  tls: { cert: serving.certPem, key: serving.keyPem },
  metrics: createMetrics({ defaultMetrics: false }),
  readiness: new Readiness(),
  logger: false,
  admission: { config, clusterVersion: () => parseKubeVersion('1.30.0'), rules: podRules({ servicesIn: () => [wide] }, config.sidecar) },
})
const post = async (body: string) => {
  const started = performance.now()
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: body, headers: { 'content-type': 'application/json' } })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return performance.now() - started
}

await post(podBody) // warm-up
const single: number[] = []
const unrelated: number[] = []
for (let round = 0; round < rounds; round++) {
  single.push(await post(podBody))
  // Four large Pods in flight, then a small Service review behind them on the same event loop.
  const flood = [post(podBody), post(podBody), post(podBody), post(podBody)]
  unrelated.push(await post(serviceBody))
  await Promise.all(flood)
}
await app.close()
const result = {
  case: 'large pod: 5,000 containers × 2 ports vs a Service with 10,000 UDP ports',
  bodyBytes: podBody.length,
  rounds,
  podAdmissionMs: { median: median(single), max: Math.max(...single) },
  serviceReviewBehindFourLargePodsMs: { median: median(unrelated), max: Math.max(...unrelated) },
}
console.log(JSON.stringify(result))
