import { once } from 'node:events'
import { connect as netConnect, createServer, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import { metricsBindAddress, parseConfig } from '../../webhook/config.js'
import { HANDSHAKE_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../webhook/server/app.js'
import { freePort, runCli } from '../fixtures/cli.js'
import { plainGet, serve } from '../fixtures/serve.js'

/**
 * The transport bounds of `nlb-guard serve`, on the real server: every test waits on the event (a
 * close, an exit), never a clock. Node's defaults would hold each of these connections for 60–120 s,
 * so each test's timeout (well under that) is what fails when a bound is missing.
 */
t.setTimeout(90_000)

/** Resolves when the server closes the connection (the client never closes it itself). */
function closedByServer(socket: Socket): Promise<void> {
  socket.on('error', () => {
    // a reset or a TLS alert ends in 'close' too (events.once would reject on it)
  })
  return new Promise((resolve) => socket.once('close', () => resolve()))
}

t.test('transport bounds of the TLS and metrics ports', async (t) => {
  const server = await serve(t)
  t.equal(HANDSHAKE_TIMEOUT_MS, REQUEST_TIMEOUT_MS, 'the handshake is bounded like a request')

  t.test('a TCP connection that never sends a ClientHello is closed by the server', async (t) => {
    t.setTimeout(HANDSHAKE_TIMEOUT_MS + 20_000)
    const socket = netConnect(server.port, '127.0.0.1')
    await once(socket, 'connect')
    await closedByServer(socket)
    t.pass('closed')
    const metrics = (await plainGet(server.metricsPort, '/metrics')).body
    t.match(metrics, /nlb_guard_tls_handshake_failures_total\{reason="ERR_TLS_HANDSHAKE_TIMEOUT"\} 1/, 'and counted')
  })

  t.test('client-initiated renegotiation closes the connection', async (t) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost', maxVersion: 'TLSv1.2' })
    await once(socket, 'secureConnect')
    const closed = closedByServer(socket)
    socket.renegotiate({}, () => {
      // Node's callback reports the local side only; the server's answer is the close (or not).
    })
    // Whichever comes first: the server closing, or an answer on the renegotiated connection.
    const answered = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1').split('\r\n')[0] ?? '')))
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
    const outcome = await Promise.race([closed.then(() => 'closed'), answered])
    t.equal(outcome, 'closed', 'the server closed the connection instead of renegotiating')
  })

  t.test('the metrics port closes a connection that sends nothing, and one that trickles headers', async (t) => {
    t.setTimeout(REQUEST_TIMEOUT_MS + 30_000)
    const silent = netConnect(server.metricsPort, '127.0.0.1')
    const trickle = netConnect(server.metricsPort, '127.0.0.1')
    await Promise.all([once(silent, 'connect'), once(trickle, 'connect')])
    trickle.write('GET /metrics HTTP/1.1\r\nHost: x\r\n')
    // A header line every second keeps the connection busy but never completes the request.
    const drip = setInterval(() => trickle.writable && trickle.write('X-Slow: 1\r\n'), 1000)
    t.teardown(() => clearInterval(drip))
    let answer = ''
    trickle.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk))
    await Promise.all([closedByServer(silent), closedByServer(trickle)])
    clearInterval(drip)
    t.match(answer, /^(HTTP\/1\.1 408|)/, 'the trickling request got a 408 or nothing')
    t.equal((await plainGet(server.metricsPort, '/healthz')).status, 200, 'the port still serves')
  })
})

t.test('a busy metrics port: one line naming the port and the flag, exit 1, no stack trace', async (t) => {
  const blocker = createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const busy = (blocker.address() as { port: number }).port
  const result = await runCli(['serve', '--kube-version', '1.30.0', '--address', '127.0.0.1', '--port', String(await freePort()), '--metrics-port', String(busy), '--log-level', 'silent', '--shutdown-delay', '0'])
  t.equal(result.code, 1)
  const lines = result.stderr.split('\n').filter((line) => line !== '')
  t.same(lines, [`nlb-guard serve: cannot listen on 127.0.0.1:${busy}: the address is already in use (another process listens there); choose another with --metrics-port/--metrics-address (metricsPort/metricsAddress)`])
})

t.test('the metrics port binds the pod IP in a pod, else the address', async (t) => {
  const inPod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', POD_IP: '10.1.2.3' }
  t.equal(metricsBindAddress(parseConfig({}), inPod), '10.1.2.3', 'in a pod: its IP (downward API)')
  t.equal(metricsBindAddress(parseConfig({ metricsAddress: '127.0.0.1' }), inPod), '127.0.0.1', 'metricsAddress wins')
  t.equal(metricsBindAddress(parseConfig({}), { POD_IP: '10.1.2.3' }), '0.0.0.0', 'POD_IP outside a pod is ignored')
  t.equal(metricsBindAddress(parseConfig({ address: '127.0.0.1' }), {}), '127.0.0.1', 'locally: the TLS address')
  t.equal(metricsBindAddress(parseConfig({}), { ...inPod, POD_IP: '' }), '0.0.0.0', 'a pod without POD_IP: the address')
})
