// The health-check sidecar as the container runs it: the static Go binary (sidecar/), started as a
// process, against real sockets on loopback and the real /proc. Each step waits for the line the
// sidecar logs when its state changes, never for a fixed time. Its internals (the socket table
// parser, one poll at a time) have Go unit tests: test/sidecar/go.test.ts runs them.
import { execFile, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import type { Socket as UdpSocket } from 'node:dgram'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import type { Server } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import type { Test } from 'tap'
import { sidecarBinary, startSidecar, statesOf, type RunningSidecar } from '../fixtures/sidecar.js'

const binary = await sidecarBinary()
const INTERVAL_MS = '50'

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen({ port: 0 }, resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no TCP port')
  return address.port
}

async function bindUdp(port: number, address = '0.0.0.0'): Promise<UdpSocket> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(port, address, resolve))
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

async function start(t: Test, args: readonly string[]): Promise<RunningSidecar> {
  const sidecar = await startSidecar(binary, ['--interval-ms', INTERVAL_MS, ...args])
  t.teardown(() => {
    if (sidecar.child.exitCode === null && sidecar.child.signalCode === null) sidecar.child.kill('SIGKILL')
  })
  return sidecar
}

const stateChange = (port: number, state: string, after = 0) => (record: { port?: number; state?: string; time: number }, index?: number) =>
  record.port === port && record.state === state && (index ?? 0) >= after

const ipv6Loopback = await (async () => {
  const server = createServer()
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen({ port: 0, host: '::1' }, () => server.close(() => resolve(true)))
  })
})()

t.test('tcp mode follows the UDP socket: accept while bound, refuse once it is gone', async (t) => {
  const port = await freePort()
  const sidecar = await start(t, ['--port', String(port)])
  t.equal(await tcpProbe(port), 'refused', 'nothing listens before the UDP app binds')

  const udp = await bindUdp(port)
  await sidecar.waitForRecord('listening', stateChange(port, 'listening'))
  t.equal(await tcpProbe(port), 'accepted-and-closed', 'accepted once the sidecar saw the socket, then closed by it')
  if (ipv6Loopback) t.equal(await tcpProbe(port, '::1'), 'accepted-and-closed', 'dual-stack: IPv6 too')

  const seen = sidecar.records.length
  await closeUdp(udp)
  await sidecar.waitForRecord('udp-unbound', (r) => sidecar.records.indexOf(r) >= seen && r.port === port && r.state === 'udp-unbound')
  t.equal(await tcpProbe(port), 'refused', 'refused once the UDP socket is gone')
  t.same(statesOf(sidecar.records, port), ['udp-unbound', 'listening', 'udp-unbound'], 'one log line per change')
})

t.test('a port already bound at start is answered as soon as it says "started"', async (t) => {
  const port = await freePort()
  const udp = await bindUdp(port)
  t.teardown(() => closeUdp(udp))
  await start(t, ['--port', String(port)])
  t.equal(await tcpProbe(port), 'accepted-and-closed')
})

t.test('a UDP socket the NLB cannot reach does not count: loopback-only or connected (issue 13)', async (t) => {
  const [loopback, connected, wildcard] = [await freePort(), await freePort(), await freePort()]
  const sockets = [await bindUdp(loopback, '127.0.0.1'), await bindUdp(connected), await bindUdp(wildcard)]
  t.teardown(() => Promise.all(sockets.map(closeUdp)))
  const peer = await bindUdp(0, '127.0.0.1')
  t.teardown(() => closeUdp(peer))
  await new Promise<void>((resolve) => sockets[1]?.connect(peer.address().port, '127.0.0.1', resolve))
  // All three were there for the first poll, which ends before "started".
  const sidecar = await start(t, ['--port', String(loopback), '--port', String(connected), '--port', String(wildcard)])
  t.equal(await tcpProbe(wildcard), 'accepted-and-closed', 'a socket on 0.0.0.0 counts')
  t.equal(await tcpProbe(loopback), 'refused', 'a socket on 127.0.0.1 only does not: the NLB cannot reach it')
  t.equal(await tcpProbe(connected), 'refused', 'a connected socket does not: it takes datagrams from its peer only')
  t.same(statesOf(sidecar.records, loopback), ['udp-unbound'])
  t.same(statesOf(sidecar.records, connected), ['udp-unbound'])
})

