import { once } from 'node:events'
import { get as httpGet } from 'node:http'
import { Agent, request } from 'node:https'
import { join } from 'node:path'
import type { SecureContextOptions, TLSSocket } from 'node:tls'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import type { CertificateAndKey } from '../../certs/issue.js'
import { issueCA, issueServingCertificate } from '../../certs/issue.js'
import { watchCertificateFiles } from '../../certs/reload.js'
import { certificateInfo } from '../../certs/rotation.js'
import { swapServingCertificate } from '../../webhook/server/certificates.js'
import { createMetrics } from '../../webhook/server/metrics.js'
import { freePort, spawnCli, waitFor } from '../fixtures/cli.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { secretVolume } from '../fixtures/secret-volume.js'

t.setTimeout(120_000)

const NOW = new Date()
const ca = issueCA({ commonName: 'reload test CA', now: NOW })
const issue = (): CertificateAndKey => issueServingCertificate({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now: NOW })
const files = (pair: CertificateAndKey) => ({ 'tls.crt': pair.certPem, 'tls.key': pair.keyPem })
const serial = (pair: CertificateAndKey) => certificateInfo(pair.certPem).serialNumber

t.test('watchCertificateFiles follows a kubelet-style ..data swap and refuses a mismatched pair', async (t) => {
  const [first, second, third] = [issue(), issue(), issue()]
  const volume = await secretVolume(join(t.testdir(), 'tls'), files(first))
  const contexts: SecureContextOptions[] = []
  const logs: { level: string; message: string; fields: object }[] = []
  const log = {
    info: (fields: object, message: string) => void logs.push({ level: 'info', message, fields }),
    warn: (fields: object, message: string) => void logs.push({ level: 'warn', message, fields }),
    error: (fields: object, message: string) => void logs.push({ level: 'error', message, fields }),
  }
  const metrics = createMetrics({ defaultMetrics: false })
  const target = { server: { setSecureContext: (options: SecureContextOptions) => void contexts.push(options) }, clientCa: undefined, metrics, log }
  const watch = watchCertificateFiles({
    certFile: join(volume.dir, 'tls.crt'),
    keyFile: join(volume.dir, 'tls.key'),
    initial: first,
    apply: (pair) => swapServingCertificate(target, pair, 'files'),
    log,
    debounceMs: 20,
    pollMs: 3_600_000,
  })
  t.teardown(() => watch.close())

  await volume.update(files(second))
  await waitFor('the second certificate', async () => contexts.length === 1, 5000)
  t.equal(contexts[0]?.cert, second.certPem, 'the new pair is put into service')
  t.match(logs.find((line) => line.message === 'serving certificate loaded'), { fields: { source: 'files', serialNumber: serial(second) } })

  await volume.update({ 'tls.crt': third.certPem, 'tls.key': second.keyPem })
  await waitFor('the refusal', async () => logs.some((line) => line.level === 'warn'), 5000)
  t.equal(contexts.length, 1, 'a certificate with the wrong key is not served')
  t.match(logs.find((line) => line.level === 'warn'), {
    message: 'the certificate files changed but cannot be used; keeping the current certificate',
    fields: { reason: /private key does not belong/ },
  })

  await watch.reload()
  t.equal(logs.filter((line) => line.level === 'warn').length, 1, 'the same refused pair is reported once')

  await volume.update(files(third))
  await waitFor('the third certificate', async () => contexts.length === 2, 5000)
  t.equal(contexts[1]?.cert, third.certPem, 'a good pair after a bad one is served')
  const reloads = (await metrics.registry.getSingleMetric('nlb_guard_certificate_reloads_total')?.get())?.values ?? []
  t.strictSame(
    reloads.map((v) => [v.labels['result'], v.value]).sort(),
    [['loaded', 2], ['rejected', 1]],
  )

  watch.close()
  // A second watcher, still open, on the same files: once it has seen the next swap, the closed one
  // would have too (same debounce) — an event to wait on instead of a pause.
  const witnessed: unknown[] = []
  const witness = watchCertificateFiles({
    certFile: join(volume.dir, 'tls.crt'),
    keyFile: join(volume.dir, 'tls.key'),
    initial: third,
    apply: (pair) => void witnessed.push(pair),
    log,
    debounceMs: 20,
    pollMs: 3_600_000,
  })
  t.teardown(() => witness.close())
  await volume.update(files(first))
  await waitFor('the open watcher to see the swap', async () => witnessed.length === 1, 5000)
  t.equal(contexts.length, 2, 'nothing happens after close()')
})

