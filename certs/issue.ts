import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { isIPv4, isIPv6, SocketAddress } from 'node:net'
import forge from 'node-forge'
import { DNS1035_LABEL, DNS1123_LABEL } from '../lib/dns.js'
import { keyMatchesCertificate } from './bundle.js'
import { CertificateError, CertificateRequestError } from './errors.js'

/** A PEM certificate and its PEM private key (PKCS#8), as written to `tls.crt` / `tls.key`. */
export interface CertificateAndKey {
  readonly certPem: string
  readonly keyPem: string
}

export interface IssueCAOptions {
  readonly commonName: string
  readonly now: Date
  readonly validityDays?: number
}

export interface IssueServingCertificateOptions {
  readonly ca: CertificateAndKey
  readonly dnsNames: readonly string[]
  readonly ipAddresses: readonly string[]
  readonly now: Date
  readonly validityDays?: number
}

const HOUR_MS = 60 * 60 * 1000
const DAY_MS = 24 * HOUR_MS

// Nodes, the apiserver and the pod that issues the certificate do not share a perfectly synchronised
// clock; a certificate whose notBefore is a few seconds in some verifier's future is rejected as "not
// yet valid". One hour covers any skew NTP leaves on a healthy cluster; cert-controller's rotator
// (pkg/rotator/rotator.go) backdates by the same hour.
export const NOT_BEFORE_BACKDATE_MS = HOUR_MS

// RFC 5280 §4.1.2.2 caps serials at 20 octets and CA/Browser Forum BR §7.1 asks for at least 64 bits of
// randomness; 16 octets sits comfortably between the two.
const SERIAL_BYTES = 16

// RFC 5280 Appendix A: ub-common-name INTEGER ::= 64.
const MAX_COMMON_NAME_LENGTH = 64

// Node generates RSA keys natively in tens of milliseconds; forge's pure-JS generator takes seconds.
const RSA_MODULUS_BITS = 2048