t.test('a TCP port taken by someone else: no crash, logged once, taken over when freed', async (t) => {
  const [busy, free] = [await freePort(), await freePort()]
  const squatter = await occupyTcp(busy)
  const udpBusy = await bindUdp(busy)
  const udpFree = await bindUdp(free)
  t.teardown(() => Promise.all([closeUdp(udpBusy), closeUdp(udpFree)]))
  const sidecar = await start(t, ['--port', String(busy), '--port', String(free)])

  const record = await sidecar.waitForRecord('tcp-port-busy', stateChange(busy, 'tcp-port-busy'))
  t.match(record, { level: 40, err: { code: 'EADDRINUSE' } })
  t.equal(await tcpProbe(free), 'accepted-and-closed', 'the other port is still answered')

  await closeTcp(squatter)
  await sidecar.waitForRecord('listening', stateChange(busy, 'listening'))
  t.equal(await tcpProbe(busy), 'accepted-and-closed', 'the sidecar takes the port over')
  t.same(statesOf(sidecar.records, busy), ['tcp-port-busy', 'listening'], 'busy logged once however many polls it took')
})

const statusKiB = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
const rssKiB = (pid: number) => statusKiB(pid, 'VmRSS')
/** Open sockets: what a failed listen that is not closed would leave behind. */
const sockets = (pid: number) => readdirSync(`/proc/${pid}/fd`).filter((fd) => {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')
  } catch {
    return false
  }
}).length

t.test('a port busy for good (DNS also on TCP 53) costs nothing per retry: 2,000 polls, same memory, same descriptors (issue 13)', async (t) => {
  const port = await freePort()
  const squatter = await occupyTcp(port)
  t.teardown(() => closeTcp(squatter))
  // The socket table comes through a named pipe: each poll opens it and reads what the test writes,
  // so the test counts polls exactly instead of waiting for time to pass.
  const procRoot = t.testdir({ net: { udp6: 'header\n' } })
  const fifo = join(procRoot, 'net', 'udp')
  t.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo')
  const table = `header\n 1: 00000000:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000 0 1 2 0 0\n`
  // A write can meet the previous poll's reader just before it closes (EPIPE): write again.
  const poll = async (): Promise<void> => {
    for (;;) {
      try {
        return await writeFile(fifo, table)
      } catch (error: unknown) {
        if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error
      }
    }
  }

  const starting = startSidecar(binary, ['--port', String(port), '--interval-ms', '10', '--proc-root', procRoot])
  await poll()
  const sidecar = await starting
  t.teardown(() => void sidecar.child.kill('SIGKILL'))
  await sidecar.waitForRecord('tcp-port-busy', stateChange(port, 'tcp-port-busy'))
  for (let i = 0; i < 50; i++) await poll()
  const pid = sidecar.child.pid as number
  const before = { anon: statusKiB(pid, 'RssAnon'), rss: rssKiB(pid), sockets: sockets(pid) }
  for (let i = 0; i < 2000; i++) await poll()
  const after = { anon: statusKiB(pid, 'RssAnon'), rss: rssKiB(pid), sockets: sockets(pid) }
  t.equal(after.sockets, before.sockets, `open sockets: ${before.sockets} before, ${after.sockets} after 2,000 failed listens`)
  // The old sidecar grew ~24 MB in a minute here; a poll allocates nothing (sidecar/checker_test.go),
  // so what may move is a few pages of code and stack touched for the first time.
  t.ok(after.anon - before.anon <= 128, `private memory ${before.anon} KiB → ${after.anon} KiB after 2,000 failed listens (resident ${before.rss} → ${after.rss} KiB)`)
  t.same(statesOf(sidecar.records, port), ['tcp-port-busy'], 'one line, not one per poll')
})

