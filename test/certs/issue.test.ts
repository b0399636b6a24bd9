import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, createServer } from 'node:tls'
import forge from 'node-forge'
import t from 'tap'
import { CertificateError, CertificateRequestError } from '../../certs/errors.js'
import type { CertificateAndKey } from '../../certs/issue.js'
import { issueCA, issueServingCertificate, selfSignedForLocalhost, serviceDnsNames } from '../../certs/issue.js'

const NOW = new Date('2025-03-01T12:00:00.000Z')
const HOUR_MS = 3600_000
const DAY_MS = 24 * HOUR_MS
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'

const ca = issueCA({ commonName: 'test CA', now: NOW })
const serviceNames = serviceDnsNames('nlb-guard', 'nlb-guard-system')
const serving = issueServingCertificate({
  ca,
  dnsNames: [...serviceNames, 'webhook.example.com'],
  ipAddresses: ['10.0.0.7', '2001:db8::7'],
  now: NOW,
})

// Node's X509Certificate does not expose keyUsage or basicConstraints' criticality; forge parses them.
function extension(pem: string, name: string): Record<string, unknown> {
  const found: unknown = forge.pki.certificateFromPem(pem).getExtension(name)
  if (typeof found !== 'object' || found === null) throw new Error(`no ${name} extension`)
  return found as Record<string, unknown>
}

t.test('serviceDnsNames', async (t) => {
  const cases: { args: Parameters<typeof serviceDnsNames>; want: string[] }[] = [
    {
      args: ['webhook', 'system'],
      want: ['webhook', 'webhook.system', 'webhook.system.svc', 'webhook.system.svc.cluster.local'],
    },
    { args: ['webhook', 'system', 'corp.internal'], want: ['webhook', 'webhook.system', 'webhook.system.svc', 'webhook.system.svc.corp.internal'] },
    { args: ['webhook', 'system', 'corp.internal.'], want: ['webhook', 'webhook.system', 'webhook.system.svc', 'webhook.system.svc.corp.internal'] },
  ]
  for (const { args, want } of cases) t.strictSame(serviceDnsNames(...args), want, args.join(' '))

  const invalid: Parameters<typeof serviceDnsNames>[] = [
    ['Webhook', 'system'],
    ['1webhook', 'system'],
    ['web_hook', 'system'],
    ['webhook', 'System'],
    ['webhook', ''],
    ['a'.repeat(64), 'system'],
    ['webhook', 'system', 'bad..domain'],
  ]
  for (const args of invalid) t.throws(() => serviceDnsNames(...args), CertificateRequestError, `rejects ${args.join(' ')}`)
})

t.test('issueCA makes a self-signed CA valid for 10 years from an hour ago', async (t) => {
  const cert = new X509Certificate(ca.certPem)
  t.equal(cert.ca, true)
  t.equal(cert.subject, 'CN=test CA')
  t.equal(cert.issuer, cert.subject)
  t.equal(cert.validFromDate.getTime(), NOW.getTime() - HOUR_MS)
  t.equal(cert.validToDate.getTime(), NOW.getTime() + 3650 * DAY_MS)
  t.ok(cert.verify(cert.publicKey), 'self-signed')
  t.ok(cert.checkPrivateKey(createPrivateKey(ca.keyPem)), 'key matches')
  t.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 key')
  t.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.match(extension(ca.certPem, 'basicConstraints'), { cA: true, critical: true })
  t.match(extension(ca.certPem, 'keyUsage'), { keyCertSign: true, cRLSign: true, digitalSignature: false, critical: true })
  t.equal(forge.pki.certificateFromPem(ca.certPem).siginfo.algorithmOid, forge.pki.oids['sha256WithRSAEncryption'])
  t.match(extension(ca.certPem, 'subjectKeyIdentifier'), { subjectKeyIdentifier: /^[0-9a-f]{40}$/ })
})

