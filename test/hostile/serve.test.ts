import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { createSecureContext } from 'node:tls'
import t from 'tap'
import { BODY_LIMIT } from '../../webhook/server/app.js'
import { serve } from '../fixtures/serve.js'
import {
  deepBodies,
  hugeStringBodies,
  malformedObjectBodies,
  notReviewBodies,
  prng,
  protoBodies,
  randomBodies,
  SEED,
  truncatedBodies,
  validCases,
  wrongContentTypes,
  type ValidCase,
} from './fixtures/payloads.js'
import { getRequest, postRequest, RawConnection, type RawResponse } from './fixtures/raw-client.js'

/**
 * Hostile input against the real TLS server (`nlb-guard serve`, spawned from source): >100,000
 * requests of garbage over a few keep-alive connections and some fresh ones, big bodies, and slow
 * sockets. The server must never crash, never answer 5xx, give its memory back, and still answer a
 * valid review correctly afterwards.
 */

const TOTAL = Number(process.env['NLB_GUARD_HOSTILE_REQUESTS'] ?? 100_000)
const KEEP_ALIVE_CONNECTIONS = 12
/** One in this many small requests goes over a fresh TLS connection. */
const FRESH_EVERY = 200
const SLOW_BODY_SOCKETS = 4
const SLOW_HEADER_SOCKETS = 2
const MEMORY_MARGIN_BYTES = 60 * 1024 * 1024

t.setTimeout(240_000)

function httpBody(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

/** The server's V8 heap in use, from its own metrics: RSS also holds ts-node's TypeScript compiler. */
async function heapUsed(metricsPort: number): Promise<number> {
  const metrics = await httpBody(metricsPort, '/metrics')
  return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN)
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject)
  })
}

/** CPU seconds (user + system) the process has used, from /proc/PID/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Job {
  readonly category: string
  readonly parts: Buffer[]
  /** Send over a new TLS connection (closed afterwards). */
  readonly fresh?: boolean
  /** Throws when the answer is wrong for this category. */
  readonly check: (response: RawResponse) => void
}

function expectStatus(...allowed: number[]) {
  return (response: RawResponse) => {
    if (!allowed.includes(response.status)) throw new Error(`status ${response.status}, expected ${allowed.join(' or ')}: ${response.body.toString().slice(0, 200)}`)
  }
}

function expectReviewError(response: RawResponse): void {
  if (response.status === 400) return
  if (response.status !== 200) throw new Error(`status ${response.status}`)
  const answer = JSON.parse(response.body.toString()) as { response?: { allowed?: boolean; status?: { code?: number } } }
  if (answer.response?.allowed !== false || answer.response.status?.code !== 400) throw new Error(`a bad review was not refused: ${response.body.toString().slice(0, 200)}`)
}

function expectValid(valid: ValidCase) {
  return (response: RawResponse) => {
    if (response.status !== 200) throw new Error(`valid review: status ${response.status}`)
    if (response.body.toString() !== valid.expected) throw new Error(`valid review answered ${response.body.toString().slice(0, 300)}`)
  }
}

