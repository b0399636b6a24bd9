import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { Agent } from 'node:https'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { BODY_LIMIT } from '../../webhook/server/app.js'
import { freePort, ROOT, spawnCli, waitFor } from '../fixtures/cli.js'
import { httpsRequest } from '../fixtures/https.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { plainGet, serve } from '../fixtures/serve.js'
import { postRequest, RawConnection } from '../hostile/fixtures/raw-client.js'

t.setTimeout(120_000)

async function seedService(file: string, index = 0): Promise<unknown> {
  const docs = parseAllDocuments(await readFile(join(ROOT, 'test/fixtures/seeds', file), 'utf8'))
  if (!Array.isArray(docs)) throw new Error('no documents')
  return docs[index]?.toJS()
}

t.test('nlb-guard serve over real TLS', async (t) => {
  const { port, metricsPort, ca, child, log } = await serve(t)

  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const post = (body: unknown, path = '/mutate') =>
    httpsRequest({ port, path, ca, agent, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) })

  t.test('seed 000: the Service its author fixed by hand needs nothing', async (t) => {
    const res = await post(reviewFor(await seedService('000-udp-eks.yaml'), { uid: 'seed-000' }))
    t.equal(res.status, 200)
    t.same(JSON.parse(res.body).response, { uid: 'seed-000', allowed: true })
  })

  t.test('seed 001 echo-udp: the nlb annotation is added by JSON Patch', async (t) => {
    const res = await post(reviewFor(await seedService('001-echo-split.yaml', 0), { uid: 'seed-001' }))
    const { response } = JSON.parse(res.body)
    t.equal(response.uid, 'seed-001')
    t.equal(response.patchType, 'JSONPatch')
    t.same(JSON.parse(Buffer.from(response.patch, 'base64').toString()), [
      { op: 'add', path: '/metadata/annotations', value: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' } },
    ])
    t.match(response.warnings.join('\n'), /Classic ELB cannot carry UDP/)
  })

  t.test('v1beta1 reviews are answered in v1beta1', async (t) => {
    const res = await post(reviewFor(serviceObject(), { apiVersion: 'admission.k8s.io/v1beta1', uid: 'beta' }))
    t.match(JSON.parse(res.body), { apiVersion: 'admission.k8s.io/v1beta1', response: { uid: 'beta', allowed: true, patchType: 'JSONPatch' } })
  })

  t.test('malformed input gets its documented answer, and the server keeps serving', async (t) => {
    const cases: Array<[string, () => Promise<{ status: number; body: string }>, number, RegExp]> = [
      ['not JSON', () => post('{nope'), 400, /not valid JSON/],
      ['wrong content type', () => httpsRequest({ port, path: '/mutate', ca, agent, body: 'kind: AdmissionReview', contentType: 'application/yaml' }), 415, /unsupported content-type/],
      ['over the limit', () => post(Buffer.alloc(BODY_LIMIT + 10, 0x20)), 413, /too large/],
      ['wrong kind', () => post({ apiVersion: 'admission.k8s.io/v1', kind: 'Service' }), 400, /kind/],
      ['no uid', () => post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Service' }, operation: 'CREATE' } }), 400, /request\.uid/],
      ['unknown path', () => post(reviewFor(serviceObject()), '/nope'), 404, /not found/i],
    ]
    for (const [name, send, status, message] of cases) {
      const res = await send()
      t.equal(res.status, status, `${name}: status ${status}`)
      t.match(res.body, message, `${name}: says why`)
    }
    const res = await post(reviewFor(serviceObject(), { uid: 'after' }))
    t.match(JSON.parse(res.body).response, { uid: 'after', allowed: true, patchType: 'JSONPatch' }, 'a valid review still succeeds')
  })

  t.test('a body over the limit with a declared length: the 413 always arrives, and the connection stays usable', async (t) => {
    // The server reads and discards the declared remainder instead of closing under the client's
    // writes, whose reset could destroy the answer (the fresh-machine `write EPIPE`).
    const connection = await RawConnection.open({ host: '127.0.0.1', port, ca, servername: 'localhost' })
    t.teardown(() => connection.close())
    for (let i = 0; i < 3; i++) {
      const over = await connection.send(...postRequest('/mutate', Buffer.alloc(BODY_LIMIT + 1 + i, 0x20)))
      t.equal(over.status, 413, `attempt ${i + 1}: 413`)
      t.match(over.body.toString(), /too large/)
    }
    const after = await connection.send(...postRequest('/mutate', Buffer.from(JSON.stringify(reviewFor(serviceObject(), { uid: 'same-connection' })))))
    t.match(JSON.parse(after.body.toString()).response, { uid: 'same-connection', allowed: true }, 'the next review on the same connection is answered')
  })

  t.test('TLS 1.0 and 1.1 handshakes are refused; TLS 1.2 and 1.3 work', async (t) => {
    const handshake = (version: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        // SECLEVEL=0 lets our client offer the old versions, so the refusal is the server's.
        const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' })
        socket.once('secureConnect', () => {
          resolve(`ok ${socket.getProtocol()}`)
          socket.destroy()
        })
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`))
      })
    t.match(await handshake('TLSv1.1'), /^error .*(PROTOCOL|VERSION)/)
    t.match(await handshake('TLSv1'), /^error .*(PROTOCOL|VERSION)/)
    t.equal(await handshake('TLSv1.2'), 'ok TLSv1.2')
    t.equal(await handshake('TLSv1.3'), 'ok TLSv1.3')
  })

  t.test('metrics on the plain port count what happened', async (t) => {
    const metrics = await plainGet(metricsPort, '/metrics')
    t.equal(metrics.status, 200)
    t.match(metrics.body, /nlb_guard_admission_requests_total\{webhook="mutate",kind="Service",operation="CREATE",result="patched"\} [1-9]/)
    t.match(metrics.body, /nlb_guard_bad_requests_total\{reason="FST_ERR_CTP_BODY_TOO_LARGE"\} 4/)
    t.match(metrics.body, /nlb_guard_admission_duration_seconds_bucket\{le="0.001",webhook="mutate",kind="Service"\}/)
    t.match(metrics.body, /nlb_guard_cluster_version_info\{version="1.30.0",source="override"\} 1/)
    t.match(metrics.body, /nlb_guard_certificate_not_after_timestamp_seconds \d+/)
    const version = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
    t.match(metrics.body, new RegExp(`^nlb_guard_build_info\\{version="${version.replace(/\./g, '\\.')}",node_version="${process.version}"\\} 1$`, 'm'), 'build_info: the package version and Node')
    t.match(metrics.body, /^nlb_guard_ready 1$/m, 'ready, as /readyz says')
    t.match(metrics.body, /^nlb_guard_service_cache_synced 1$/m, 'no cache needed without a cluster')
    // Node's standard metrics unprefixed, as stock dashboards expect.
    t.match(metrics.body, /^process_resident_memory_bytes \d+/m)
    t.match(metrics.body, /^nodejs_eventloop_lag_p99_seconds /m)
    t.notMatch(metrics.body, /nlb_guard_process_|nlb_guard_nodejs_/)
  })

  t.test('SIGTERM: not ready, then a clean exit', async (t) => {
    agent.destroy()
    child.kill('SIGTERM')
    // The exit is the event; with --shutdown-delay 0 nothing holds it (the file's timeout bounds the wait).
    const [code] = (await once(child, 'exit')) as [number | null]
    t.equal(code, 0)
    t.match(log(), /"msg":"shutting down/)
    t.match(log(), /"msg":"closed"/, 'closed in order, not killed')
    t.notMatch(log(), /PRIVATE KEY|BEGIN CERTIFICATE/, 'no key material in the logs')
  })
})

t.test('the embedded default: a self-signed certificate for localhost made at start', async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const child = spawnCli(['serve', '--kube-version', '1.30.0', '--port', String(port), '--metrics-port', String(metricsPort), '--address', '127.0.0.1', '--shutdown-delay', '0'])
  let log = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  await waitFor('the generated CA in the log', async () => /"caFile":"[^"]+"/.test(log))
  const caFile = /"caFile":"([^"]+)"/.exec(log)?.[1] ?? ''
  const ca = await readFile(caFile)
  await waitFor('readiness', async () => (await plainGet(metricsPort, '/readyz')).status === 200)
  for (const host of ['127.0.0.1', 'localhost']) {
    const res = await httpsRequest({ host, port, path: '/mutate', ca, body: JSON.stringify(reviewFor(serviceObject())) })
    t.equal(JSON.parse(res.body).response.patchType, 'JSONPatch', `trusted and answered via ${host}`)
  }
  child.kill('SIGTERM')
  await once(child, 'exit')
})
