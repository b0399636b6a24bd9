import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { parseArgs } from 'node:util'

/*
 * The benchmark's floor: the least any Node webhook can do per request on this machine. Same Node
 * binary and the same TLS and keep-alive settings as nlb-guard's server (webhook/server/app.ts; its
 * cipher list comes in as --ciphers, from dist/webhook/server/ciphers.js); it reads the whole body,
 * as any webhook must, and answers a constant allowed AdmissionReview without parsing anything.
 * Usage: node bench/floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST
 *
 * No type annotations here: bench/run.ts runs a copy of this file as plain JavaScript (.mjs).
 */

const ANSWER = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: '3c7a1c2e-0000-4000-8000-000000000001', allowed: true },
})

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, ciphers: { type: 'string' } },
})
if (values.port === undefined || values['tls-cert'] === undefined || values['tls-key'] === undefined || values.ciphers === undefined) {
  process.stderr.write('usage: node bench/floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST\n')
  process.exit(2)
}

const server = createServer(
  {
    cert: readFileSync(values['tls-cert']),
    key: readFileSync(values['tls-key']),
    minVersion: 'TLSv1.2',
    ciphers: values.ciphers,
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