function expectUidEcho(response: RawResponse, uid: string): void {
  if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.toString().slice(0, 200)}`)
  const answer = JSON.parse(response.body.toString()) as { response?: { uid?: string } }
  if (answer.response?.uid !== uid) throw new Error(`uid ${answer.response?.uid} for ${uid}`)
}

/** The mix of small hostile requests; every category is answered 4xx, or 200 with a review. */
function smallJob(random: () => number, n: number): Job {
  const pickFrom = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const path = random() < 0.5 ? '/mutate' : '/validate'
  const fresh = n % FRESH_EVERY === 0
  const roll = random()
  // Answers that fastify closes the connection after (unparseable bodies) cost a TLS handshake each: about a third.
  if (roll < 0.165) {
    const valid = pickFrom(validCases)
    return { category: 'valid review', parts: postRequest('/mutate', valid.body), fresh, check: expectValid(valid) }
  }
  if (roll < 0.265) return { category: 'random bytes', parts: postRequest(path, pickFrom(randomBodies)), fresh, check: expectStatus(400) }
  if (roll < 0.365) return { category: 'truncated review', parts: postRequest(path, pickFrom(truncatedBodies)), fresh, check: expectStatus(400) }
  if (roll < 0.565) return { category: 'JSON, not a review', parts: postRequest(path, pickFrom(notReviewBodies)), fresh, check: expectReviewError }
  if (roll < 0.765) {
    return {
      category: 'review, malformed object',
      parts: postRequest(path, pickFrom(malformedObjectBodies)),
      fresh,
      check: (r) => {
        if (r.status !== 200) throw new Error(`status ${r.status}`)
      },
    }
  }
  if (roll < 0.845) return { category: 'prototype pollution', parts: postRequest(path, pickFrom(protoBodies)), fresh, check: expectStatus(200, 400) }
  if (roll < 0.965) {
    const contentType = pickFrom(wrongContentTypes)
    const valid = pickFrom(validCases)
    const category = `content type ${contentType === null ? '(none)' : JSON.stringify(contentType)}`
    // A JSON media type with an odd charset is still JSON (fastify reads it as UTF-8).
    const check = /^application\/json(;|$)/.test(contentType ?? '') ? expectValid(valid) : expectStatus(400, 415)
    return { category, parts: postRequest('/mutate', valid.body, { contentType }), fresh, check }
  }
  if (roll < 0.98) {
    // Not HTTP at all: Node's parser answers 400 and closes; bytes that could still become a request
    // (blank lines, a token) wait for more until the request timeout answers 408.
    const garbage = Buffer.concat([pickFrom(randomBodies), Buffer.from('\r\n\r\n')])
    return { category: 'not HTTP', parts: [garbage], fresh: true, check: expectStatus(0, 400, 408) }
  }
  if (roll < 0.995) {
    // Lying lengths: fewer bytes than announced are completed by the next request's bytes, so only on fresh sockets.
    const body = pickFrom(validCases).body
    return { category: 'bad framing', parts: [Buffer.from(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: ${pickFrom(['-1', 'abc', '1, 2', '99999999999999999999'])}\r\n\r\n`), body], fresh: true, check: expectStatus(0, 400, 413) }
  }
  return { category: 'deep nesting', parts: postRequest(path, pickFrom(deepBodies)), fresh, check: expectReviewError }
}

