import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import type { Socket as UdpSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import {
  DEFAULT_INTERVAL_MS,
  HEALTHCHECK_USAGE,
  healthcheckCommand,
  jsonLineLogger,
  parseHealthcheckArgs,
  startHealthcheck,
} from '../../sidecar/healthcheck.js'
import type { Healthcheck, HealthcheckOptions, LogRecord } from '../../sidecar/healthcheck.js'
import { readBoundUdpPorts } from '../../sidecar/procnet.js'

// Real sockets on loopback against the real /proc: the sidecar's whole job is kernel state.
const INTERVAL_MS = 200
const WITHIN_TWO_POLLS = 2 * INTERVAL_MS

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen({ port: 0 }, resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no TCP port')
  return address.port
}

async function bindUdp(port: number): Promise<UdpSocket> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(port, '0.0.0.0', resolve))
  return socket
}

function closeUdp(socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => socket.close(resolve))
}

async function occupyTcp(port: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen({ port }, resolve))
  return server
}

function closeTcp(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

type Outcome = 'accepted-and-closed' | 'refused' | 'left-open' | string

/** Connects and reports what a TCP health checker would see. */
function tcpProbe(port: number, host = '127.0.0.1'): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ port, host })
    let connected = false
    const openTimer = setTimeout(() => {
      socket.destroy()
      resolve('left-open')
    }, 1000)
    socket.on('connect', () => {
      connected = true
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(openTimer)
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : connected ? 'accepted-and-closed' : (err.code ?? err.message))
    })
    socket.on('close', () => {
      clearTimeout(openTimer)
      resolve(connected ? 'accepted-and-closed' : 'refused')
    })
    socket.resume()
  })
}

/** Probes until `want` is seen or the deadline passes; returns the last outcome and when it was seen. */
async function probeUntil(want: Outcome, probe: () => Promise<Outcome>, deadlineMs: number) {
  const start = performance.now()
  for (;;) {
    const outcome = await probe()
    const elapsedMs = Math.round(performance.now() - start)
    if (outcome === want || elapsedMs > deadlineMs) return { outcome, elapsedMs }
    await sleep(10)
  }
}

function collectLogs(): { records: LogRecord[]; log: (record: LogRecord) => void } {
  const records: LogRecord[] = []
  return { records, log: (record) => records.push(record) }
}

const statesOf = (records: readonly LogRecord[], port: number): unknown[] =>
  records.filter((record) => record['port'] === port && record['state'] !== undefined).map((record) => record['state'])

function options(overrides: Partial<HealthcheckOptions> & Pick<HealthcheckOptions, 'ports'>): HealthcheckOptions {
  return { mode: 'tcp', httpPort: overrides.ports[0] ?? 0, intervalMs: INTERVAL_MS, procRoot: '/proc', ...overrides }
}

async function start(t: Test, opts: HealthcheckOptions, log: (record: LogRecord) => void): Promise<Healthcheck> {
  const healthcheck = await startHealthcheck(opts, { readBoundUdpPorts, log })
  t.teardown(() => healthcheck.stop())
  return healthcheck
}

const ipv6Loopback = await (async () => {
  const server = createServer()
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen({ port: 0, host: '::1' }, () => server.close(() => resolve(true)))
  })
})()

t.test('tcp mode follows the UDP socket: accept while bound, refuse once it is gone', async (t) => {
  const port = await freePort()
  const { records, log } = collectLogs()
  await start(t, options({ ports: [port] }), log)

  t.equal(await tcpProbe(port), 'refused', 'nothing listens before the UDP app binds')

  const udp = await bindUdp(port)
  const up = await probeUntil('accepted-and-closed', () => tcpProbe(port), WITHIN_TWO_POLLS)
  t.equal(up.outcome, 'accepted-and-closed', `accepted within two polls (${up.elapsedMs} ms), then closed by the sidecar`)
  if (ipv6Loopback) t.equal(await tcpProbe(port, '::1'), 'accepted-and-closed', 'dual-stack: IPv6 too')

  await closeUdp(udp)
  const down = await probeUntil('refused', () => tcpProbe(port), WITHIN_TWO_POLLS)
  t.equal(down.outcome, 'refused', `refused within two polls of the UDP socket closing (${down.elapsedMs} ms)`)

  t.same(statesOf(records, port), ['udp-unbound', 'listening', 'udp-unbound'], 'one log line per change')
})

