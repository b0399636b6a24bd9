import { readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { parseArgs } from 'node:util'

/*
 * The benchmark's parsing floor: the least a Node webhook can do per request and still answer the
 * review it was sent. Same Node binary, TLS and keep-alive settings as nlb-guard's server
 * (webhook/server/app.ts; the cipher list comes in as --ciphers); it reads the whole body,
 * JSON.parses it and answers an allowed AdmissionReview echoing the request's uid. The floor beside
 * it (bench/floor.ts) does not parse: what TLS and HTTP alone cost, which no webhook can reach.
 * Usage: node bench/parsing-floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST
 *
 * No type annotations here: bench/run.ts runs a copy of this file as plain JavaScript (.mjs).
 */

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, ciphers: { type: 'string' } },
})
if (values.port === undefined || values['tls-cert'] === undefined || values['tls-key'] === undefined || values.ciphers === undefined) {
  process.stderr.write('usage: node bench/parsing-floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST\n')
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
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk) => (body += chunk))
    request.on('end', () => {
      let answer
      try {
        const review = JSON.parse(body)
        answer = JSON.stringify({ apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } })
      } catch {
        response.writeHead(400, { 'content-type': 'application/json; charset=utf-8' })
        response.end('{"code":400,"message":"not an AdmissionReview"}')
        return
      }
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) })
      response.end(answer)
    })
  },
)
server.keepAliveTimeout = 120_000
server.listen(Number(values.port), '127.0.0.1')
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeIdleConnections()
})
