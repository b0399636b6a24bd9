import forge from 'node-forge'
import t from 'tap'
import { CertificateError } from '../../certs/errors.js'
import { issueCA, issueServingCertificate } from '../../certs/issue.js'
import type { RotationCheck } from '../../certs/rotation.js'
import { certificateInfo, needsRotation } from '../../certs/rotation.js'

const ISSUED = new Date('2025-03-01T12:00:00.000Z')
const HOUR_MS = 3600_000
const DAY_MS = 24 * HOUR_MS
const at = (offsetMs: number): Date => new Date(ISSUED.getTime() + offsetMs)

const ca = issueCA({ commonName: 'rotation CA', now: ISSUED })
// Same subject, different key: what a rotated CA of ours looks like.
const otherCa = issueCA({ commonName: 'rotation CA', now: ISSUED })
const dnsNames = ['webhook', 'webhook.system', 'webhook.system.svc', 'webhook.system.svc.cluster.local']
const ipAddresses = ['10.0.0.7', '2001:db8::7']
const serving = issueServingCertificate({ ca, dnsNames, ipAddresses, now: ISSUED })

const healthy: RotationCheck = { now: at(DAY_MS), lookaheadMs: 30 * DAY_MS, dnsNames, ipAddresses, caPem: ca.certPem }

t.test('needsRotation', async (t) => {
  const cases: { name: string; certPem?: string; check: Partial<RotationCheck>; want: false | RegExp }[] = [
    { name: 'valid', check: {}, want: false },
    { name: 'valid within the backdated hour', check: { now: at(-HOUR_MS / 2) }, want: false },
    { name: 'valid just outside the lookahead', check: { now: at(335 * DAY_MS - 1000) }, want: false },
    { name: 'a subset of the names is enough', check: { dnsNames: ['webhook.system.svc'], ipAddresses: [] }, want: false },
    { name: 'IPv6 in another spelling', check: { ipAddresses: ['2001:DB8:0:0:0:0:0:7'] }, want: false },
    { name: 'not yet valid', check: { now: at(-2 * HOUR_MS) }, want: /^not valid until 2025-03-01T11:00:00.000Z$/ },
    { name: 'expired', check: { now: at(366 * DAY_MS) }, want: /^expired at 2026-03-01T12:00:00.000Z$/ },
    { name: 'inside the lookahead window', check: { now: at(340 * DAY_MS) }, want: /^expires at 2026-03-01T12:00:00.000Z, within the rotation window$/ },
    { name: 'a DNS name missing', check: { dnsNames: [...dnsNames, 'webhook.other.svc'] }, want: /^DNS name webhook.other.svc is missing$/ },
    { name: 'an IP missing', check: { ipAddresses: ['10.0.0.8'] }, want: /^IP address 10.0.0.8 is missing$/ },
    { name: 'signed by another CA', check: { caPem: otherCa.certPem }, want: /^not signed by the CA "CN=rotation CA"/ },
    { name: 'leaf given as the CA', check: { caPem: serving.certPem }, want: /^not signed by the CA/ },
    { name: 'unparseable certificate', certPem: 'garbage', check: {}, want: /^certificate cannot be parsed/ },
    { name: 'unparseable CA', check: { caPem: '' }, want: /^CA certificate cannot be parsed/ },
  ]
  for (const c of cases) {
    const decision = needsRotation(c.certPem ?? serving.certPem, { ...healthy, ...c.check })
    if (c.want === false) t.strictSame(decision, { rotate: false }, c.name)
    else t.match(decision, { rotate: true, reason: c.want }, c.name)
  }
})

t.test('certificateInfo', async (t) => {
  const info = certificateInfo(serving.certPem)
  t.match(info.serialNumber, /^[0-9A-F]{32}$/)
  t.equal(info.notBefore.toISOString(), '2025-03-01T11:00:00.000Z')
  t.equal(info.notAfter.toISOString(), '2026-03-01T12:00:00.000Z')
  t.strictSame(info.dnsNames, dnsNames)
  t.strictSame(info.ipAddresses, ipAddresses, 'IPv6 in RFC 5952 form')

  t.strictSame(certificateInfo(ca.certPem).dnsNames, [], 'no SANs on the CA')
  t.equal(certificateInfo(`${serving.certPem}${ca.certPem}`).serialNumber, info.serialNumber, 'first of a bundle')
  t.throws(() => certificateInfo('not a certificate'), CertificateError)
})

t.test('certificateInfo reads SANs Node prints quoted', async (t) => {
  // Node writes a SAN holding ", " or a quote as a JSON string (CVE-2021-44532); forge lets us make one.
  const keys = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 })
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '01'
  cert.validity.notBefore = ISSUED
  cert.validity.notAfter = at(DAY_MS)
  cert.setSubject([{ name: 'commonName', value: 'odd' }])
  cert.setIssuer([{ name: 'commonName', value: 'odd' }])
  cert.setExtensions([
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'a, DNS:b' }, { type: 2, value: 'c"d' }, { type: 2, value: 'plain.example' }] },
  ])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  t.strictSame(certificateInfo(forge.pki.certificateToPem(cert)).dnsNames, ['a, DNS:b', 'c"d', 'plain.example'])
})
