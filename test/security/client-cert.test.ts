import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type ConnectionOptions } from 'node:tls'
import t from 'tap'
import { issueCA, issueServingCertificate, type CertificateAndKey } from '../../certs/issue.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { issueClientCertificate } from './fixtures/pki.js'
import { plainGet, serve } from '../fixtures/serve.js'

t.setTimeout(60_000)

interface Outcome {
  /** `served <status>` when an HTTP answer came back, else the TLS error code or `closed`. */
  readonly result: string
  readonly body: string
}

/**
 * One POST /mutate over a fresh connection. Under TLS 1.3 the client finishes its handshake before
 * the server has checked the client certificate, so a refusal shows as an alert on the first read:
 * either way, a refused client gets no HTTP answer.
 */
function request(options: ConnectionOptions, body: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let received = ''
    let error: string | undefined
    const socket = connect({ host: '127.0.0.1', servername: 'localhost', ...options }, () => {
      socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    })
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk))
    socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message))
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1]
      resolve({ result: status ? `served ${status}` : (error ?? 'closed'), body: received.slice(received.indexOf('\r\n\r\n') + 4) })
    })
  })
}

t.test('serve --client-ca: only clients with a certificate from that CA are served', async (t) => {
  const now = new Date()
  const clientCa = issueCA({ commonName: 'apiserver client CA', now })
  const otherCa = issueCA({ commonName: 'some other CA', now })
  // The CA file must exist before serve starts.
  const caDir = await mkdtemp(join(tmpdir(), 'nlb-guard-client-ca-'))
  t.teardown(() => rm(caDir, { recursive: true, force: true }))
  const caFile = join(caDir, 'client-ca.crt')
  await writeFile(caFile, clientCa.certPem)
  const server = await serve(t, { args: ['--client-ca', caFile] })

  const good = issueClientCertificate(clientCa, { commonName: 'kube-apiserver' })
  const foreign = issueClientCertificate(otherCa, { commonName: 'kube-apiserver' })
  const serverAuthOnly: CertificateAndKey = issueServingCertificate({ ca: clientCa, dnsNames: ['client.example'], ipAddresses: [], now })
  const expired = issueClientCertificate(clientCa, { commonName: 'kube-apiserver', notBefore: new Date(now.getTime() - 3 * 86_400_000), notAfter: new Date(now.getTime() - 86_400_000) })
  const body = JSON.stringify(reviewFor(serviceObject(), { uid: 'mtls' }))

  // Without a certificate OpenSSL itself aborts the handshake with an alert. A certificate that does not
  // verify completes OpenSSL's handshake, and Node's TLS server destroys the socket before the HTTP
  // server ever sees it (rejectUnauthorized): the client reads a reset or a close, never an answer.
  const cases: Array<[string, Partial<ConnectionOptions>, RegExp]> = [
    ['no client certificate', {}, /ALERT_HANDSHAKE_FAILURE|ALERT_CERTIFICATE_REQUIRED/],
    ['a certificate from another CA', { cert: foreign.certPem, key: foreign.keyPem }, /ALERT|ECONNRESET|closed/],
    ['a certificate from the right CA without clientAuth (serverAuth only)', { cert: serverAuthOnly.certPem, key: serverAuthOnly.keyPem }, /ALERT|ECONNRESET|closed/],
    ['an expired certificate from the right CA', { cert: expired.certPem, key: expired.keyPem }, /ALERT|ECONNRESET|closed/],
  ]
  for (const [what, credentials, refusal] of cases) {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const outcome = await request({ port: server.port, ca: server.ca, minVersion: version, maxVersion: version, ...credentials }, body)
      t.notMatch(outcome.result, /^served/, `${what} over ${version}: refused (${outcome.result})`)
      t.match(outcome.result, refusal, `${what} over ${version}: refused at the TLS layer`)
    }
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const outcome = await request({ port: server.port, ca: server.ca, minVersion: version, maxVersion: version, cert: good.certPem, key: good.keyPem }, body)
    t.equal(outcome.result, 'served 200', `a certificate from the right CA over ${version} is served`)
    t.match(JSON.parse(outcome.body), { response: { uid: 'mtls', allowed: true, patchType: 'JSONPatch' } })
  }

  // kubelet probes present no certificate: they use the plain metrics port.
  t.equal((await plainGet(server.metricsPort, '/healthz')).status, 200, '/healthz on the metrics port needs no certificate')
  t.equal((await plainGet(server.metricsPort, '/readyz')).status, 200, '/readyz on the metrics port needs no certificate')
  t.match(server.log(), /"clientCertificates":true/, 'the start-up line says client certificates are required')
  // Each refusal is counted with its cause, and a refused certificate is a warning naming it.
  const metrics = (await plainGet(server.metricsPort, '/metrics')).body
  t.match(metrics, /nlb_guard_tls_handshake_failures_total\{reason="ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"\} 2/, 'no certificate: both attempts counted')
  t.match(metrics, /nlb_guard_tls_handshake_failures_total\{reason="UNABLE_TO_VERIFY_LEAF_SIGNATURE"\} 2/, 'another CA: both attempts counted')
  t.match(metrics, /nlb_guard_tls_handshake_failures_total\{reason="INVALID_PURPOSE"\} 2/, 'serverAuth only: both attempts counted')
  t.match(metrics, /nlb_guard_tls_handshake_failures_total\{reason="CERT_HAS_EXPIRED"\} 2/, 'expired: both attempts counted')
  const refusals = server.log().split('\n').filter((line) => line.includes('"msg":"client certificate refused"')).map((line) => (JSON.parse(line) as { reason: string }).reason)
  t.same(refusals, ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'INVALID_PURPOSE', 'CERT_HAS_EXPIRED'], 'one warning per cause, the repeat over the other TLS version held back')
  const admissions = server.log().split('\n').filter((line) => line.includes('"msg":"admission"'))
  t.equal(admissions.length, 2, 'only the two certified requests reached the admission handler')
  t.equal(await server.stop(), 0)
})
