import t from 'tap'
import { caBundlePatch, injectCaBundle } from '../../certs/inject.js'
import { ConflictError } from '../../certs/errors.js'
import { FakeCertCluster } from '../fixtures/cert-cluster.js'

const BUNDLE = Buffer.from('-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n').toString('base64')
const OLD = Buffer.from('old').toString('base64')

t.test('caBundlePatch: only webhooks that differ, each guarded by a test of its name', async (t) => {
  const configuration = {
    metadata: { name: 'nlb-guard' },
    webhooks: [
      { name: 'a.nlb-guard.io', clientConfig: { caBundle: BUNDLE } },
      { name: 'b.nlb-guard.io', clientConfig: { caBundle: OLD } },
      { name: 'c.nlb-guard.io', clientConfig: {} },
    ],
  }
  t.strictSame(caBundlePatch(configuration, BUNDLE), [
    { op: 'test', path: '/webhooks/1/name', value: 'b.nlb-guard.io' },
    { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: BUNDLE },
    { op: 'test', path: '/webhooks/2/name', value: 'c.nlb-guard.io' },
    { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: BUNDLE },
  ])
  t.strictSame(caBundlePatch({ metadata: { name: 'x' }, webhooks: [{ name: 'a', clientConfig: { caBundle: BUNDLE } }] }, BUNDLE), [], 'nothing to do')
  t.strictSame(caBundlePatch({ metadata: { name: 'x' } }, BUNDLE), [], 'no webhooks')
})

t.test('injectCaBundle reports what it found and changed', async (t) => {
  const cluster = new FakeCertCluster()
  cluster.addConfiguration('mutating', 'nlb-guard', ['services.nlb-guard.io', 'pods.nlb-guard.io'], OLD)
  cluster.addConfiguration('mutating', 'other', ['other.example.com'], OLD)
  t.strictSame(await injectCaBundle(cluster.webhookClient(), 'nlb-guard', BUNDLE), [
    { kind: 'mutating', found: true, webhooks: ['services.nlb-guard.io', 'pods.nlb-guard.io'], changed: ['services.nlb-guard.io', 'pods.nlb-guard.io'] },
    { kind: 'validating', found: false },
  ])
  t.strictSame(cluster.caBundles('mutating', 'nlb-guard'), [BUNDLE, BUNDLE])
  t.strictSame(cluster.caBundles('mutating', 'other'), [OLD], 'another name is not touched')
  t.equal(cluster.counts.patches, 1, 'one patch for the configuration')
})

t.test('a webhook list reordered between read and patch fails the test op; the retry writes the right webhooks', async (t) => {
  const cluster = new FakeCertCluster()
  cluster.addConfiguration('validating', 'nlb-guard', ['first', 'second'], OLD)
  cluster.setCaBundle('validating', 'nlb-guard', 0, BUNDLE)
  let reorders = 1
  cluster.beforeWrite = () => {
    if (reorders-- <= 0) return
    // `kubectl apply` of a new manifest version lands in between: same webhooks, other order.
    const stored = cluster.configurations.get('validating/nlb-guard')
    stored?.webhooks.reverse()
  }
  const [, validating] = await injectCaBundle(cluster.webhookClient(), 'nlb-guard', BUNDLE)
  t.match(validating, { found: true, changed: ['second'] })
  t.equal(cluster.counts.conflicts, 1)
  t.strictSame(cluster.caBundles('validating', 'nlb-guard'), [BUNDLE, BUNDLE])
})

t.test('a configuration that keeps changing gives up with the conflict', async (t) => {
  const cluster = new FakeCertCluster()
  cluster.addConfiguration('mutating', 'nlb-guard', ['a', 'b'])
  cluster.beforeWrite = () => cluster.configurations.get('mutating/nlb-guard')?.webhooks.reverse()
  await t.rejects(injectCaBundle(cluster.webhookClient(), 'nlb-guard', BUNDLE), ConflictError)
})