t.test('issueServingCertificate', async (t) => {
  const leaf = new X509Certificate(serving.certPem)
  const caCert = new X509Certificate(ca.certPem)

  t.test('covers every service name, extra name and IP', async (t) => {
    for (const name of [...serviceNames, 'webhook.example.com']) {
      t.equal(leaf.checkHost(name, { subject: 'never' }), name, `DNS ${name}`)
    }
    t.equal(leaf.checkIP('10.0.0.7'), '10.0.0.7')
    t.equal(leaf.checkIP('2001:db8::7'), '2001:db8::7')
    t.equal(leaf.checkHost('other.nlb-guard-system.svc', { subject: 'never' }), undefined, 'nothing else')
    t.equal(leaf.checkIP('10.0.0.8'), undefined)
    t.equal(leaf.subject, 'CN=nlb-guard', 'CN is the first DNS name')
  })

  t.test('is a serverAuth leaf', async (t) => {
    t.equal(leaf.ca, false)
    t.ok(leaf.keyUsage?.includes(SERVER_AUTH), `extKeyUsage ${String(leaf.keyUsage)}`)
    t.match(extension(serving.certPem, 'basicConstraints'), { cA: false, critical: true })
    t.match(extension(serving.certPem, 'keyUsage'), {
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: false,
      critical: true,
    })
    t.equal(forge.pki.certificateFromPem(serving.certPem).siginfo.algorithmOid, forge.pki.oids['sha256WithRSAEncryption'])
    t.ok(leaf.checkPrivateKey(createPrivateKey(serving.keyPem)), 'key matches')
    t.equal(leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048)
  })

  t.test('is valid for a year from an hour ago', async (t) => {
    t.equal(leaf.validFromDate.getTime(), NOW.getTime() - HOUR_MS)
    t.equal(leaf.validToDate.getTime(), NOW.getTime() + 365 * DAY_MS)
  })

  t.test('chains to the CA', async (t) => {
    t.ok(leaf.verify(caCert.publicKey), 'signature')
    // OpenSSL's check_issued also compares the leaf's AKI with the CA's SKI.
    t.ok(leaf.checkIssued(caCert), 'issuer name and key identifier')
    t.equal(leaf.issuer, caCert.subject)
    const otherCa = new X509Certificate(issueCA({ commonName: 'test CA', now: NOW }).certPem)
    t.notOk(leaf.verify(otherCa.publicKey), 'not by another CA with the same name')
  })

  t.test('never outlives its CA', async (t) => {
    const shortCa = issueCA({ commonName: 'short', now: NOW, validityDays: 30 })
    const cert = new X509Certificate(
      issueServingCertificate({ ca: shortCa, dnsNames: ['a.example'], ipAddresses: [], now: NOW }).certPem,
    )
    t.equal(cert.validToDate.getTime(), new X509Certificate(shortCa.certPem).validToDate.getTime())
  })

  t.test('honours validityDays', async (t) => {
    const cert = new X509Certificate(
      issueServingCertificate({ ca, dnsNames: ['a.example'], ipAddresses: [], now: NOW, validityDays: 7 }).certPem,
    )
    t.equal(cert.validToDate.getTime(), NOW.getTime() + 7 * DAY_MS)
  })

  t.test('IP-only certificates and IPv6 forms', async (t) => {
    const cert = new X509Certificate(
      issueServingCertificate({
        ca,
        dnsNames: [],
        ipAddresses: ['::1', '192.168.1.1', 'FE80:0:0:0:0:0:0:1', '::ffff:10.1.2.3', '::1'],
        now: NOW,
      }).certPem,
    )
    t.equal(cert.subject, 'CN=::1', 'CN is the first IP')
    for (const ip of ['::1', '192.168.1.1', 'fe80::1', '::ffff:10.1.2.3']) t.ok(cert.checkIP(ip), ip)
    t.equal(cert.subjectAltName?.split(', ').length, 4, 'duplicates dropped')
  })

  t.test('rejects requests that cannot make a usable certificate', async (t) => {
    const cases: { name: string; dnsNames?: string[]; ipAddresses?: string[]; validityDays?: number }[] = [
      { name: 'no names', dnsNames: [], ipAddresses: [] },
      { name: 'bad IP', ipAddresses: ['10.0.0.256'] },
      { name: 'IPv6 zone id', ipAddresses: ['fe80::1%eth0'] },
      { name: 'hostname as IP', ipAddresses: ['localhost'] },
      { name: 'bad DNS name', dnsNames: ['under_score.example'] },
      { name: 'empty DNS label', dnsNames: ['a..example'] },
      { name: 'zero days', validityDays: 0 },
      { name: 'negative days', validityDays: -1 },
      { name: 'NaN days', validityDays: Number.NaN },
    ]
    for (const c of cases) {
      t.throws(
        () =>
          issueServingCertificate({
            ca,
            dnsNames: c.dnsNames ?? ['ok.example'],
            ipAddresses: c.ipAddresses ?? [],
            now: NOW,
            ...(c.validityDays === undefined ? {} : { validityDays: c.validityDays }),
          }),
        CertificateRequestError,
        c.name,
      )
    }
  })
})

