import { X509Certificate } from 'node:crypto'
import t, { type Test } from 'tap'
import type { BootstrapOptions } from '../../certs/bootstrap.js'
import { CertificateBootstrap } from '../../certs/bootstrap.js'
import { pemCertificates } from '../../certs/bundle.js'
import type { WebhookKind } from '../../certs/cluster.js'
import type { CertificateAndKey } from '../../certs/issue.js'
import { serviceDnsNames } from '../../certs/issue.js'
import { createMetrics } from '../../webhook/server/metrics.js'
import { FakeCertCluster } from '../fixtures/cert-cluster.js'

const DAY_MS = 24 * 3600_000
const START = new Date('2026-01-10T08:00:00.000Z')
const NAMESPACE = 'nlb-guard-system'
const SECRET = 'nlb-guard-tls'
const NAME = 'nlb-guard'
const PROPAGATION_MS = 60_000

interface Replica {
  readonly bootstrap: CertificateBootstrap
  readonly metrics: ReturnType<typeof createMetrics>
  readonly logs: { level: string; message: string; fields: object }[]
  /** Every pair handed to `serve`, newest last. */
  readonly served: CertificateAndKey[]
}

function clockAt(start: Date): { now: () => Date; advance(ms: number): void } {
  let time = start.getTime()
  return { now: () => new Date(time), advance: (ms) => (time += ms) }
}

function replica(cluster: FakeCertCluster, now: () => Date, overrides: Partial<BootstrapOptions> = {}): Replica {
  const metrics = createMetrics({ defaultMetrics: false })
  const logs: Replica['logs'] = []
  const served: CertificateAndKey[] = []
  const logAt = (level: string) => (fields: object, message: string) => void logs.push({ level, message, fields })
  const bootstrap = new CertificateBootstrap({
    secrets: cluster.secretClient(),
    webhookConfigurations: cluster.webhookClient(),
    namespace: NAMESPACE,
    secretName: SECRET,
    webhookConfigurationName: NAME,
    dnsNames: serviceDnsNames('nlb-guard', NAMESPACE),
    caCommonName: 'nlb-guard test CA',
    now,
    servingLookaheadMs: 30 * DAY_MS,
    caLookaheadMs: 365 * DAY_MS,
    propagationMs: PROPAGATION_MS,
    syncMs: 15_000,
    serve: (pair) => void served.push(pair),
    metrics,
    log: { info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    ...overrides,
  })
  return { bootstrap, metrics, logs, served }
}

function withConfigurations(): FakeCertCluster {
  const cluster = new FakeCertCluster()
  cluster.addConfiguration('mutating', NAME, ['services.nlb-guard.io', 'pods.nlb-guard.io'])
  cluster.addConfiguration('validating', NAME, ['services.validate.nlb-guard.io'])
  return cluster
}

function secretPem(cluster: FakeCertCluster, key: string): string {
  return Buffer.from(cluster.secretData(NAMESPACE, SECRET)?.[key] ?? '', 'base64').toString('utf8')
}

/** The CA certificates in caBundle of every webhook of a configuration (they must all agree). */
function injectedCAs(t: Test, cluster: FakeCertCluster, kind: WebhookKind): X509Certificate[] {
  const bundles = new Set(cluster.caBundles(kind, NAME))
  t.equal(bundles.size, 1, `every ${kind} webhook holds the same caBundle`)
  const [bundle] = bundles
  if (bundle === undefined) return []
  return pemCertificates(Buffer.from(bundle, 'base64').toString('utf8')).map((pem) => new X509Certificate(pem))
}

/** Whether the apiserver, trusting caBundle, would accept this serving certificate. */
function trustedBy(certPem: string, cas: readonly X509Certificate[]): boolean {
  const cert = new X509Certificate(certPem)
  return cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
}

const last = <T>(items: readonly T[]): T | undefined => items.at(-1)

async function counter(metrics: Replica['metrics'], name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name)
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
  return Number(value?.value ?? 0)
}