t.test('a port already bound at start is answered as soon as start resolves', async (t) => {
  const port = await freePort()
  const udp = await bindUdp(port)
  t.teardown(() => closeUdp(udp))
  await start(t, options({ ports: [port] }), () => {})
  t.equal(await tcpProbe(port), 'accepted-and-closed')
})

t.test('a TCP port taken by someone else: no crash, logged once, taken over when freed', async (t) => {
  const [busy, free] = [await freePort(), await freePort()]
  const squatter = await occupyTcp(busy)
  const udpBusy = await bindUdp(busy)
  const udpFree = await bindUdp(free)
  t.teardown(() => Promise.all([closeUdp(udpBusy), closeUdp(udpFree)]))
  const { records, log } = collectLogs()
  await start(t, options({ ports: [busy, free] }), log)

  await sleep(4 * INTERVAL_MS)
  t.same(statesOf(records, busy), ['tcp-port-busy'], 'busy logged once over several polls')
  t.match(records.find((record) => record['state'] === 'tcp-port-busy'), { level: 'warn', err: { code: 'EADDRINUSE' } })
  t.equal(await tcpProbe(free), 'accepted-and-closed', 'the other port is still answered')

  await closeTcp(squatter)
  const up = await probeUntil('accepted-and-closed', () => tcpProbe(busy), WITHIN_TWO_POLLS)
  t.equal(up.outcome, 'accepted-and-closed', `the sidecar takes the port over within two polls (${up.elapsedMs} ms)`)
  t.same(statesOf(records, busy), ['tcp-port-busy', 'listening'])
})

t.test('http mode: 200 while every port is bound, 503 naming the missing ones', async (t) => {
  const [a, b, httpPort] = [await freePort(), await freePort(), await freePort()]
  const udpA = await bindUdp(a)
  t.teardown(() => closeUdp(udpA))
  const udpB = await bindUdp(b)
  const { records, log } = collectLogs()
  await start(t, options({ ports: [a, b], mode: 'http', httpPort }), log)
  const url = `http://127.0.0.1:${httpPort}/anything`

  const ok = await fetch(url)
  t.equal(ok.status, 200)
  t.equal(await ok.text(), 'ok\n')
  t.equal((await fetch(url, { method: 'HEAD' })).status, 200, 'HEAD answers like GET')
  const post = await fetch(url, { method: 'POST', body: 'x' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  await post.arrayBuffer()

  await closeUdp(udpB)
  const start503 = performance.now()
  let response = await fetch(url)
  while (response.status === 200 && performance.now() - start503 < WITHIN_TWO_POLLS) {
    await response.arrayBuffer()
    await sleep(10)
    response = await fetch(url)
  }
  t.equal(response.status, 503, `503 within two polls (${Math.round(performance.now() - start503)} ms)`)
  t.equal(await response.text(), `no UDP socket bound on port ${b}\n`)
  t.equal(await tcpProbe(a), 'refused', 'http mode opens no TCP port per UDP port')

  t.same(statesOf(records, b), ['udp-bound', 'udp-unbound'])
  t.same(statesOf(records, httpPort), ['listening'])
})

t.test('http mode: a busy HTTP port is retried, not fatal', async (t) => {
  const [port, httpPort] = [await freePort(), await freePort()]
  const squatter = await occupyTcp(httpPort)
  const { records, log } = collectLogs()
  await start(t, options({ ports: [port], mode: 'http', httpPort }), log)
  await sleep(3 * INTERVAL_MS)
  t.same(statesOf(records, httpPort), ['tcp-port-busy'])

  await closeTcp(squatter)
  await sleep(WITHIN_TWO_POLLS)
  const response = await fetch(`http://127.0.0.1:${httpPort}/`)
  t.equal(response.status, 503, 'answers once the port is free (nothing bound on UDP)')
  t.equal(await response.text(), `no UDP socket bound on port ${port}\n`)
})

t.test('logging and polling, driven by a fake socket table and a manual clock', async (t) => {
  const port = await freePort()
  const tables: Array<ReadonlySet<number> | Error> = [
    new Set(),
    new Set(),
    new Set([port]),
    new Set([port, 9]),
    Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }),
    Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }),
    new Set([port]),
    new Set(),
  ]
  let reads = 0
  let pending: (() => void) | undefined
  const { records, log } = collectLogs()
  const healthcheck = await startHealthcheck(options({ ports: [port], intervalMs: 1234 }), {
    readBoundUdpPorts: async () => {
      const table = tables[reads++]
      if (table instanceof Error) throw table
      return table ?? new Set()
    },
    log,
    schedule: (fn, ms) => {
      t.equal(ms, 1234, 'polls at the configured interval')
      pending = fn
      return () => {
        pending = undefined
      }
    },
  })
  t.teardown(() => healthcheck.stop())

  // Each poll ends by scheduling the next, so a new `pending` means the previous poll has finished.
  const pollOnce = async (): Promise<void> => {
    const fn = pending
    pending = undefined
    if (fn === undefined) throw new Error('no poll scheduled')
    fn()
    while (pending === undefined) await sleep(1)
  }
  for (let i = 1; i < tables.length; i++) await pollOnce()

  t.equal(reads, tables.length)
  t.same(
    records.map(({ msg, state }) => (state === undefined ? msg : state)),
    [
      'udp-unbound',
      'listening',
      'cannot read the UDP socket table',
      'reading the UDP socket table again',
      'udp-unbound',
    ],
    'one line per state change; a read failure is logged once and keeps the last answer',
  )
  t.match(records[2], { level: 'error', err: { code: 'EACCES' } })

  await healthcheck.stop()
  t.equal(pending, undefined, 'stop cancels the next poll')
  await healthcheck.stop()
  t.pass('stop twice is fine')
})

