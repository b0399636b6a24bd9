import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { Server } from 'node:net'
import { parseArgs } from 'node:util'
import type { CliIo, Command } from '../webhook/cli/io.js'
import { readBoundUdpPorts } from './procnet.js'

/*
 * An AWS NLB health check is TCP, HTTP or HTTPS — never UDP — so for a UDP target this program answers
 * in the UDP application's place, and only while that application has its UDP socket bound.
 * The sidecar imports Node builtins only (DESIGN.md §1): it starts fast and stays small in every pod.
 */

export type HealthcheckMode = 'tcp' | 'http'

export interface HealthcheckOptions {
  /** UDP ports to answer for; in tcp mode each is also the TCP port the health check connects to. */
  readonly ports: readonly number[]
  readonly mode: HealthcheckMode
  /** The HTTP port in http mode. */
  readonly httpPort: number
  readonly intervalMs: number
  /** Where procfs is mounted; `net/udp` and `net/udp6` are read under it. */
  readonly procRoot: string
}

/** One structured log line; `level` and `msg` as in pino, so the webhook's log tooling reads both. */
export interface LogRecord {
  readonly level: 'info' | 'warn' | 'error'
  readonly msg: string
  readonly [field: string]: unknown
}

export interface HealthcheckDeps {
  readonly readBoundUdpPorts: (procRoot: string) => Promise<ReadonlySet<number>>
  readonly log: (record: LogRecord) => void
  /** Runs `fn` once after `ms`; returns a cancel function. Default: an unref'd `setTimeout`. */
  readonly schedule?: (fn: () => void, ms: number) => () => void
}

export interface Healthcheck {
  /** Stops polling and closes every listener; resolves once they are closed. Safe to call twice. */
  stop(): Promise<void>
}

export const DEFAULT_INTERVAL_MS = 1000
// Fast enough that a test or an impatient operator sees the change, slow enough to stay idle; the NLB
// itself probes every 5–300 s (HealthCheckIntervalSeconds), so anything up to a minute is still useful.
const MIN_INTERVAL_MS = 10
const MAX_INTERVAL_MS = 60_000

export const HEALTHCHECK_USAGE = `Usage: nlb-guard healthcheck --port P [--port Q]... [options]

Answers an AWS NLB's TCP or HTTP health check for a UDP application in the same pod: a port counts
as up while a UDP socket is bound to it (read from /proc/net/udp and /proc/net/udp6).

Options:
  --port P          UDP port to answer for (1-65535); repeat for more ports (required)
  --mode tcp|http   tcp: listen on TCP port P while UDP port P is bound (default)
                    http: GET on --http-port answers 200 when every port is bound, else 503
  --http-port H     HTTP port in http mode (default: the first --port)
  --interval-ms N   how often to look at the UDP sockets, ${MIN_INTERVAL_MS}-${MAX_INTERVAL_MS} (default ${DEFAULT_INTERVAL_MS})
  --proc-root DIR   where procfs is mounted (default /proc)
  -h, --help        print this help
`

export type ParsedHealthcheckArgs =
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error'; readonly message: string }
  | { readonly kind: 'run'; readonly options: HealthcheckOptions }

