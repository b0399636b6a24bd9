import { readFileSync } from 'node:fs'
import { Agent } from 'node:https'
import type { Socket } from 'node:net'
import { type Answer, postReview } from './post.ts'
import { errorMessage } from '../../lib/errors.ts'

/*
 * A client that behaves like the apiserver's webhook client across a quiet spell: a burst of
 * requests over a few keep-alive connections, silence for `idleSeconds`, another burst on the same
 * connections. Go's client drops idle connections after 90 s (IdleConnTimeout); a server that
 * closes them sooner races the client's next request and fails it. So besides errors this counts
 * the connections the server closed while the client was idle: zero means no such race can happen.
 * Run as a child: node bench/load/bursts.ts '<json config>'; prints JSON.
 */

export interface BurstsConfig {
  readonly port: number
  readonly caFile: string
  readonly bodyFile: string
  readonly connections: number
  readonly requestsPerBurst: number
  readonly idleSeconds: number
  readonly gaps: number
}

export interface BurstsResult {
  readonly requests: number
  readonly errors: number
  readonly firstError?: string
  /** Connections the server closed while the client was idle. */
  readonly closedWhileIdle: number
  /** Requests after a gap that went out on a connection opened before it. */
  readonly reusedAfterIdle: number
  readonly requestsAfterIdle: number
}

async function run(config: BurstsConfig): Promise<BurstsResult> {
  const target = { port: config.port, ca: readFileSync(config.caFile) }
  const body = readFileSync(config.bodyFile)
  // No client-side idle timeout: the connections stay open as long as the server keeps them.
  const agent = new Agent({ keepAlive: true, maxSockets: config.connections, ca: target.ca })
  let idle = false
  let closedWhileIdle = 0
  const seen = new WeakSet<Socket>()
  agent.on('free', (socket: Socket) => {
    if (seen.has(socket)) return
    seen.add(socket)
    socket.on('close', () => {
      if (idle) closedWhileIdle++
    })
  })

  let requests = 0
  let errors = 0
  let firstError: string | undefined
  let reusedAfterIdle = 0
  let requestsAfterIdle = 0
  /** Counts one answer; true when it was a 200. */
  const count = (answer: PromiseSettledResult<Answer>): answer is PromiseFulfilledResult<Answer> => {
    requests++
    const failure = answer.status === 'rejected' ? errorMessage(answer.reason) : answer.value.status !== 200 ? `HTTP ${answer.value.status}` : undefined
    if (failure === undefined) return true
    errors++
    firstError ??= failure
    return false
  }
  const send = (n: number) => Promise.allSettled(Array.from({ length: n }, () => postReview(target, agent, body)))
  const burst = async () => {
    for (const answer of await send(config.requestsPerBurst)) count(answer)
  }

  await burst()
  for (let gap = 0; gap < config.gaps; gap++) {
    idle = true
    await new Promise((resolve) => setTimeout(resolve, config.idleSeconds * 1000))
    idle = false
    // The first `connections` requests of the burst each take one of the pooled connections.
    for (const answer of await send(config.connections)) {
      requestsAfterIdle++
      if (count(answer) && answer.value.reusedSocket) reusedAfterIdle++
    }
    await burst()
  }
  agent.destroy()
  return { requests, errors, ...(firstError === undefined ? {} : { firstError }), closedWhileIdle, reusedAfterIdle, requestsAfterIdle }
}

if (import.meta.main) {
  const config = JSON.parse(process.argv[2] ?? '{}') as BurstsConfig
  process.stdout.write(`${JSON.stringify(await run(config))}\n`)
}