t.test('issueCA rejects a common name RFC 5280 does not allow', async (t) => {
  for (const commonName of ['', 'x'.repeat(65)]) {
    t.throws(() => issueCA({ commonName, now: NOW }), CertificateRequestError, `${commonName.length} characters`)
  }
  t.throws(() => issueCA({ commonName: 'ok', now: new Date(Number.NaN) }), CertificateRequestError, 'invalid Date')
})

t.test('issueServingCertificate refuses a CA it cannot use', async (t) => {
  const other = issueCA({ commonName: 'other', now: NOW })
  const cases: { name: string; ca: CertificateAndKey }[] = [
    { name: 'certificate not PEM', ca: { certPem: 'nope', keyPem: ca.keyPem } },
    { name: 'key not PEM', ca: { certPem: ca.certPem, keyPem: 'nope' } },
    { name: 'key of another CA', ca: { certPem: ca.certPem, keyPem: other.keyPem } },
  ]
  for (const c of cases) {
    t.throws(() => issueServingCertificate({ ca: c.ca, dnsNames: ['a.example'], ipAddresses: [], now: NOW }), CertificateError, c.name)
  }
})

t.test('a CA made elsewhere, without a subject key identifier, still chains', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey)
  cert.serialNumber = '01'
  cert.validity.notBefore = new Date(NOW.getTime() - DAY_MS)
  cert.validity.notAfter = new Date(NOW.getTime() + 3650 * DAY_MS)
  cert.setSubject([{ name: 'commonName', value: 'foreign CA' }])
  cert.setIssuer([{ name: 'commonName', value: 'foreign CA' }])
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }])
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create())
  const foreign = { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey }

  const leaf = new X509Certificate(issueServingCertificate({ ca: foreign, dnsNames: ['a.example'], ipAddresses: [], now: NOW }).certPem)
  const caCert = new X509Certificate(foreign.certPem)
  t.ok(leaf.verify(caCert.publicKey) && leaf.checkIssued(caCert))
})

t.test('serial numbers are random, positive and 16 octets', async (t) => {
  const serials = [ca, serving, ...Array.from({ length: 4 }, () => issueServingCertificate({ ca, dnsNames: ['a.example'], ipAddresses: [], now: NOW }))]
    .map(({ certPem }) => new X509Certificate(certPem).serialNumber)
  t.equal(new Set(serials).size, serials.length, 'distinct')
  for (const serial of serials) t.match(serial, /^[4-7][0-9A-F]{31}$/, 'positive, no padding octet')
})