t.test('hostile input against nlb-guard serve over real TLS', async (t) => {
  const started = Date.now()
  // Coverage buffers would swamp the memory figures; the log is counted below, not kept.
  const { port, metricsPort, ca, child } = await serve(t, { env: { _TAPJS_PROCESSINFO_COVERAGE_: '0' }, keepLog: false })
  // The log must be drained (a full pipe would stall the server); keep counts and any error lines.
  const logLevels = new Map<string, number>()
  const errorLines: string[] = []
  const countOf = (text: string, needle: string) => {
    let n = 0
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) n++
    return n
  }
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    for (const level of ['30', '40', '50', '60']) {
      const n = countOf(chunk, `{"level":${level},`)
      if (n > 0) logLevels.set(level, (logLevels.get(level) ?? 0) + n)
    }
    if ((chunk.includes('{"level":50,') || chunk.includes('{"level":60,')) && errorLines.length < 20) errorLines.push(chunk.slice(0, 1000))
  })
  const pid = child.pid ?? 0
  // One secure context for every connection (building one per connection parses the CA each time).
  const connectOptions = { host: '127.0.0.1', port, secureContext: createSecureContext({ ca }), servername: 'localhost' }
  const sessions: { session?: Buffer } = {}
  let reconnects = 0

  const counts = new Map<string, Map<number, number>>()
  const failures: string[] = []
  let sent = 0
  let freshConnections = 0
  const record = (job: Job, response: RawResponse) => {
    sent++
    const byStatus = counts.get(job.category) ?? new Map<number, number>()
    byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1)
    counts.set(job.category, byStatus)
    try {
      job.check(response)
    } catch (error: unknown) {
      if (failures.length < 20) failures.push(`${job.category}: ${(error as Error).message}`)
    }
  }

  async function sendFresh(job: Job): Promise<void> {
    freshConnections++
    const connection = await RawConnection.open(connectOptions)
    try {
      record(job, await connection.send(...job.parts))
    } finally {
      connection.close()
    }
  }

  // Warm up (JIT, pools), then take the baseline.
  const warm = await RawConnection.open(connectOptions)
  for (let i = 0; i < 2000; i++) {
    const valid = validCases[i % validCases.length] as ValidCase
    const response = await warm.send(...postRequest('/mutate', valid.body))
    if (response.body.toString() !== valid.expected) throw new Error('warm-up answer is wrong')
  }
  warm.close()
  // The baseline is the lowest RSS over a few idle seconds, as is the figure after the run.
  let baseline = Infinity
  for (let i = 0; i < 6; i++) {
    await sleep(1000)
    baseline = Math.min(baseline, await rssBytes(pid))
  }
  const baselineHeap = await heapUsed(metricsPort)
  let peak = baseline
  const sampler = setInterval(() => {
    rssBytes(pid).then((rss) => (peak = Math.max(peak, rss)), () => {})
  }, 250)
  t.teardown(() => clearInterval(sampler))

  // Slow sockets: headers then a trickle of body (or a trickle of headers), then nothing more.
  const slow = Array.from({ length: SLOW_BODY_SOCKETS + SLOW_HEADER_SOCKETS }, async (_, i) => {
    const connection = await RawConnection.open(connectOptions)
    const body = i < SLOW_BODY_SOCKETS
    const opened = Date.now()
    const head = body
      ? 'POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"apiVersion":'
      : 'POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl'
    const answer = connection.send(Buffer.from(head))
    for (let k = 0; k < 5 && connection.isOpen; k++) {
      await sleep(500)
      if (connection.isOpen) connection.socket.write(body ? ' ' : 'i')
    }
    const response = await answer
    return { kind: body ? 'body trickle then stall' : 'header trickle then stall', status: response.status, ms: Date.now() - opened }
  })

  // Big bodies, one at a time beside the main load: MiB-sized strings and bodies over the limit.
  const big = (async () => {
    const hugeBodies = hugeStringBodies()
    for (let round = 0; round < 6; round++) {
      for (const huge of hugeBodies) {
        // Parsing and answering a few MiB takes tens of milliseconds; anything quadratic takes minutes
        // and runs into the test's timeout (the parsers' own tests bound the work: test/rules/attributes.test.ts).
        await sendFresh({ category: `big string (${huge.name})`, parts: postRequest('/mutate', huge.body), check: (r) => expectUidEcho(r, huge.uid) })
      }
    }
    const over = Buffer.alloc(BODY_LIMIT + 1024, 0x20)
    for (let i = 0; i < 3; i++) {
      // The server reads and discards a declared body up to twice the limit before answering 413.
      await sendFresh({ category: 'over 7 MiB (content-length)', parts: postRequest('/mutate', over), check: expectStatus(413) })
    }
    for (let i = 0; i < 2; i++) {
      // No length: the server has to count while it reads.
      const chunked = [Buffer.from('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')]
      for (let k = 0; k < 8; k++) chunked.push(Buffer.from(`100000\r\n`), Buffer.alloc(0x100000, 0x20), Buffer.from('\r\n'))
      chunked.push(Buffer.from('0\r\n\r\n'))
      await sendFresh({ category: 'over 7 MiB (chunked)', parts: chunked, check: expectStatus(0, 413) })
    }
  })()

  // The main load: small hostile requests over a few keep-alive connections.
  const random = prng(SEED + 2)
  let next = 0
  const loadStarted = Date.now()
  const serverCpuBefore = await cpuSeconds(pid)
  const clientCpuBefore = process.cpuUsage()
  // A connection is opened only when a request is about to go over it: the server rightly closes one
  // that carries no request for REQUEST_TIMEOUT_MS.
  const background = new Set<Promise<void>>()
  const workers = Array.from({ length: KEEP_ALIVE_CONNECTIONS }, async () => {
    let connection: RawConnection | undefined
    while (next < TOTAL) {
      const job = smallJob(random, next++)
      if (job.category === 'not HTTP') {
        // Some garbage looks like the start of a request and waits out the request timeout: not in line.
        const sending = sendFresh(job).finally(() => background.delete(sending))
        background.add(sending)
        if (background.size >= 512) await Promise.race(background)
        continue
      }
      if (job.fresh) {
        await sendFresh(job)
        continue
      }
      if (connection === undefined || !connection.isOpen) {
        // fastify closes the connection after a body it could not parse; reconnect, resuming the TLS session.
        if (connection !== undefined) reconnects++
        connection = await RawConnection.open(connectOptions, sessions)
      }
      const response = await connection.send(...job.parts)
      record(job, response)
      if (response.closing) connection.close()
    }
    connection?.close()
  })
  await Promise.all([...workers, big])
  await Promise.all(background)
  const loadMs = Date.now() - loadStarted
  const serverCpu = (await cpuSeconds(pid)) - serverCpuBefore
  const clientCpu = process.cpuUsage(clientCpuBefore)
  const slowResults = await Promise.all(slow)
  clearInterval(sampler)

  // Report.
  const lines: string[] = []
  let fiveHundreds = 0
  for (const [category, byStatus] of [...counts].sort()) {
    const total = [...byStatus.values()].reduce((a, b) => a + b, 0)
    for (const [status, n] of byStatus) if (status >= 500) fiveHundreds += n
    lines.push(`${category.padEnd(42)} ${String(total).padStart(6)}  ${[...byStatus].sort().map(([s, n]) => `${s === 0 ? 'closed' : s}: ${n}`).join(', ')}`)
  }
  console.log(`# hostile run: ${sent} requests in ${(loadMs / 1000).toFixed(1)} s (${Math.round(sent / (loadMs / 1000))}/s) over ${KEEP_ALIVE_CONNECTIONS} keep-alive connections (reopened ${reconnects} times after the server closed them, resuming the TLS session) and ${freshConnections} fresh TLS connections (full handshake)`)
  console.log(`#   CPU during the load: server ${serverCpu.toFixed(1)} s, test client ${((clientCpu.user + clientCpu.system) / 1e6).toFixed(1)} s`)
  for (const line of lines) console.log(`#   ${line}`)
  for (const s of slowResults) console.log(`#   slow socket (${s.kind}): closed after ${s.ms} ms with ${s.status === 0 ? 'no answer' : s.status}`)
  console.log(`#   server log lines by level: ${[...logLevels].sort().map(([l, n]) => `${l}: ${n}`).join(', ')}`)

  t.ok(sent >= TOTAL, `${sent} requests sent`)
  t.same(failures, [], 'every answer fits its category')
  t.equal(fiveHundreds, 0, 'no 5xx answers')
  t.same(errorLines, [], 'no error lines in the server log')
  // Each slow socket's close is the event waited on; how long it took is reported above.
  for (const s of slowResults) t.ok(s.status === 408 || s.status === 0, `slow socket (${s.kind}) closed by the server, answered ${s.status}`)

  // Still alive and correct.
  t.equal(child.exitCode, null, 'the server process is still running')
  const after = await RawConnection.open(connectOptions)
  t.equal((await after.send(getRequest('/healthz'))).status, 200, '/healthz over TLS')
  const valid = validCases.find((v) => v.expected.includes('JSONPatch')) as ValidCase
  const answer = await after.send(...postRequest('/mutate', valid.body))
  t.equal(answer.body.toString(), valid.expected, 'a valid review is answered correctly afterwards')
  after.close()
  t.equal(await httpStatus(metricsPort, '/healthz'), 200, '/healthz on the metrics port')
  t.equal(await httpStatus(metricsPort, '/readyz'), 200, '/readyz on the metrics port')

  // Memory back near the baseline after a pause (V8 returns freed pages lazily: take the lowest sample).
  let settled = Infinity
  const samples: string[] = []
  for (let i = 0; i < 30; i++) {
    await sleep(1000)
    const rss = await rssBytes(pid)
    samples.push(mib(rss))
    settled = Math.min(settled, rss)
    if (settled < baseline + MEMORY_MARGIN_BYTES / 2) break
  }
  console.log(`#   RSS samples: ${samples.join(' ')}`)
  const settledHeap = await heapUsed(metricsPort)
  console.log(`#   server RSS: baseline ${mib(baseline)}, peak ${mib(peak)}, after a pause ${mib(settled)} (${settled >= baseline ? '+' : '-'}${mib(Math.abs(settled - baseline))})`)
  console.log(`#   server V8 heap used: baseline ${mib(baselineHeap)}, after ${mib(settledHeap)}`)
  t.ok(settled < baseline + MEMORY_MARGIN_BYTES, `RSS ${mib(settled)} within ${mib(MEMORY_MARGIN_BYTES)} of the baseline ${mib(baseline)}`)

  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, 'clean exit on SIGTERM')
  console.log(`# hostile test total: ${((Date.now() - started) / 1000).toFixed(1)} s`)
})
