import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect as netConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createSecureContext } from 'node:tls'
import t from 'tap'
import { parse } from 'yaml'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { bundledServer } from '../fixtures/bundle.js'
import { ROOT, waitFor } from '../fixtures/cli.js'
import { plainGet, serve } from '../fixtures/serve.js'
import { startFakeApiserver } from '../../testkit/fake-apiserver.js'
import { postRequest, RawConnection, type RawResponse } from './fixtures/raw-client.js'

/**
 * The shapes of issue 13's attack run, each a bounded flood against the real TLS server (bundled as the
 * image runs it, so RSS is the product's and not tap's TypeScript compiler's; a fake apiserver on loopback for its Service cache) while a valid review is sent over its
 * own connection again and again. Per flood: the requests, what the server answered, /metrics and
 * RSS before and after, and the valid review's latency during it (reported: figures for the README's
 * Reliability section; the assertions are on answers, sizes and closes, never on a clock).
 */
t.setTimeout(300_000)

const WIDE_SERVICE_PORTS = 10_000
/** The container's memory limit as the chart sets it: above it the kernel kills nlb-guard. */
const MEMORY_LIMIT_BYTES = (() => {
  const values = parse(readFileSync(`${ROOT}charts/nlb-guard/values.yaml`, 'utf8')) as { resources: { limits: { memory: string } } }
  const mi = /^(\d+)Mi$/.exec(values.resources.limits.memory)
  if (mi === null) throw new Error(`resources.limits.memory ${values.resources.limits.memory}: expected <n>Mi`)
  return Number(mi[1]) * 1024 * 1024
})()
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const answerOf = (response: RawResponse) => JSON.parse(response.body.toString()) as { response: { uid: string; allowed: boolean; status?: { message: string }; warnings?: string[] } }

/**
 * Resolves once the server has closed a connection that the client opened and kept silent. A close
 * before 'connect' (the connect itself failed or timed out) rejects: that is not the server's doing.
 */
function closedByServer(socket: Socket): Promise<void> {
  let connected = false
  socket.once('connect', () => (connected = true))
  socket.on('error', () => {
    // a reset is a close too, once connected
  })
  return new Promise((resolve, reject) =>
    socket.once('close', () => (connected ? resolve() : reject(new Error('the connection was never established')))),
  )
}

/** Connections opened per wave: under the listen backlog (511), so no SYN waits for a retransmit. */
const WAVE = 100

