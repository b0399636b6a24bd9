import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { parseArgs } from 'node:util'

/*
 * The benchmark's floor: the least any Node webhook can do per request on this machine. Same Node
 * binary and the same TLS and keep-alive settings as nlb-guard's server (webhook/server/app.ts,
 * copied here because bench/ cannot load webhook/ sources); it reads the whole body, as any
 * webhook must, and answers a constant allowed AdmissionReview without parsing anything.
 * Usage: node bench/floor.ts --port P --tls-cert FILE --tls-key FILE
 *
 * No type annotations here: bench/run.ts runs a copy of this file as plain JavaScript (.mjs).
 */

const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

const ANSWER = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: '3c7a1c2e-0000-4000-8000-000000000001', allowed: true },
})

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } },
})
if (values.port === undefined || values['tls-cert'] === undefined || values['tls-key'] === undefined) {
  process.stderr.write('usage: node bench/floor.ts --port P --tls-cert FILE --tls-key FILE\n')
  process.exit(2)
}

const server = createServer(
  {
    cert: readFileSync(values['tls-cert']),
    key: readFileSync(values['tls-key']),
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
    requestTimeout: 10_000,
  },
  (request, response) => {
    request.on('data', () => {})
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(ANSWER) })
      response.end(ANSWER)
    })
  },
)
server.keepAliveTimeout = 120_000
server.listen(Number(values.port), '127.0.0.1')
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeIdleConnections()
})
