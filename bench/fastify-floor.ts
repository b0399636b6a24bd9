import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'

/*
 * fastify's own floor: what nlb-guard's web framework costs before any rule runs. Same Node, TLS
 * options (the cipher list comes in as --ciphers), timeouts and body limit as nlb-guard's server
 * (webhook/server/app.ts), no logger; it parses the JSON body, as nlb-guard must, and answers an allowed AdmissionReview echoing the uid.
 * nlb-guard ÷ this is the share of time our own work (rules, zod, logs, metrics) leaves.
 * Usage: node bench/fastify-floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST
 *
 * No type annotations: bench/run.ts runs a copy of it as plain JavaScript (.mjs) beside node_modules.
 */

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, ciphers: { type: 'string' } },
})
if (values.port === undefined || values['tls-cert'] === undefined || values['tls-key'] === undefined || values.ciphers === undefined) {
  process.stderr.write('usage: node bench/fastify-floor.ts --port P --tls-cert FILE --tls-key FILE --ciphers LIST\n')
  process.exit(2)
}

const app = Fastify({
  https: {
    cert: readFileSync(values['tls-cert']),
    key: readFileSync(values['tls-key']),
    minVersion: 'TLSv1.2',
    ciphers: values.ciphers,
    honorCipherOrder: true,
    requestTimeout: 10_000,
    connectionsCheckingInterval: 1_000,
  },
  bodyLimit: 7 * 1024 * 1024,
  keepAliveTimeout: 120_000,
  requestTimeout: 10_000,
  logger: false,
  return503OnClosing: false,
})
app.post('/mutate', async (request) => {
  // Object(): any, since this file carries no type annotations (see above).
  const review = Object(request.body)
  return { apiVersion: review.apiVersion, kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } }
})
await app.listen({ port: Number(values.port), host: '127.0.0.1' })
process.on('SIGTERM', () => {
  app.close().then(() => process.exit(0))
})
