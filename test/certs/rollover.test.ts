import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { issueCA, issueServingCertificate, serviceDnsNames } from '../../certs/issue.js'
import type { CertificateState, PlanOptions } from '../../certs/rollover.js'
import { caBundleOf, planCertificates, secretDataFromState, stateFromSecretData } from '../../certs/rollover.js'

const DAY_MS = 24 * 3600_000
const START = new Date('2026-01-10T08:00:00.000Z')
const dnsNames = serviceDnsNames('nlb-guard', 'nlb-guard-system')
const options = (overrides: Partial<PlanOptions> = {}): PlanOptions => ({
  now: START,
  dnsNames,
  servingLookaheadMs: 30 * DAY_MS,
  caLookaheadMs: 365 * DAY_MS,
  propagationMs: 60_000,
  confirmedBundle: undefined,
  caCommonName: 'rollover test CA',
  ...overrides,
})

const ca = issueCA({ commonName: 'rollover test CA', now: START })
const serving = issueServingCertificate({ ca, dnsNames, ipAddresses: [], now: START })
const healthy: CertificateState = { caCertPem: ca.certPem, caKeyPem: ca.keyPem, certPem: serving.certPem, keyPem: serving.keyPem }
const signs = (caPem: string, certPem: string) => new X509Certificate(certPem).verify(new X509Certificate(caPem).publicKey)

t.test('planCertificates', async (t) => {
  t.strictSame(planCertificates(healthy, options()).steps, [], 'a healthy state is left alone')
  t.match(planCertificates(undefined, options()).steps, [{ kind: 'created', reason: 'no Secret yet' }])
  t.match(planCertificates({ ...healthy, caCertPem: 'junk' }, options()).steps, [{ kind: 'created', reason: /CA certificate cannot be parsed/ }])
  t.match(planCertificates(healthy, options({ now: new Date(START.getTime() + 3651 * DAY_MS) })).steps, [{ kind: 'created', reason: /CA expired/ }])

  const badServingKey = planCertificates({ ...healthy, keyPem: issueCA({ commonName: 'x', now: START }).keyPem }, options())
  t.match(badServingKey.steps, [{ kind: 'serving-rotated', reason: 'the private key does not belong to the certificate' }])
  t.ok(signs(ca.certPem, badServingKey.state.certPem), 'reissued by the same CA')

  const lostCaKey = planCertificates({ ...healthy, caKeyPem: '' }, options())
  t.match(lostCaKey.steps, [{ kind: 'ca-rollover-started', reason: 'the private key cannot be parsed' }])
  t.equal(lostCaKey.state.previousCaPem, ca.certPem, 'the CA of the served certificate stays in the bundle')
  t.equal(lostCaKey.state.certPem, serving.certPem, 'and that certificate stays served until the new CA is injected')

  const next = issueCA({ commonName: 'rollover test CA', now: START })
  const midRollover: CertificateState = { ...healthy, caCertPem: next.certPem, caKeyPem: next.keyPem, previousCaPem: ca.certPem }
  const late = options({ now: new Date(START.getTime() + 3400 * DAY_MS), caLookaheadMs: 3500 * DAY_MS })
  const kinds = planCertificates(midRollover, late).steps.map((step) => step.kind)
  t.notOk(kinds.includes('ca-rollover-started'), `no second rollover while one is under way (${kinds.join(', ')})`)
})

t.test('the Secret data round trip keeps keys that are not ours', async (t) => {
  const data = secretDataFromState({ ...healthy, previousCaPem: ca.certPem }, { 'extra.txt': 'aGk=' })
  t.strictSame(Object.keys(data).sort(), ['ca-previous.crt', 'ca.crt', 'ca.key', 'extra.txt', 'tls.crt', 'tls.key'])
  t.strictSame(stateFromSecretData(data), { ...healthy, previousCaPem: ca.certPem })
  t.notOk('ca-previous.crt' in secretDataFromState(healthy, data), 'ca-previous.crt is removed when the rollover ends')
  const bundle = Buffer.from(caBundleOf({ ...healthy, previousCaPem: ca.certPem }), 'base64').toString('utf8')
  t.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2)
  t.notMatch(bundle, /\r/, 'PEM with plain newlines, as OpenSSL writes it')
})
