import { EventEmitter } from 'node:events'
import t from 'tap'
import { createMetrics } from '../../webhook/server/metrics.js'
import { HANDSHAKE_LOG_INTERVAL_MS, handshakeFailure, watchHandshakes } from '../../webhook/server/handshakes.js'

const errorWith = (code: string | undefined) => Object.assign(new Error('handshake'), code === undefined ? {} : { code })
const socket = (authorizationError?: string) => ({ authorizationError, remoteAddress: '10.0.0.7', destroy: () => undefined })

t.test('handshakeFailure names the cause', async (t) => {
  t.same(handshakeFailure(errorWith('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), socket() as never), { reason: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', certificateRefused: true }, 'no certificate')
  t.same(handshakeFailure(errorWith('ECONNRESET'), socket('CERT_HAS_EXPIRED') as never), { reason: 'CERT_HAS_EXPIRED', certificateRefused: true }, 'a certificate that did not verify: the reason is on the socket')
  t.same(handshakeFailure(errorWith('ECONNRESET'), socket() as never), { reason: 'ECONNRESET', certificateRefused: false }, 'a client that hung up')
  t.same(handshakeFailure(errorWith('ERR_SSL_HTTP_REQUEST'), socket('') as never), { reason: 'ERR_SSL_HTTP_REQUEST', certificateRefused: false }, 'plain HTTP on the TLS port')
  t.same(handshakeFailure(errorWith(undefined), socket() as never), { reason: 'unknown', certificateRefused: false }, 'an error without a code')
})

t.test('watchHandshakes counts every failure and warns about refused certificates once a minute per reason', async (t) => {
  const server = new EventEmitter()
  const metrics = createMetrics({ defaultMetrics: false })
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = []
  const log = {
    warn: (fields: object, message: string) => lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
    debug: (fields: object, message: string) => lines.push({ level: 'debug', fields: fields as Record<string, unknown>, message }),
  }
  let clock = 1_000_000
  watchHandshakes(server, metrics, log, () => clock)
  const fail = (code: string, authorizationError?: string) => server.emit('tlsClientError', errorWith(code), socket(authorizationError))

  fail('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')
  t.match(lines.at(-1), { level: 'warn', message: 'client certificate refused', fields: { reason: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', remoteAddress: '10.0.0.7', suppressed: 0, hint: /--client-ca/ } })
  clock += 1_000
  fail('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')
  fail('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')
  t.equal(lines.length, 1, 'repeats within the interval are not logged')
  fail('ECONNRESET', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  t.match(lines.at(-1), { level: 'warn', fields: { reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', suppressed: 0 } }, 'another reason has its own interval')
  fail('ECONNRESET')
  t.match(lines.at(-1), { level: 'debug', message: 'TLS handshake failed', fields: { reason: 'ECONNRESET' } }, 'a hang-up is routine: debug')

  clock += HANDSHAKE_LOG_INTERVAL_MS
  fail('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')
  t.match(lines.at(-1), { level: 'warn', fields: { reason: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', suppressed: 2 } }, 'after the interval, logged again with the count it held back')
  t.equal(lines.length, 4)

  const text = await metrics.registry.getSingleMetricAsString('nlb_guard_tls_handshake_failures_total')
  t.match(text, /reason="ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"\} 4/, 'every failure is counted, logged or not')
  t.match(text, /reason="UNABLE_TO_VERIFY_LEAF_SIGNATURE"\} 1/)
  t.match(text, /reason="ECONNRESET"\} 1/)
})