t.test("keys come from Node's native generator, never forge's pure-JS one", async (t) => {
  // forge's pure-JS RSA generation takes seconds per key; Node's native one tens of milliseconds.
  // Counted, not timed: which generator ran is the behaviour, its speed follows from it.
  const calls = { native: 0, forge: 0 }
  const crypto = await import('node:crypto')
  const { issueServingCertificate: issue } = await t.mockImport<typeof import('../../certs/issue.js')>('../../certs/issue.js', {
    'node:crypto': {
      ...crypto,
      generateKeyPairSync: (...args: Parameters<typeof crypto.generateKeyPairSync>) => {
        calls.native++
        return (crypto.generateKeyPairSync as (...a: unknown[]) => unknown)(...args)
      },
    },
  })
  const generate = forge.pki.rsa.generateKeyPair
  forge.pki.rsa.generateKeyPair = ((...args: unknown[]) => {
    calls.forge++
    return (generate as (...a: unknown[]) => unknown)(...args)
  }) as typeof generate
  t.teardown(() => {
    forge.pki.rsa.generateKeyPair = generate
  })
  for (let i = 0; i < 3; i++) issue({ ca, dnsNames: ['a.example'], ipAddresses: [], now: NOW })
  t.same(calls, { native: 3, forge: 0 })
})

t.test('selfSignedForLocalhost', async (t) => {
  const { ca, serving } = selfSignedForLocalhost(NOW)
  const leaf = new X509Certificate(serving.certPem)
  t.ok(leaf.checkHost('localhost', { subject: 'never' }), 'localhost')
  t.ok(leaf.checkIP('127.0.0.1'), '127.0.0.1')
  t.ok(leaf.checkIP('::1'), '::1')
  t.ok(leaf.checkIssued(new X509Certificate(ca.certPem)), 'issued by its CA')
})

// A real handshake is the test a user would notice: the clock is the real one since OpenSSL checks
// validity against it.
t.test('a TLS client trusting only the CA accepts the serving certificate', async (t) => {
  const now = new Date()
  const tlsCa = issueCA({ commonName: 'handshake CA', now })
  const tlsServing = issueServingCertificate({ ca: tlsCa, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], now })
  const strangerCa = issueCA({ commonName: 'handshake CA', now })

  const ipv6 = await listen(tlsServing, '::1').catch(() => undefined)
  const ipv4 = await listen(tlsServing, '127.0.0.1')
  t.teardown(() => {
    ipv4.close()
    ipv6?.close()
  })
  const port4 = (ipv4.address() as AddressInfo).port

  const cases: { name: string; host: string; port: number | undefined; servername?: string; ca: CertificateAndKey; want: string }[] = [
    { name: 'servername localhost', host: '127.0.0.1', port: port4, servername: 'localhost', ca: tlsCa, want: 'ok' },
    { name: 'IPv4 address', host: '127.0.0.1', port: port4, ca: tlsCa, want: 'ok' },
    { name: 'IPv6 address', host: '::1', port: ipv6 && (ipv6.address() as AddressInfo).port, ca: tlsCa, want: 'ok' },
    { name: 'a name not in the SANs', host: '127.0.0.1', port: port4, servername: 'elsewhere.example', ca: tlsCa, want: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    { name: 'a client trusting another CA', host: '127.0.0.1', port: port4, servername: 'localhost', ca: strangerCa, want: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
  ]
  for (const c of cases) {
    if (c.port === undefined) {
      t.pass(c.name, { skip: 'no IPv6 loopback here' })
      continue
    }
    t.equal(await handshake(c.host, c.port, c.ca.certPem, c.servername), c.want, c.name)
  }
})

async function listen(cert: CertificateAndKey, host: string): Promise<ReturnType<typeof createServer>> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (socket) => socket.end())
  server.listen(0, host)
  await once(server, 'listening')
  return server
}

function handshake(host: string, port: number, ca: string, servername: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca, ...(servername === undefined ? {} : { servername }) }, () => {
      socket.end()
      resolve(socket.authorized ? 'ok' : String(socket.authorizationError))
    })
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
}