export function parseHealthcheckArgs(argv: readonly string[]): ParsedHealthcheckArgs {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string', multiple: true },
        mode: { type: 'string' },
        'http-port': { type: 'string' },
        'interval-ms': { type: 'string' },
        'proc-root': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err: unknown) {
    return usageError(err instanceof Error ? err.message : String(err))
  }
  if (values.help === true) return { kind: 'help' }

  const ports: number[] = []
  for (const text of values.port ?? []) {
    const port = parseIntegerIn(text, 1, 65_535)
    if (port === undefined) return usageError(`--port must be an integer from 1 to 65535, got "${text}"`)
    if (!ports.includes(port)) ports.push(port)
  }
  const firstPort = ports[0]
  if (firstPort === undefined) return usageError('at least one --port is required')

  const mode = values.mode ?? 'tcp'
  if (mode !== 'tcp' && mode !== 'http') return usageError(`--mode must be tcp or http, got "${mode}"`)

  let httpPort = firstPort
  if (values['http-port'] !== undefined) {
    if (mode !== 'http') return usageError('--http-port applies only to --mode http')
    const parsed = parseIntegerIn(values['http-port'], 1, 65_535)
    if (parsed === undefined) {
      return usageError(`--http-port must be an integer from 1 to 65535, got "${values['http-port']}"`)
    }
    httpPort = parsed
  }

  let intervalMs = DEFAULT_INTERVAL_MS
  if (values['interval-ms'] !== undefined) {
    const parsed = parseIntegerIn(values['interval-ms'], MIN_INTERVAL_MS, MAX_INTERVAL_MS)
    if (parsed === undefined) {
      return usageError(
        `--interval-ms must be an integer from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}, got "${values['interval-ms']}"`,
      )
    }
    intervalMs = parsed
  }

  const procRoot = values['proc-root'] ?? '/proc'
  if (procRoot === '') return usageError('--proc-root must not be empty')

  return { kind: 'run', options: { ports, mode, httpPort, intervalMs, procRoot } }
}

function usageError(message: string): ParsedHealthcheckArgs {
  return { kind: 'usage-error', message }
}

function parseIntegerIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,6}$/.test(text)) return undefined
  const value = Number(text)
  return value >= min && value <= max ? value : undefined
}

/**
 * Starts polling the UDP sockets and answering health checks. Resolves after the first poll, so
 * listeners for ports that are already bound are open (and in http mode the HTTP server is listening,
 * unless its port is taken) when it returns. It never throws for a busy port: it logs and retries on
 * the next poll.
 */
export async function startHealthcheck(options: HealthcheckOptions, deps: HealthcheckDeps): Promise<Healthcheck> {
  const schedule = deps.schedule ?? scheduleUnref
  const logged = new StateLog(deps.log)
  const answer = options.mode === 'tcp' ? tcpAnswerer(options, logged) : httpAnswerer(options, logged)

  let stopped = false
  let cancelNext: (() => void) | undefined
  let stopping: Promise<void> | undefined
  let procReadFailed = false

  const poll = async (): Promise<void> => {
    let bound: ReadonlySet<number>
    try {
      bound = await deps.readBoundUdpPorts(options.procRoot)
    } catch (err: unknown) {
      // Keep the last answer rather than flap: procfs reads do not fail transiently, so this is a
      // misconfiguration (wrong --proc-root) that one log line explains; at start nothing is up yet.
      if (!procReadFailed) {
        procReadFailed = true
        deps.log({ level: 'error', msg: 'cannot read the UDP socket table', procRoot: options.procRoot, err: errorFields(err) })
      }
      return
    }
    if (procReadFailed) {
      procReadFailed = false
      deps.log({ level: 'info', msg: 'reading the UDP socket table again', procRoot: options.procRoot })
    }
    if (!stopped) await answer.sync(bound)
  }
  const tick = (): void => {
    cancelNext = undefined
    inFlight = poll().then(scheduleNext, scheduleNext)
  }
  const scheduleNext = (): void => {
    if (!stopped) cancelNext = schedule(tick, options.intervalMs)
  }

  let inFlight: Promise<void> = poll()
  await inFlight
  scheduleNext()

  return {
    stop(): Promise<void> {
      stopping ??= (async () => {
        stopped = true
        cancelNext?.()
        cancelNext = undefined
        await inFlight
        await answer.close()
      })()
      return stopping
    },
  }
}

function scheduleUnref(fn: () => void, ms: number): () => void {
  // unref'd so a forgotten instance never holds a process (or a test run) open; the command keeps the
  // process alive on purpose until SIGTERM/SIGINT.
  const timer = setTimeout(fn, ms)
  timer.unref()
  return () => clearTimeout(timer)
}

interface Answerer {
  sync(bound: ReadonlySet<number>): Promise<void>
  close(): Promise<void>
}

type TcpPortState = 'listening' | 'udp-unbound' | 'tcp-port-busy' | 'tcp-listen-failed'

