import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { ClosedLoop, ClosedLoopResult } from './closed.ts'

/* autocannon, the fallback closed-loop client; run as a child: node bench/load/cannon.ts '<json>'. */

interface AutocannonResult {
  readonly requests: { readonly total: number }
  readonly duration: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>

const load = JSON.parse(process.argv[2] ?? '{}') as ClosedLoop
// autocannon is CommonJS without type declarations.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon
const result = await autocannon({
  url: `https://127.0.0.1:${load.port}/mutate`,
  method: 'POST',
  connections: load.connections,
  duration: load.seconds,
  headers: { 'content-type': 'application/json', ...(load.keepAlive ? {} : { connection: 'close' }) },
  requests: load.bodyFiles.map((file) => ({ body: readFileSync(file) })),
  timeout: 10,
})
const answer: ClosedLoopResult = {
  requests: result.requests.total,
  seconds: result.duration,
  rps: result.requests.total / result.duration,
  errors: result.errors + result.timeouts + result.non2xx,
  latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
}
process.stdout.write(`${JSON.stringify(answer)}\n`)