/** A self-signed CA certificate (basicConstraints CA=true critical, keyCertSign + cRLSign). */
export function issueCA({ commonName, now, validityDays = 3650 }: IssueCAOptions): CertificateAndKey {
  if (commonName.length === 0 || commonName.length > MAX_COMMON_NAME_LENGTH) {
    throw new CertificateRequestError(
      `CA common name must be 1 to ${MAX_COMMON_NAME_LENGTH} characters, got ${commonName.length}`,
    )
  }
  const { notBefore, notAfter } = validity(now, validityDays)
  const { cert, privateKey, keyPem } = newCertificate()
  cert.validity.notBefore = notBefore
  cert.validity.notAfter = notAfter
  const subject = [{ name: 'commonName', value: commonName }]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    // RFC 5280 §4.2.1.2: CA certificates MUST carry a subject key identifier; forge derives it from
    // the public key (method 1 of that section), and leaves point at it through their AKI.
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(privateKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

/**
 * A TLS server certificate signed by `ca`, valid for every DNS name and IP given. The subject CN is the
 * first name that fits in a CN; TLS clients only look at the SANs (RFC 6125 §6.4.4, Go since 1.15),
 * the CN is for people reading `openssl x509 -text`.
 *
 * notAfter is never later than the CA's own notAfter: past that point the chain fails anyway, and a
 * truthful notAfter lets `needsRotation` see the real deadline.
 */
export function issueServingCertificate({
  ca,
  dnsNames,
  ipAddresses,
  now,
  validityDays = 365,
}: IssueServingCertificateOptions): CertificateAndKey {
  const dns = unique(dnsNames.map(checkedDnsName))
  const ips = unique(ipAddresses.map(normalizedIp))
  const commonName = [...dns, ...ips].find((name) => name.length <= MAX_COMMON_NAME_LENGTH)
  if (commonName === undefined) {
    throw new CertificateRequestError(
      dns.length + ips.length === 0
        ? 'a serving certificate needs at least one DNS name or IP address'
        : `no DNS name fits in a ${MAX_COMMON_NAME_LENGTH}-character common name and no IP address was given`,
    )
  }

  const caCert = parseCertificate(ca.certPem, 'CA certificate')
  const caKey = parsePrivateKey(ca.keyPem, 'CA private key')
  // A key from one Secret and a certificate from another would sign leaves no client can verify.
  if (!keyMatchesCertificate(ca.certPem, ca.keyPem)) {
    throw new CertificateError('the CA private key does not belong to the CA certificate')
  }
  const { notBefore, notAfter } = validity(now, validityDays)

  const { cert, keyPem } = newCertificate()
  cert.validity.notBefore = notBefore
  cert.validity.notAfter = notAfter < caCert.validity.notAfter ? notAfter : caCert.validity.notAfter
  cert.setSubject([{ name: 'commonName', value: commonName }])
  cert.setIssuer(caCert.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        // GeneralName tags from RFC 5280 §4.2.1.6: dNSName [2], iPAddress [7].
        ...dns.map((value) => ({ type: 2, value })),
        ...ips.map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    // OpenSSL's X509_check_issued compares this with the issuer's SKI, so it must be the CA's actual
    // SKI extension when it has one (a CA made by another tool may not derive it the way forge does).
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifierBytes(caCert) },
  ])
  cert.sign(caKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

/**
 * The names a client inside the cluster may use for a Service: the apiserver calls a webhook at
 * `<svc>.<ns>.svc` (admissionregistration.k8s.io/v1 ServiceReference), pods resolve the shorter forms
 * through their resolv.conf search path.
 */
export function serviceDnsNames(service: string, namespace: string, clusterDomain = 'cluster.local'): string[] {
  // Service names are DNS-1035 labels, namespaces DNS-1123 labels (k8s.io/apimachinery validation).
  if (!DNS1035_LABEL.test(service)) {
    throw new CertificateRequestError(`service name ${JSON.stringify(service)} is not a valid DNS-1035 label`)
  }
  if (!DNS1123_LABEL.test(namespace)) {
    throw new CertificateRequestError(`namespace ${JSON.stringify(namespace)} is not a valid DNS-1123 label`)
  }
  const domain = checkedDnsName(clusterDomain.replace(/\.$/, ''))
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`]
}

/** The certificate `nlb-guard serve` uses when given no certificate flags: good for local runs only. */
export function selfSignedForLocalhost(now: Date): { ca: CertificateAndKey; serving: CertificateAndKey } {
  const ca = issueCA({ commonName: 'nlb-guard localhost CA', now })
  const serving = issueServingCertificate({
    ca,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    now,
  })
  return { ca, serving }
}

function newCertificate(): { cert: forge.pki.Certificate; privateKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: RSA_MODULUS_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey)
  cert.serialNumber = randomSerialNumber()
  return { cert, privateKey: forge.pki.privateKeyFromPem(privateKey), keyPem: privateKey }
}

/**
 * Hex for a positive serial of exactly SERIAL_BYTES octets. forge writes the hex verbatim as the DER
 * INTEGER's content, so bit 7 of the first octet is cleared (else it reads as negative) and bit 6 is
 * set (a leading 0x00 octet is non-minimal DER, which OpenSSL's c2i_ASN1_INTEGER rejects as "illegal
 * padding"). That leaves 126 random bits.
 */
function randomSerialNumber(): string {
  const bytes = randomBytes(SERIAL_BYTES)
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40
  return bytes.toString('hex')
}

function validity(now: Date, validityDays: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new CertificateRequestError(`validity must be a positive number of days, got ${validityDays}`)
  }
  if (Number.isNaN(now.getTime())) {
    throw new CertificateRequestError('the issue time is an invalid Date')
  }
  return {
    notBefore: new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
  }
}

/** RFC 1123 host name (case-insensitive, a trailing dot dropped), optionally a leading `*.` wildcard. */
function checkedDnsName(name: string): string {
  const host = name.toLowerCase().replace(/\.$/, '')
  const labels = host.startsWith('*.') ? host.slice(2).split('.') : host.split('.')
  // RFC 1035 §2.3.4: at most 253 characters in the presentation form without the trailing dot.
  if (host.length > 253 || !labels.every((part) => DNS1123_LABEL.test(part))) {
    throw new CertificateRequestError(`${JSON.stringify(name)} is not a valid DNS name`)
  }
  return host
}

/** Validated and written the way clients compare it (RFC 5952 form for IPv6). */
function normalizedIp(ip: string): string {
  // Zone ids (fe80::1%eth0) name an interface on one host; they have no place in a certificate.
  if (isIPv4(ip)) return ip
  if (isIPv6(ip) && !ip.includes('%')) {
    const canonical = new SocketAddress({ address: ip, family: 'ipv6' }).address
    // forge's bytesFromIP decides IPv4 vs IPv6 by the presence of a dot, so an IPv4-mapped address
    // (::ffff:1.2.3.4) must reach it in all-hex form.
    return canonical.includes('.') ? ipv6WithHexTail(canonical) : canonical
  }
  throw new CertificateRequestError(`${JSON.stringify(ip)} is not a valid IP address`)
}

function ipv6WithHexTail(ip: string): string {
  const lastColon = ip.lastIndexOf(':')
  const octets = ip.slice(lastColon + 1).split('.').map(Number)
  const [a = 0, b = 0, c = 0, d = 0] = octets
  return `${ip.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)]
}

function parseCertificate(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem)
  } catch (error: unknown) {
    throw new CertificateError(`could not read the ${what} (forge reads PEM certificates with RSA keys)`, {
      cause: error,
    })
  }
}

function parsePrivateKey(pem: string, what: string): forge.pki.rsa.PrivateKey {
  try {
    return forge.pki.privateKeyFromPem(pem)
  } catch (error: unknown) {
    throw new CertificateError(`could not read the ${what} (forge reads unencrypted PEM RSA keys)`, {
      cause: error,
    })
  }
}

function subjectKeyIdentifierBytes(cert: forge.pki.Certificate): string {
  const extension: unknown = cert.getExtension('subjectKeyIdentifier')
  if (
    typeof extension === 'object' &&
    extension !== null &&
    'subjectKeyIdentifier' in extension &&
    typeof extension.subjectKeyIdentifier === 'string'
  ) {
    return forge.util.hexToBytes(extension.subjectKeyIdentifier)
  }
  return cert.generateSubjectKeyIdentifier().getBytes()
}