t.test('serve --tls-cert: a Secret volume update is served to new connections, open keep-alive ones keep working', async (t) => {
  const [before, after] = [issue(), issue()]
  const volume = await secretVolume(join(t.testdir(), 'tls'), files(before))
  const [port, metricsPort] = [await freePort(), await freePort()]
  const child = spawnCli([
    'serve',
    '--tls-cert', join(volume.dir, 'tls.crt'),
    '--tls-key', join(volume.dir, 'tls.key'),
    '--kube-version', '1.30.0',
    '--address', '127.0.0.1',
    '--port', String(port),
    '--metrics-port', String(metricsPort),
    '--shutdown-delay', '0',
  ])
  let log = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const plain = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port: metricsPort, path }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      }).on('error', reject)
    })
  await waitFor('readiness', async () => (await plain('/readyz')).status === 200)

  const newConnectionSerial = () =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' }, () => {
        resolve(socket.getPeerCertificate().serialNumber.toUpperCase())
        socket.end()
      })
      socket.once('error', reject)
    })
  t.equal(await newConnectionSerial(), serial(before))

  // The steady load: one request every 20 ms over one kept-alive connection, as the apiserver does.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const body = JSON.stringify(reviewFor(serviceObject()))
  const sockets = new Set<TLSSocket>()
  const outcomes: { ok: boolean; serial: string; at: number; error?: string }[] = []
  const send = () =>
    new Promise<void>((resolve) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca: ca.certPem, agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          const socket = res.socket as TLSSocket
          sockets.add(socket)
          res.resume()
          res.on('end', () => {
            outcomes.push({ ok: res.statusCode === 200, serial: socket.getPeerCertificate().serialNumber.toUpperCase(), at: Date.now() })
            resolve()
          })
        },
      )
      req.on('error', (error) => {
        outcomes.push({ ok: false, serial: '', at: Date.now(), error: error.message })
        resolve()
      })
      req.end(body)
    })
  let loading = true
  const load = (async () => {
    while (loading) {
      await send()
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()

  await waitFor('five requests on the keep-alive connection', async () => outcomes.length >= 5, 10_000)
  await volume.update(files(after))
  await waitFor('a new connection to see the new certificate', async () => (await newConnectionSerial()) === serial(after), 10_000)
  const swappedAt = Date.now()
  await waitFor('five more requests after the swap', async () => outcomes.filter((o) => o.at > swappedAt).length >= 5, 10_000)
  loading = false
  await load

  t.same(outcomes.filter((o) => !o.ok), [], 'no request failed')
  t.ok(outcomes.filter((o) => o.at > swappedAt).length >= 5, `requests kept flowing after the swap (${outcomes.length} in all)`)
  t.equal(sockets.size, 1, 'all over the one keep-alive connection')
  t.ok(outcomes.every((o) => o.serial === serial(before)), 'which still carries the certificate it was opened with')
  t.match(log, /"source":"files".*"msg":"serving certificate loaded"/)
  t.match((await plain('/metrics')).body, /nlb_guard_certificate_reloads_total\{source="files",result="loaded"\} 1/)
  const notAfter = Math.round(certificateInfo(after.certPem).notAfter.getTime() / 1000)
  t.match((await plain('/metrics')).body, new RegExp(`nlb_guard_certificate_not_after_timestamp_seconds ${notAfter}`))

  agent.destroy()
  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, 'the watcher does not hold the process open')
})