t.test('two replicas starting together create one Secret and serve certificates of one CA', async (t) => {
  const cluster = withConfigurations()
  const clock = clockAt(START)
  const [a, b] = [replica(cluster, clock.now), replica(cluster, clock.now)]
  cluster.holdReads(2)
  await Promise.all([a.bootstrap.sync(), b.bootstrap.sync()])

  t.equal(cluster.secrets.size, 1, 'one Secret')
  t.equal(cluster.counts.secretCreates, 1, 'one create succeeded')
  t.equal(cluster.counts.conflicts, 1, 'the other got 409 AlreadyExists and read the winner back')
  const ca = new X509Certificate(secretPem(cluster, 'ca.crt'))
  for (const [name, r] of [['a', a], ['b', b]] as const) {
    const pair = last(r.served)
    t.ok(pair !== undefined && trustedBy(pair.certPem, [ca]), `replica ${name} serves a certificate of the Secret's CA`)
    t.equal(pair?.certPem, secretPem(cluster, 'tls.crt'), `replica ${name} serves the Secret's certificate`)
    t.equal(r.bootstrap.notReadyReason(), null, `replica ${name} is ready`)
  }
  t.ok([...a.logs, ...b.logs].some((line) => /written by another replica first/.test(line.message)), 'the loser says so')
  t.strictSame(Object.keys(cluster.secretData(NAMESPACE, SECRET) ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
  t.equal(cluster.secrets.get(`${NAMESPACE}/${SECRET}`)?.type, 'kubernetes.io/tls')
})

t.test('caBundle goes into both of our configurations and no other', async (t) => {
  const cluster = withConfigurations()
  const otherBundle = Buffer.from('someone else').toString('base64')
  cluster.addConfiguration('mutating', 'istio-sidecar-injector', ['sidecar.istio.io'], otherBundle)
  cluster.addConfiguration('validating', 'other', ['validate.example.com'])
  const a = replica(cluster, clockAt(START).now)
  await a.bootstrap.sync()

  const ca = new X509Certificate(secretPem(cluster, 'ca.crt'))
  for (const kind of ['mutating', 'validating'] as const) {
    const cas = injectedCAs(t, cluster, kind)
    t.strictSame(cas.map((c) => c.fingerprint256), [ca.fingerprint256], `${kind}: the Secret's CA`)
    t.equal(await counter(a.metrics, 'nlb_guard_ca_bundle_injections_total', { configuration: kind }), 1)
  }
  t.strictSame(cluster.caBundles('mutating', 'istio-sidecar-injector'), [otherBundle], 'a configuration of another name is untouched')
  t.strictSame(cluster.caBundles('validating', 'other'), [undefined], 'a configuration of another name is untouched')
  t.equal(a.logs.filter((line) => line.message === 'caBundle injected').length, 2, 'one line per configuration')

  const patches = cluster.counts.patches
  await a.bootstrap.sync()
  t.equal(cluster.counts.patches, patches, 'nothing is patched when caBundle already matches')
})

t.test('a caBundle changed by hand is put back on the next sync, logged and counted', async (t) => {
  const cluster = withConfigurations()
  const a = replica(cluster, clockAt(START).now)
  await a.bootstrap.sync()
  const good = cluster.caBundles('mutating', NAME)[1]
  cluster.setCaBundle('mutating', NAME, 1, Buffer.from('-----BEGIN CERTIFICATE-----\nwrong\n-----END CERTIFICATE-----\n').toString('base64'))

  await a.bootstrap.sync()
  t.strictSame(cluster.caBundles('mutating', NAME), [good, good], 'repaired')
  t.equal(await counter(a.metrics, 'nlb_guard_ca_bundle_drift_repairs_total', { configuration: 'mutating' }), 1)
  t.equal(await counter(a.metrics, 'nlb_guard_ca_bundle_drift_repairs_total', { configuration: 'validating' }), 0)
  t.match(a.logs.find((line) => /drift repaired/.test(line.message)), { level: 'warn', fields: { webhooks: ['pods.nlb-guard.io'] } })
})

t.test('the serving certificate is reissued inside the lookahead, and other replicas pick it up', async (t) => {
  const cluster = withConfigurations()
  const clock = clockAt(START)
  const [a, b] = [replica(cluster, clock.now), replica(cluster, clock.now)]
  await a.bootstrap.sync()
  await b.bootstrap.sync()
  const first = new X509Certificate(secretPem(cluster, 'tls.crt'))

  clock.advance(300 * DAY_MS)
  await a.bootstrap.sync()
  t.equal(new X509Certificate(secretPem(cluster, 'tls.crt')).serialNumber, first.serialNumber, 'outside the 30-day lookahead: kept')

  clock.advance(40 * DAY_MS)
  await a.bootstrap.sync()
  const second = new X509Certificate(secretPem(cluster, 'tls.crt'))
  t.not(second.serialNumber, first.serialNumber, '25 days before expiry: a new serving certificate')
  t.ok(second.validToDate.getTime() > clock.now().getTime() + 300 * DAY_MS, 'valid for another year')
  t.equal(last(a.served)?.certPem, secretPem(cluster, 'tls.crt'), 'replica a serves it')
  t.equal(await counter(a.metrics, 'nlb_guard_certificate_rotations_total', { certificate: 'serving' }), 1)
  t.match(a.logs.find((line) => line.message === 'serving certificate rotated'), { fields: { reason: /within the rotation window/ } })

  await b.bootstrap.sync()
  t.equal(last(b.served)?.certPem, secretPem(cluster, 'tls.crt'), 'replica b swaps to the certificate a rotated')
  t.equal(await counter(b.metrics, 'nlb_guard_certificate_rotations_total', { certificate: 'serving' }), 0, 'and does not rotate again')
})

t.test('a replace that loses a race reads the Secret again and re-plans', async (t) => {
  const cluster = withConfigurations()
  const clock = clockAt(START)
  const a = replica(cluster, clock.now)
  await a.bootstrap.sync()
  clock.advance(340 * DAY_MS)
  let raced = false
  cluster.beforeWrite = () => {
    if (raced) return
    raced = true
    cluster.touchSecret(NAMESPACE, SECRET)
  }
  await a.bootstrap.sync()
  t.equal(cluster.counts.conflicts, 1, 'the first replace was refused (stale resourceVersion)')
  t.equal(cluster.counts.secretReplaces, 1, 'the second one, on a fresh read, went through')
  t.equal(last(a.served)?.certPem, secretPem(cluster, 'tls.crt'))
})

t.test('CA rollover: the new CA joins caBundle first, the serving certificate switches, the old CA leaves', async (t) => {
  const cluster = withConfigurations()
  const clock = clockAt(START)
  // A 100-day CA rolled over 10 days before expiry; the serving certificate is capped at the CA's expiry.
  const options = { caValidityDays: 100, caLookaheadMs: 10 * DAY_MS, servingLookaheadMs: 5 * DAY_MS }
  const [a, b] = [replica(cluster, clock.now, options), replica(cluster, clock.now, options)]
  const syncBoth = async () => {
    await a.bootstrap.sync()
    await b.bootstrap.sync()
  }
  const servedAreTrusted = (what: string) => {
    for (const kind of ['mutating', 'validating'] as const) {
      const cas = injectedCAs(t, cluster, kind)
      for (const [name, r] of [['a', a], ['b', b]] as const) {
        t.ok(trustedBy(last(r.served)?.certPem ?? '', cas), `${what}: replica ${name}'s certificate is trusted by the ${kind} caBundle`)
      }
    }
  }
  await syncBoth()
  const oldCa = new X509Certificate(secretPem(cluster, 'ca.crt'))
  servedAreTrusted('before')

  clock.advance(91 * DAY_MS)
  await syncBoth()
  const newCa = new X509Certificate(secretPem(cluster, 'ca.crt'))
  t.not(newCa.fingerprint256, oldCa.fingerprint256, 'step 1: a new CA')
  t.equal(new X509Certificate(secretPem(cluster, 'ca-previous.crt')).fingerprint256, oldCa.fingerprint256, 'the old one is kept as ca-previous.crt')
  t.strictSame(
    injectedCAs(t, cluster, 'mutating').map((c) => c.fingerprint256),
    [newCa.fingerprint256, oldCa.fingerprint256],
    'caBundle holds both CAs',
  )
  t.ok(trustedBy(secretPem(cluster, 'tls.crt'), [oldCa]), 'the serving certificate is still the old CA\'s')
  t.equal(await counter(a.metrics, 'nlb_guard_certificate_rotations_total', { certificate: 'ca' }), 1)
  servedAreTrusted('step 1')

  clock.advance(PROPAGATION_MS / 2)
  await syncBoth()
  t.ok(trustedBy(secretPem(cluster, 'tls.crt'), [oldCa]), 'no switch before the propagation time')

  clock.advance(PROPAGATION_MS)
  await syncBoth()
  t.ok(trustedBy(secretPem(cluster, 'tls.crt'), [newCa]), 'step 2: the serving certificate is the new CA\'s')
  t.equal(injectedCAs(t, cluster, 'validating').length, 2, 'both CAs still in caBundle')
  servedAreTrusted('step 2')

  clock.advance(PROPAGATION_MS + 1000)
  await syncBoth()
  t.strictSame(injectedCAs(t, cluster, 'mutating').map((c) => c.fingerprint256), [newCa.fingerprint256], 'step 3: only the new CA')
  t.notOk(cluster.secretData(NAMESPACE, SECRET)?.['ca-previous.crt'], 'ca-previous.crt removed')
  servedAreTrusted('step 3')
  const messages = [...a.logs, ...b.logs].map((line) => line.message)
  t.ok(messages.some((m) => m.startsWith('CA rollover started')))
  t.ok(messages.some((m) => m.startsWith('CA rollover: serving certificate reissued')))
  t.ok(messages.some((m) => m.startsWith('CA rollover finished')))
})

t.test('the serving certificate does not switch CA before this replica has seen the new bundle injected', async (t) => {
  const cluster = withConfigurations()
  const clock = clockAt(START)
  const a = replica(cluster, clock.now, { caValidityDays: 100, caLookaheadMs: 10 * DAY_MS, servingLookaheadMs: 5 * DAY_MS })
  await a.bootstrap.sync()
  const oldCa = new X509Certificate(secretPem(cluster, 'ca.crt'))
  let patchesFail = true
  cluster.beforeWrite = (what) => {
    if (what === 'patch' && patchesFail) throw new Error('webhook configurations unavailable')
  }

  clock.advance(91 * DAY_MS)
  await t.rejects(a.bootstrap.sync(), /unavailable/)
  t.ok(cluster.secretData(NAMESPACE, SECRET)?.['ca-previous.crt'], 'step 1 is in the Secret')
  clock.advance(10 * PROPAGATION_MS)
  await t.rejects(a.bootstrap.sync(), /unavailable/)
  t.ok(trustedBy(secretPem(cluster, 'tls.crt'), [oldCa]), 'long after, but never injected: still the old CA\'s certificate')

  patchesFail = false
  await a.bootstrap.sync()
  t.ok(trustedBy(secretPem(cluster, 'tls.crt'), [oldCa]), 'injected during this sync: the switch waits for the next')
  await a.bootstrap.sync()
  t.notOk(trustedBy(secretPem(cluster, 'tls.crt'), [oldCa]), 'then it switches')
})

t.test('readiness stays false until the certificate is served and the CA injected', async (t) => {
  const cluster = new FakeCertCluster()
  const a = replica(cluster, clockAt(START).now)
  t.equal(a.bootstrap.notReadyReason(), 'not synced yet')
  await a.bootstrap.sync()
  t.equal(a.served.length, 1, 'the certificate is served')
  t.match(a.bootstrap.notReadyReason(), /no MutatingWebhookConfiguration or ValidatingWebhookConfiguration named nlb-guard/)

  cluster.addConfiguration('validating', NAME, ['services.validate.nlb-guard.io'])
  await a.bootstrap.sync()
  t.equal(a.bootstrap.notReadyReason(), null, 'ready once one of them holds the CA')

  const broken = replica(new FakeCertCluster(), clockAt(START).now, {
    secrets: { read: async () => Promise.reject(new Error('secrets "nlb-guard-tls" is forbidden')), create: async () => Promise.reject(new Error('x')), replace: async () => Promise.reject(new Error('x')) },
  })
  await t.rejects(broken.bootstrap.sync())
  t.match(broken.bootstrap.notReadyReason(), /forbidden/, 'the reason names the failure')
})

t.test('start() syncs in the background until stop()', async (t) => {
  const cluster = withConfigurations()
  const a = replica(cluster, clockAt(START).now, { syncMs: 20 })
  a.bootstrap.start()
  const deadline = Date.now() + 10_000
  while (a.bootstrap.notReadyReason() !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(a.bootstrap.notReadyReason(), null)
  cluster.setCaBundle('validating', NAME, 0, 'd3Jvbmc=')
  while (cluster.caBundles('validating', NAME)[0] === 'd3Jvbmc=' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.not(cluster.caBundles('validating', NAME)[0], 'd3Jvbmc=', 'drift repaired by the loop')
  await a.bootstrap.stop()
  cluster.setCaBundle('validating', NAME, 0, 'd3Jvbmc=')
  // A witness replica on a cluster of its own, with the same sync period: once it has repaired a
  // drift made now, a loop of the stopped replica would have run too — an event, not a pause.
  const witnessCluster = withConfigurations()
  const witness = replica(witnessCluster, clockAt(START).now, { syncMs: 20 })
  witness.bootstrap.start()
  t.teardown(() => witness.bootstrap.stop())
  while (witness.bootstrap.notReadyReason() !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  witnessCluster.setCaBundle('validating', NAME, 0, 'd3Jvbmc=')
  while (witnessCluster.caBundles('validating', NAME)[0] === 'd3Jvbmc=' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.not(witnessCluster.caBundles('validating', NAME)[0], 'd3Jvbmc=', 'the witness repaired its drift')
  t.equal(cluster.caBundles('validating', NAME)[0], 'd3Jvbmc=', 'nothing runs after stop()')
})