/** tcp mode: TCP port P accepts connections exactly while UDP port P is bound. */
function tcpAnswerer(options: HealthcheckOptions, logged: StateLog): Answerer {
  const listeners = options.ports.map((port) => ({ port, server: acceptAndClose(port, logged) }))

  const syncPort = async (port: number, server: Server, udpBound: boolean): Promise<void> => {
    if (!udpBound) {
      await closeServer(server)
      logged.state(port, { level: 'info', msg: 'no UDP socket bound; TCP port closed', port, state: 'udp-unbound' })
      return
    }
    if (server.listening) return
    try {
      await listen(server, port)
      logged.state(port, { level: 'info', msg: 'UDP socket bound; accepting TCP', port, state: 'listening' })
    } catch (err: unknown) {
      const state: TcpPortState = errorFields(err).code === 'EADDRINUSE' ? 'tcp-port-busy' : 'tcp-listen-failed'
      logged.state(port, {
        level: 'warn',
        msg: 'UDP socket bound but the TCP port cannot be opened; retrying every poll',
        port,
        state,
        err: errorFields(err),
      })
    }
  }

  return {
    async sync(bound) {
      await Promise.all(listeners.map(({ port, server }) => syncPort(port, server, bound.has(port))))
    },
    async close() {
      await Promise.all(listeners.map(({ server }) => closeServer(server)))
    },
  }
}

/** A TCP server whose only job is the handshake: the NLB's TCP check passes once it completes. */
function acceptAndClose(port: number, logged: StateLog): Server {
  // Destroyed at once rather than end()ed: end() would wait for the peer's FIN and keep a socket object
  // per silent client; closing hands the FIN to the kernel. Paused, so nothing is ever read.
  const server = createTcpServer({ pauseOnConnect: true }, (socket) => socket.destroy())
  onServerError(server, port, logged)
  return server
}

/** http mode: one HTTP server; any GET answers 200 when every port is bound, else 503. */
function httpAnswerer(options: HealthcheckOptions, logged: StateLog): Answerer {
  let missing: readonly number[] = options.ports
  const server = createHttpServer((request: IncomingMessage, response: ServerResponse) => {
    // HEAD is answered like GET: RFC 9110 §9.1 requires both from a general-purpose server; 405 must
    // name the allowed methods (§15.5.6).
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      writeText(response, 405, 'method not allowed\n', { Allow: 'GET, HEAD' })
    } else if (missing.length === 0) {
      writeText(response, 200, 'ok\n')
    } else {
      writeText(response, 503, `no UDP socket bound on port ${missing.join(', ')}\n`)
    }
  })
  // A health check is one small request; do not let a slow client hold a socket for Node's 300 s default.
  server.requestTimeout = 5_000
  server.headersTimeout = 5_000
  onServerError(server, options.httpPort, logged)

  return {
    async sync(bound) {
      missing = options.ports.filter((port) => !bound.has(port))
      for (const port of options.ports) {
        logged.state(port, bound.has(port)
          ? { level: 'info', msg: 'UDP socket bound', port, state: 'udp-bound' }
          : { level: 'info', msg: 'no UDP socket bound', port, state: 'udp-unbound' })
      }
      if (server.listening) return
      // A separate key: --http-port may equal one of the UDP ports, whose state is logged above.
      const key = `http:${options.httpPort}`
      try {
        await listen(server, options.httpPort)
        logged.state(key, { level: 'info', msg: 'HTTP health check listening', port: options.httpPort, state: 'listening' })
      } catch (err: unknown) {
        logged.state(key, {
          level: 'warn',
          msg: 'the HTTP port cannot be opened; retrying every poll',
          port: options.httpPort,
          state: errorFields(err).code === 'EADDRINUSE' ? 'tcp-port-busy' : 'tcp-listen-failed',
          err: errorFields(err),
        })
      }
    },
    async close() {
      const closed = closeServer(server)
      // close() alone waits for idle keep-alive connections to time out; SIGTERM must not.
      server.closeAllConnections()
      await closed
    },
  }
}

function writeText(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  })
  response.end(body)
}

/**
 * Listens on every address: with no host, Node binds `::` dual-stack and falls back to `0.0.0.0` when
 * IPv6 is unavailable (net.Server#listen docs), which is what a pod with or without IPv6 needs.
 */