t.test('issue 13 floods against nlb-guard serve', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-floods-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The cached Service of the Pod flood: 10,000 UDP ports with IP targets, selecting app=big.
  const wide = {
    metadata: { name: 'wide', namespace: 'demo', resourceVersion: '7', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip', 'service.beta.kubernetes.io/aws-load-balancer-type': 'external' } },
    spec: { type: 'LoadBalancer', selector: { app: 'big' }, ports: Array.from({ length: WIDE_SERVICE_PORTS }, (_, i) => ({ name: `u${i}`, port: 30_000 + (i % 30_000), protocol: 'UDP', targetPort: 30_000 + i })) },
  }
  const apiserver = await startFakeApiserver(dir, [wide])
  t.teardown(() => apiserver.stop())
  const server = await serve(t, { args: ['--kubeconfig', apiserver.kubeconfig], env: { _TAPJS_PROCESSINFO_COVERAGE_: '0' }, keepLog: false, entry: await bundledServer(t) })
  const pid = server.child.pid ?? 0
  const connectOptions = { host: '127.0.0.1', port: server.port, secureContext: createSecureContext({ ca: server.ca }), servername: 'localhost' }
  const metricsBytes = async () => (await plainGet(server.metricsPort, '/metrics')).body.length

  const valid = json(reviewFor(serviceObject({ udp: true }), { uid: 'probe' }))
  const validExpected = async (connection: RawConnection) => {
    const answer = answerOf(await connection.send(...postRequest('/mutate', valid)))
    if (answer.response.uid !== 'probe' || answer.response.allowed !== true) throw new Error(`the valid review was answered ${JSON.stringify(answer).slice(0, 200)}`)
  }
  // Warm-up, then the baseline.
  const warm = await RawConnection.open(connectOptions)
  for (let i = 0; i < 500; i++) await validExpected(warm)
  warm.close()
  const baselineRss = await rssBytes(pid)
  const baselineMetrics = await metricsBytes()
  let highest = baselineRss

  /** Runs `flood` while a valid review is sent back to back on its own connection; returns the figures. */
  async function during(name: string, flood: () => Promise<{ requests: number; answers: string }>) {
    const probe = await RawConnection.open(connectOptions)
    let running = true
    const latencies: number[] = []
    const probing = (async () => {
      while (running) {
        const started = performance.now()
        await validExpected(probe)
        latencies.push(performance.now() - started)
      }
    })()
    const rssBefore = await rssBytes(pid)
    const metricsBefore = await metricsBytes()
    let peak = rssBefore
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssBytes(pid))
        // The sampling cadence (10 per second), not a wait for anything.
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    const result = await flood()
    running = false
    sampling = false
    await Promise.all([probing, sampler])
    probe.close()
    const rssAfter = await rssBytes(pid)
    highest = Math.max(highest, peak, rssAfter)
    const metricsAfter = await metricsBytes()
    latencies.sort((a, b) => a - b)
    const median = latencies[Math.floor(latencies.length / 2)] ?? NaN
    const max = latencies.at(-1) ?? NaN
    const line = `${name}: ${result.requests} requests (${result.answers}); /metrics ${metricsBefore} → ${metricsAfter} bytes; RSS ${mib(rssBefore)} → peak ${mib(peak)} → ${mib(rssAfter)}; valid review during it: ${latencies.length} answered, median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms`
    console.log(`# ${line}`)
    t.ok(latencies.length > 0, `${name}: valid reviews kept being answered correctly during the flood`)
    return { metricsBefore, metricsAfter }
  }

  /** `count` requests over `connections` keep-alive connections, each answer checked. */
  async function send(count: number, connections: number, request: (i: number) => Buffer[], check: (response: RawResponse, i: number) => void) {
    let next = 0
    const statuses = new Map<number, number>()
    await Promise.all(
      Array.from({ length: connections }, async () => {
        let connection = await RawConnection.open(connectOptions)
        while (next < count) {
          const i = next++
          if (!connection.isOpen) connection = await RawConnection.open(connectOptions)
          const response = await connection.send(...request(i))
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
          check(response, i)
        }
        connection.close()
      }),
    )
    return { requests: count, answers: [...statuses].map(([s, n]) => `${n}× ${s}`).join(', ') }
  }

  await t.test('distinct 256 KiB kind strings, with /metrics scraped during the flood', async (t) => {
    const huge = 'k'.repeat(256 * 1024)
    const figures = await during('distinct 256 KiB kinds', () =>
      send(200, 4, (i) => postRequest('/mutate', json(reviewFor({ metadata: { name: 'x' } }, { uid: `kind-${i}`, kind: { group: 'example.com', version: 'v1', kind: `${i}${huge}` } }))), (r, i) => {
        if (r.status !== 200 || answerOf(r).response.uid !== `kind-${i}`) throw new Error(`kind flood: ${r.status}`)
        if (i % 20 === 0) void metricsBytes()
      }),
    )
    t.ok(figures.metricsAfter - figures.metricsBefore < 4096, `/metrics grew by ${figures.metricsAfter - figures.metricsBefore} bytes (a series per kind would add 50 MiB)`)
  })

  await t.test('a Pod with 5,000 containers × 2 ports against a cached Service with 10,000 UDP ports', async (t) => {
    await waitFor('the Service cache', async () => /nlb_guard_service_cache_size 1/.test((await plainGet(server.metricsPort, '/metrics')).body))
    const containers = Array.from({ length: 5000 }, (_, i) => ({ name: `c${i}`, image: 'app', ports: [{ containerPort: 20_000 + 2 * i, protocol: 'TCP' }, { containerPort: 20_001 + 2 * i, protocol: 'UDP' }] }))
    const pod = json(reviewFor({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big', namespace: 'demo', labels: { app: 'big' } }, spec: { containers } }, { uid: 'big-pod', kind: { group: '', version: 'v1', kind: 'Pod' } }))
    await during('large Pods (760 KB each), 4 in parallel', () =>
      send(40, 4, () => postRequest('/mutate', pod), (r) => {
        const answer = answerOf(r)
        if (r.status !== 200 || answer.response.allowed !== true) throw new Error(`pod flood: ${r.status}`)
        if (!/target more than 64 of its ports/.test((answer.response.warnings ?? []).join('\n'))) throw new Error(`no bounded-work warning: ${JSON.stringify(answer.response.warnings)}`)
      }),
    )
    t.pass('every large Pod admitted unchanged with the warning that it is past the 64-port bound')
  })

  await t.test('a repeated cross-zone attribute, through /mutate and /validate', async (t) => {
    const object = serviceObject({ udp: true, local: true, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'external', 'service.beta.kubernetes.io/aws-load-balancer-attributes': 'load_balancing.cross_zone.enabled=true,load_balancing.cross_zone.enabled=false' } })
    const body = json(reviewFor(object, { uid: 'cross-zone' }))
    await during('repeated cross-zone attribute', () =>
      send(2000, 4, (i) => postRequest(i % 2 === 0 ? '/mutate' : '/validate', body), (r) => {
        const answer = answerOf(r)
        if (answer.response.allowed !== false || !/turns cross-zone load balancing off/.test(answer.response.status?.message ?? '')) throw new Error(`not denied: ${r.body.toString().slice(0, 300)}`)
      }),
    )
    t.pass('every one denied on both paths')
  })

  await t.test('a mixed-protocol Service with 10,000 ports: its answer stays bounded', async (t) => {
    const ports = Array.from({ length: 10_000 }, (_, i) => ({ name: `p${i}`, port: 1000 + (i >> 1), protocol: i % 2 === 0 ? 'TCP' : 'UDP' }))
    const object = { ...serviceObject(), spec: { type: 'LoadBalancer', selector: { app: 'x' }, ports } }
    const body = json(reviewFor(object, { uid: 'mixed' }))
    let largest = 0
    // On 1.30 the cluster accepts it; the in-tree provider cannot build it: a warning listing the ports
    // (the S1 denial on older clusters is bounded the same way: test/rules/service.test.ts).
    let warningRunes = 0
    await during('mixed-protocol Services with 10,000 ports', () =>
      send(100, 2, () => postRequest('/validate', body), (r) => {
        largest = Math.max(largest, r.body.length)
        if (r.status !== 200) throw new Error(`status ${r.status}`)
        warningRunes = Math.max(warningRunes, (answerOf(r).response.warnings ?? []).reduce((sum, w) => sum + [...w].length, 0))
      }),
    )
    t.ok(largest < 12_000, `the largest answer is ${largest} bytes (a 10,000-port S1 denial was 99 KB)`)
    t.ok(warningRunes <= 4096, `its warnings total ${warningRunes} characters: what the apiserver keeps whole`)
  })

  await t.test('silent TCP connections to the TLS port, and to the metrics port', async (t) => {
    // In waves, each opened once the previous one is established, so all n are open together
    // without overflowing the kernel's accept queue (a dropped SYN waits seconds for its retransmit).
    const open = async (port: number, n: number) => {
      const closed: Promise<void>[] = []
      for (let opened = 0; opened < n; opened += WAVE) {
        const wave = Array.from({ length: Math.min(WAVE, n - opened) }, () => netConnect(port, '127.0.0.1'))
        for (const socket of wave) {
          const done = closedByServer(socket)
          done.catch(() => undefined) // handled by the Promise.all below; not an unhandled rejection meanwhile
          closed.push(done)
        }
        await Promise.all(wave.map((socket) => new Promise((resolve) => socket.once('connect', resolve).once('close', resolve))))
      }
      await Promise.all(closed)
      return n
    }
    await during('silent connections: 300 to the TLS port (no ClientHello), 1,000 to the metrics port', async () => {
      const [tls, plain] = await Promise.all([open(server.port, 300), open(server.metricsPort, 1000)])
      return { requests: tls + plain, answers: 'every one closed by the server' }
    })
    t.pass('all closed by the server')
  })

  // Memory: the highest RSS sampled under any flood stays below the container's limit. RSS does not
  // come back to the baseline (glibc keeps the freed pages of large request bodies; V8's heap is back
  // to tens of MiB), so what is reported after a bounded wait is the lowest RSS and the heap in use.
  let settled = Infinity
  await waitFor('RSS settled', async () => {
    settled = Math.min(settled, await rssBytes(pid))
    return settled < baselineRss + 32 * 1024 * 1024
  }, 10_000).catch(() => undefined)
  const heapUsed = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec((await plainGet(server.metricsPort, '/metrics')).body)?.[1] ?? NaN)
  console.log(`# memory: baseline ${mib(baselineRss)}, highest ${mib(highest)}, after all floods ${mib(settled)} (heap in use ${mib(heapUsed)}); /metrics ${baselineMetrics} → ${await metricsBytes()} bytes`)
  t.ok(highest < MEMORY_LIMIT_BYTES, `the highest RSS under any flood, ${mib(highest)}, is below the chart's memory limit ${mib(MEMORY_LIMIT_BYTES)}`)
  t.equal(await server.stop(), 0, 'clean exit on SIGTERM')
})