t.test('http mode: 200 while every port is bound, 503 naming the missing ones', async (t) => {
  const [a, b, httpPort] = [await freePort(), await freePort(), await freePort()]
  const udpA = await bindUdp(a)
  t.teardown(() => closeUdp(udpA))
  const udpB = await bindUdp(b)
  const sidecar = await start(t, ['--port', String(a), '--port', String(b), '--mode', 'http', '--http-port', String(httpPort)])
  const url = `http://127.0.0.1:${httpPort}/anything`

  const ok = await fetch(url)
  t.equal(ok.status, 200)
  t.equal(await ok.text(), 'ok\n')
  t.equal(ok.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(ok.headers.get('cache-control'), 'no-store')
  t.equal((await fetch(url, { method: 'HEAD' })).status, 200, 'HEAD answers like GET')
  const post = await fetch(url, { method: 'POST', body: 'x' })
  t.equal(post.status, 405)
  t.equal(post.headers.get('allow'), 'GET, HEAD')
  await post.arrayBuffer()

  await closeUdp(udpB)
  await sidecar.waitForRecord('udp-unbound', stateChange(b, 'udp-unbound'))
  const response = await fetch(url)
  t.equal(response.status, 503, '503 once the sidecar saw the socket go')
  t.equal(await response.text(), `no UDP socket bound on port ${b}\n`)
  t.equal(await tcpProbe(a), 'refused', 'http mode opens no TCP port per UDP port')

  t.same(statesOf(sidecar.records, b), ['udp-bound', 'udp-unbound'])
  t.same(statesOf(sidecar.records, httpPort), ['listening'])
})

t.test('http mode: a busy HTTP port is retried, not fatal', async (t) => {
  const [port, httpPort] = [await freePort(), await freePort()]
  const squatter = await occupyTcp(httpPort)
  const sidecar = await start(t, ['--port', String(port), '--mode', 'http', '--http-port', String(httpPort)])
  await sidecar.waitForRecord('tcp-port-busy', stateChange(httpPort, 'tcp-port-busy'))
  t.equal(sidecar.child.exitCode, null, 'still running')

  await closeTcp(squatter)
  await sidecar.waitForRecord('listening', stateChange(httpPort, 'listening'))
  const response = await fetch(`http://127.0.0.1:${httpPort}/`)
  t.equal(response.status, 503, 'answers once the port is free (nothing bound on UDP)')
  t.equal(await response.text(), `no UDP socket bound on port ${port}\n`)
  t.same(statesOf(sidecar.records, httpPort), ['tcp-port-busy', 'listening'])
})

const run = promisify(execFile)

t.test('--help and usage errors', async (t) => {
  const help = await run(binary, ['--help'])
  t.match(help.stdout, /^Usage: nlb-guard-healthcheck --port P \[--port Q\]\.\.\. \[options\]\n/)
  t.match(help.stdout, /--interval-ms N +how often to look at the UDP sockets, 10-60000 \(default 1000\)/)
  t.equal(help.stderr, '')
  t.equal((await run(binary, ['-h'])).stdout, help.stdout, '-h too')

  const bad = await run(binary, ['--port', '70000']).then(() => undefined, (error: { code: number; stdout: string; stderr: string }) => error)
  t.equal(bad?.code, 2)
  t.match(bad?.stderr, /^nlb-guard-healthcheck: --port must be an integer from 1 to 65535, got "70000"\n\nUsage: /)
  t.equal(bad?.stdout, '')
})

t.test('the binary is static: no program interpreter, so it runs FROM scratch', async (t) => {
  const elf = readFileSync(binary)
  t.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF')
  // ELF64: e_phoff at 32, e_phentsize at 54, e_phnum at 56; PT_INTERP is program header type 3.
  const phoff = Number(elf.readBigUInt64LE(32))
  const types = Array.from({ length: elf.readUInt16LE(56) }, (_, i) => elf.readUInt32LE(phoff + i * elf.readUInt16LE(54)))
  t.notOk(types.includes(3), 'no PT_INTERP: linked statically')
  t.notOk(types.includes(2), 'no PT_DYNAMIC')
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`the program exits 0 within a second of ${signal}`, async (t) => {
    const [a, b] = [await freePort(), await freePort()]
    const udp = await bindUdp(a)
    t.teardown(() => closeUdp(udp))
    const sidecar = await start(t, ['--port', String(a), '--port', String(b)])
    t.equal(await tcpProbe(a), 'accepted-and-closed', 'the program answers for the bound UDP port')
    t.comment(`RSS while idle: ${rssKiB(sidecar.child.pid as number)} kB`)

    const sent = performance.now()
    sidecar.child.kill(signal)
    const { code, signal: killedBy, at } = await sidecar.exited
    const exitMs = Math.round(at - sent)
    t.equal(killedBy, null, 'not killed by the signal: it handled it')
    t.equal(code, 0, 'exit code 0')
    t.ok(exitMs < 1000, `exited ${exitMs} ms after ${signal}`)
    t.match(sidecar.stderr(), new RegExp(`"msg":"healthcheck stopped","signal":"${signal}"`))
    t.match(sidecar.records[0], { level: 30, msg: 'UDP socket bound; accepting TCP', port: a, state: 'listening' })
    t.match(sidecar.records.find((r) => r.msg === 'healthcheck started'), { mode: 'tcp', ports: [a, b], intervalMs: Number(INTERVAL_MS) })
    t.ok(sidecar.records.every((r) => typeof r.time === 'number' && typeof r.level === 'number'), 'stderr is pino-shaped JSON lines only')
    t.equal(await tcpProbe(a), 'refused', 'nothing listens after exit')
  })
}