function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    // A net.Server may listen again after a failed listen() or after close() (net.Server#listen docs),
    // so one server per port serves for the program's whole life.
    server.listen({ port, ipv6Only: false }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve()
  return new Promise((resolve) => server.close(() => resolve()))
}

function onServerError(server: Server, port: number, logged: StateLog): void {
  // A listen() failure is handled by listen(); an error while listening (accept failing with EMFILE,
  // say) must not crash the sidecar and is reported as it happens.
  server.on('error', (err: unknown) => {
    if (server.listening) logged.event({ level: 'warn', msg: 'TCP server error', port, err: errorFields(err) })
  })
}

/**
 * Logs a state only when it differs from the last one logged for the same key: one line per change,
 * never one per poll. Holds one entry per port, so it does not grow.
 */
class StateLog {
  readonly #log: (record: LogRecord) => void
  readonly #last = new Map<number | string, string>()

  constructor(log: (record: LogRecord) => void) {
    this.#log = log
  }

  state(key: number | string, record: LogRecord & { readonly state: string; readonly err?: ErrorFields }): void {
    // The error code is part of the state: EACCES turning into EADDRINUSE is news worth a line.
    const code = record.err?.code
    const fingerprint = code === undefined ? record.state : `${record.state}:${code}`
    if (this.#last.get(key) === fingerprint) return
    this.#last.set(key, fingerprint)
    this.#log(record)
  }

  /* c8 ignore start -- reached only when accept() fails on a listening socket (EMFILE, ENFILE), which a
     test cannot provoke without exhausting the test runner's own descriptors */
  event(record: LogRecord): void {
    this.#log(record)
  }
  /* c8 ignore stop */
}

interface ErrorFields {
  readonly code?: string
  readonly message?: string
}

/** The loggable parts of an error; an Error's own fields do not survive JSON.stringify. */
function errorFields(err: unknown): ErrorFields {
  if (!(err instanceof Error)) return { message: String(err) }
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined
  return code === undefined ? { message: err.message } : { code, message: err.message }
}

const PINO_LEVELS = { info: 30, warn: 40, error: 50 } as const

/** Writes each record as one JSON line shaped like pino's (numeric level, epoch-millisecond time). */
export function jsonLineLogger(out: CliIo['stderr'], now: () => number = Date.now): (record: LogRecord) => void {
  return ({ level, msg, ...fields }) => {
    out.write(`${JSON.stringify({ level: PINO_LEVELS[level], time: now(), msg, ...fields })}\n`)
  }
}

/** `nlb-guard healthcheck`: runs until SIGTERM or SIGINT, then closes everything and returns 0. */
export const healthcheckCommand: Command = async (argv, io) => {
  const parsed = parseHealthcheckArgs(argv)
  if (parsed.kind === 'help') {
    io.stdout.write(HEALTHCHECK_USAGE)
    return 0
  }
  if (parsed.kind === 'usage-error') {
    io.stderr.write(`nlb-guard healthcheck: ${parsed.message}\n\n${HEALTHCHECK_USAGE}`)
    return 2
  }
  const { options } = parsed
  const log = jsonLineLogger(io.stderr)

  // Handlers go in before anything starts so a signal during start-up is not lost. As the container's
  // PID 1 the process gets no default signal action from the kernel; these handlers are what end it.
  let onSignal: (signal: NodeJS.Signals) => void = () => {}
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve
  })
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  // The poll timer is unref'd and a tcp-mode sidecar may have no listener yet (a native sidecar starts
  // before the app binds its socket): this handle is what keeps the process alive until a signal.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
  try {
    const healthcheck = await startHealthcheck(options, { readBoundUdpPorts, log })
    log({
      level: 'info',
      msg: 'healthcheck started',
      mode: options.mode,
      ports: options.ports,
      ...(options.mode === 'http' ? { httpPort: options.httpPort } : {}),
      intervalMs: options.intervalMs,
    })
    const signal = await signalled
    await healthcheck.stop()
    log({ level: 'info', msg: 'healthcheck stopped', signal })
    return 0
  } finally {
    clearInterval(keepAlive)
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
}