t.test('stop closes every listener and leaves nothing accepting', async (t) => {
  const port = await freePort()
  const udp = await bindUdp(port)
  t.teardown(() => closeUdp(udp))
  const healthcheck = await startHealthcheck(options({ ports: [port] }), { readBoundUdpPorts, log: () => {} })
  t.equal(await tcpProbe(port), 'accepted-and-closed')
  const before = performance.now()
  await healthcheck.stop()
  t.ok(performance.now() - before < 100, 'stop is quick')
  t.equal(await tcpProbe(port), 'refused')
  await sleep(2 * INTERVAL_MS)
  t.equal(await tcpProbe(port), 'refused', 'no poll reopens it after stop')
})

t.test('jsonLineLogger writes one pino-shaped JSON line per record', async (t) => {
  const lines: string[] = []
  const log = jsonLineLogger({ write: (chunk) => lines.push(chunk) }, () => 1_700_000_000_000)
  log({ level: 'warn', msg: 'busy', port: 5060, state: 'tcp-port-busy' })
  t.same(lines, ['{"level":40,"time":1700000000000,"msg":"busy","port":5060,"state":"tcp-port-busy"}\n'])
})

t.test('parseHealthcheckArgs', async (t) => {
  t.same(parseHealthcheckArgs(['--port', '5060']), {
    kind: 'run',
    options: { ports: [5060], mode: 'tcp', httpPort: 5060, intervalMs: DEFAULT_INTERVAL_MS, procRoot: '/proc' },
  })
  t.ok(DEFAULT_INTERVAL_MS <= 2000, 'the default interval is at most 2 s')
  t.same(
    parseHealthcheckArgs([
      '--port=5060', '--port', '10000', '--port', '5060', '--mode', 'http', '--http-port', '8080',
      '--interval-ms', '250', '--proc-root', '/host/proc',
    ]),
    {
      kind: 'run',
      options: { ports: [5060, 10000], mode: 'http', httpPort: 8080, intervalMs: 250, procRoot: '/host/proc' },
    },
    'repeated --port, duplicates dropped, every option',
  )
  t.match(parseHealthcheckArgs(['--port', '53', '--mode', 'http']), { options: { httpPort: 53 } }, 'http port defaults to the first --port')
  t.same(parseHealthcheckArgs(['--help']), { kind: 'help' })
  t.match(parseHealthcheckArgs(['-h', '--bogus']), { kind: 'usage-error' }, 'an unknown option wins over --help')

  const errors: Array<[string[], RegExp]> = [
    [[], /at least one --port/],
    [['--port', '0'], /--port must be an integer from 1 to 65535, got "0"/],
    [['--port', '65536'], /got "65536"/],
    [['--port', 'abc'], /got "abc"/],
    [['--port', '-1'], /--port|argument/],
    [['--port', '1.5'], /got "1.5"/],
    [['--port', '5060', '--mode', 'udp'], /--mode must be tcp or http, got "udp"/],
    [['--port', '5060', '--http-port', '8080'], /--http-port applies only to --mode http/],
    [['--port', '5060', '--mode', 'http', '--http-port', '0'], /--http-port must be an integer/],
    [['--port', '5060', '--interval-ms', '5'], /--interval-ms must be an integer from 10 to 60000, got "5"/],
    [['--port', '5060', '--interval-ms', '60001'], /got "60001"/],
    [['--port', '5060', '--proc-root', ''], /--proc-root must not be empty/],
    [['--port', '5060', '--verbose'], /Unknown option '--verbose'/],
    [['--port', '5060', 'extra'], /positional argument/],
    [['--port'], /argument missing/],
  ]
  for (const [argv, message] of errors) {
    t.match(parseHealthcheckArgs(argv), { kind: 'usage-error', message }, argv.join(' ') || '(no arguments)')
  }
})

