import { readFileSync } from 'node:fs'
import { Agent } from 'node:https'
import { performance } from 'node:perf_hooks'
import { percentiles, postReview } from './post.ts'
import { errorMessage } from '../../lib/errors.ts'

/*
 * Open-loop load at a fixed rate, as an apiserver sends it: request i leaves at start + i/rate
 * whether or not earlier answers came back, over a pool of keep-alive connections. A request
 * waiting for a free connection counts that wait in its latency, so a server that stalls cannot
 * hide it (no coordinated omission). Latency: hrtime from send to the last byte of the answer,
 * exact to the microsecond. Run as a child: node bench/load/paced.ts '<json config>'; prints JSON.
 */

export interface PacedConfig {
  readonly port: number
  readonly caFile: string
  readonly bodyFiles: readonly string[]
  readonly rate: number
  readonly seconds: number
  readonly connections: number
}

export interface PacedResult {
  readonly sent: number
  readonly completed: number
  readonly errors: number
  readonly firstError?: string
  readonly seconds: number
  readonly achievedRate: number
  readonly latencyMs: ReturnType<typeof percentiles>
  /** The worst delay of a send behind its schedule: the client's own timer jitter. */
  readonly maxSendLagMs: number
}

async function run(config: PacedConfig): Promise<PacedResult> {
  const target = { port: config.port, ca: readFileSync(config.caFile) }
  const bodies = config.bodyFiles.map((file) => readFileSync(file))
  const agent = new Agent({ keepAlive: true, maxSockets: config.connections, ca: target.ca })
  const total = Math.max(1, Math.round(config.rate * config.seconds))
  const interval = 1000 / config.rate
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  let sent = 0
  let maxSendLagMs = 0
  const inFlight = new Set<Promise<void>>()

  const send = (index: number) => {
    const body = bodies[index % bodies.length] as Buffer
    const started = performance.now()
    const done = postReview(target, agent, body).then(
      (answer) => {
        if (answer.status === 200) latencies.push(performance.now() - started)
        else {
          errors++
          firstError ??= `HTTP ${answer.status}: ${answer.body.slice(0, 200)}`
        }
      },
      (error: unknown) => {
        errors++
        firstError ??= errorMessage(error)
      },
    )
    inFlight.add(done)
    void done.finally(() => inFlight.delete(done))
  }

  const start = performance.now()
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - start) / interval) + 1)
      if (sent < due) maxSendLagMs = Math.max(maxSendLagMs, now - (start + sent * interval))
      while (sent < due) send(sent++)
      if (sent >= total) return resolve()
      setTimeout(tick, Math.max(0, start + sent * interval - performance.now()))
    }
    tick()
  })
  await Promise.all(inFlight)
  const seconds = (performance.now() - start) / 1000
  agent.destroy()
  return {
    sent,
    completed: latencies.length,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    seconds,
    achievedRate: latencies.length / seconds,
    latencyMs: percentiles(latencies),
    maxSendLagMs,
  }
}

if (import.meta.main) {
  const config = JSON.parse(process.argv[2] ?? '{}') as PacedConfig
  process.stdout.write(`${JSON.stringify(await run(config))}\n`)
}
