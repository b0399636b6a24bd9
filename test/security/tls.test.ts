import { connect, getCiphers, type ConnectionOptions, type TLSSocket } from 'node:tls'
import t from 'tap'
import { REQUEST_TIMEOUT_MS } from '../../webhook/server/app.js'
import { plainGet, serve } from '../fixtures/serve.js'

t.setTimeout(90_000)

interface Handshake {
  /** `ok` or the error code (an `ALERT` in it means the server refused). */
  readonly result: string
  readonly protocol?: string | null
  readonly cipher?: string
  readonly ephemeral?: string | undefined
  readonly alpn?: string | false | null
}

function handshake(options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', servername: 'localhost', ...options })
    socket.once('secureConnect', () => {
      const ephemeral = socket.getEphemeralKeyInfo()
      resolve({
        result: 'ok',
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        ephemeral: ephemeral !== null && 'type' in ephemeral ? String(ephemeral.type) : undefined,
        alpn: socket.alpnProtocol,
      })
      socket.destroy()
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ result: error.code ?? error.message }))
  })
}

const AEAD_ECDHE = /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/

t.test('TLS: 1.2+ only, forward-secret AEAD suites only', async (t) => {
  const server = await serve(t)
  const base = { port: server.port, ca: server.ca }

  t.test('a TLS 1.2 client offering only weak suites is refused by the server', async (t) => {
    // SECLEVEL=0 lets our client offer them, so a refusal is the server's (an alert), not our own.
    const weak = [
      ['AES128-SHA', 'RSA key exchange, CBC'],
      ['AES256-SHA', 'RSA key exchange, CBC'],
      ['AES128-SHA256', 'RSA key exchange, CBC'],
      ['AES128-GCM-SHA256', 'RSA key exchange (no forward secrecy), AEAD'],
      ['AES256-GCM-SHA384', 'RSA key exchange (no forward secrecy), AEAD'],
      ['ECDHE-RSA-AES128-SHA', 'ECDHE, CBC'],
      ['ECDHE-RSA-AES256-SHA384', 'ECDHE, CBC'],
      ['DHE-RSA-AES128-GCM-SHA256', 'finite-field DHE'],
      ['DES-CBC3-SHA', '3DES'],
      ['RC4-SHA', 'RC4'],
    ]
    const available = new Set(getCiphers())
    for (const [cipher, what] of weak as Array<[string, string]>) {
      if (!available.has(cipher.toLowerCase())) {
        t.comment(`${cipher} (${what}): not in this OpenSSL build, so no client can offer it`)
        continue
      }
      const result = await handshake({ ...base, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: `${cipher}:@SECLEVEL=0` })
      t.match(result.result, /ALERT_HANDSHAKE_FAILURE|ALERT_INSUFFICIENT_SECURITY/, `${cipher} (${what}) refused: ${result.result}`)
    }
  })

  t.test('TLS 1.2 negotiates ECDHE with an AEAD cipher, whatever the client prefers', async (t) => {
    const plain = await handshake({ ...base, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })
    t.equal(plain.protocol, 'TLSv1.2')
    t.match(plain.cipher, AEAD_ECDHE, `default client: ${plain.cipher}`)
    t.equal(plain.ephemeral, 'ECDH', 'ephemeral ECDH key exchange')
    // A client that lists weak suites first still gets a strong one (honorCipherOrder, and only strong ones configured).
    const weakFirst = await handshake({ ...base, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0' })
    t.equal(weakFirst.result, 'ok')
    t.equal(weakFirst.cipher, 'ECDHE-RSA-AES256-GCM-SHA384', 'the only strong suite offered is chosen')
    for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
      const result = await handshake({ ...base, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: cipher })
      t.equal(result.cipher, cipher, `${cipher} accepted`)
    }
  })

  t.test('TLS 1.3 works; TLS 1.0 and 1.1 are refused', async (t) => {
    const tls13 = await handshake({ ...base, minVersion: 'TLSv1.3' })
    t.equal(tls13.protocol, 'TLSv1.3')
    t.match(tls13.cipher, /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/)
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const old = await handshake({ ...base, minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' })
      t.match(old.result, /PROTOCOL|VERSION/, `${version} refused: ${old.result}`)
    }
    // Refusals that are not about a client certificate are counted, and kept out of the warnings.
    const metrics = (await plainGet(server.metricsPort, '/metrics')).body
    const counted = [...metrics.matchAll(/^nlb_guard_tls_handshake_failures_total\{reason="([^"]*(?:PROTOCOL|VERSION)[^"]*)"\} (\d+)$/gm)]
    t.equal(counted.reduce((sum, m) => sum + Number(m[2]), 0), 2, `both old-protocol handshakes counted: ${counted.map((m) => m[1]).join(', ')}`)
    t.notMatch(server.log(), /client certificate refused/, 'and not reported as a certificate problem')
  })

  t.test('HTTP/2 is not negotiated (the apiserver calls webhooks over HTTP/1.1)', async (t) => {
    const result = await handshake({ ...base, ALPNProtocols: ['h2', 'http/1.1'] })
    t.equal(result.result, 'ok')
    t.not(result.alpn, 'h2')
  })

  t.test('request timeouts: stalled requests are closed, idle keep-alive connections are not', async (t) => {
    // Node's defaults would hold a stalled request 30–60 s: the subtest's own timeout is the bound.
    t.setTimeout(REQUEST_TIMEOUT_MS + 20_000)
    const open = () =>
      new Promise<TLSSocket>((resolve, reject) => {
        const socket = connect({ ...base, host: '127.0.0.1', servername: 'localhost' }, () => resolve(socket))
        socket.once('error', reject)
      })
    const closedAfter = async (socket: TLSSocket, first: string): Promise<{ ms: number; answer: string }> => {
      const started = Date.now()
      let answer = ''
      socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
      socket.on('error', () => {})
      socket.write(first)
      await new Promise((resolve) => socket.once('close', resolve))
      return { ms: Date.now() - started, answer: answer.split('\r\n')[0] ?? '' }
    }
    const stalls = [
      ['headers sent, body stalls', 'POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion":'],
      ['headers stall', 'POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Ty'],
      ['nothing sent after the handshake', ''],
    ] as const
    // A keep-alive connection answered once, then idle: events order the check, not a clock. The
    // stalled requests start after its answer, so when the request timeout has closed all of them
    // it has been idle for longer than that timeout.
    const idle = await open()
    let answers = ''
    const answered = (count: number) =>
      new Promise<void>((resolve) => {
        const check = () => (answers.match(/HTTP\/1\.1 200 OK/g)?.length ?? 0) >= count && resolve()
        idle.on('data', check)
        check()
      })
    idle.setEncoding('utf8').on('data', (chunk: string) => (answers += chunk))
    idle.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await answered(1)

    const stalled = await Promise.all(stalls.map(async ([what, first]) => ({ what, ...(await closedAfter(await open(), first)) })))
    for (const { what, ms, answer } of stalled) t.equal(answer, 'HTTP/1.1 408 Request Timeout', `${what}: closed with a 408 (after ${ms} ms)`)
    t.notOk(idle.destroyed, 'once the request timeout closed all three, the idle keep-alive connection is still open')
    idle.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await answered(2)
    t.pass('and serves its second request')
    idle.destroy()
  })

  t.test('the server still serves and exits cleanly', async (t) => {
    const ok = await handshake({ ...base })
    t.equal(ok.result, 'ok')
    t.equal(await server.stop(), 0)
  })
})