function captureIo() {
  const out = { stdout: '', stderr: '' }
  return {
    out,
    io: {
      stdin: process.stdin,
      stdout: { write: (chunk: string) => (out.stdout += chunk) },
      stderr: { write: (chunk: string) => (out.stderr += chunk) },
    },
  }
}

t.test('healthcheckCommand: --help and usage errors', async (t) => {
  const help = captureIo()
  t.equal(await healthcheckCommand(['--help'], help.io), 0)
  t.equal(help.out.stdout, HEALTHCHECK_USAGE)
  t.equal(help.out.stderr, '')

  const bad = captureIo()
  t.equal(await healthcheckCommand(['--port', '70000'], bad.io), 2)
  t.match(bad.out.stderr, /^nlb-guard healthcheck: --port must be an integer from 1 to 65535, got "70000"\n\nUsage: /)
  t.equal(bad.out.stdout, '')
})

// The program as the container runs it: a separate process that must exit 0 within a second of SIGTERM.
const main = fileURLToPath(new URL('../../sidecar/main.ts', import.meta.url))
// tap runs this file through its TypeScript loader; the child needs the same one to load main.ts,
// whose imports name `.js` files (NodeNext) that Node's own type stripping would not map to `.ts`.
const tsLoader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'))

async function spawnSidecar(t: Test, args: string[]) {
  // NODE_OPTIONS is dropped so tap's coverage hooks do not run in (and slow down) the measured process.
  const { NODE_OPTIONS: _unused, ...env } = process.env
  const child = spawn(process.execPath, [...tsLoader, main, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: string): void => {
      stderr += chunk
      if (stderr.includes('"msg":"healthcheck started"')) resolve()
    }
    child.stderr.on('data', onData)
    void exited.then(() => reject(new Error(`sidecar exited before starting:\n${stderr}`)))
  })
  return { child, exited, stderr: () => stderr }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`the program exits 0 within a second of ${signal}`, async (t) => {
    const [a, b] = [await freePort(), await freePort()]
    const udp = await bindUdp(a)
    t.teardown(() => closeUdp(udp))
    const sidecar = await spawnSidecar(t, ['--port', String(a), '--port', String(b), '--interval-ms', '100'])

    const up = await probeUntil('accepted-and-closed', () => tcpProbe(a), 300)
    t.equal(up.outcome, 'accepted-and-closed', 'the spawned program answers for the bound UDP port')
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${sidecar.child.pid}/status`, 'utf8'))?.[1]
    t.comment(`RSS while idle (tap's TypeScript loader included): ${rss ?? '?'} kB`)

    const sent = performance.now()
    sidecar.child.kill(signal)
    const { code, signal: killedBy, at } = await sidecar.exited
    const exitMs = Math.round(at - sent)
    t.equal(killedBy, null, 'not killed by the signal: it handled it')
    t.equal(code, 0, 'exit code 0')
    t.ok(exitMs < 1000, `exited ${exitMs} ms after ${signal}`)
    t.match(sidecar.stderr(), new RegExp(`"msg":"healthcheck stopped","signal":"${signal}"`))
    const lines = sidecar.stderr().trim().split('\n')
    t.ok(lines.every((line) => JSON.parse(line) !== null), 'stderr is JSON lines only')
    t.equal(await tcpProbe(a), 'refused', 'nothing listens after exit')
  })
}
