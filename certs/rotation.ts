import { X509Certificate } from 'node:crypto'
import { SocketAddress, isIPv6 } from 'node:net'
import { CertificateError } from './errors.js'
import { errorMessage } from '../lib/errors.js'

export interface RotationCheck {
  readonly now: Date
  /** Rotate when the certificate expires within this many milliseconds of `now`. */
  readonly lookaheadMs: number
  readonly dnsNames: readonly string[]
  readonly ipAddresses: readonly string[]
  /** The CA the certificate must be signed by (PEM; the first certificate is used). */
  readonly caPem: string
}

export type RotationDecision = { readonly rotate: false } | { readonly rotate: true; readonly reason: string }

export interface CertificateInfo {
  /** Upper-case hex, as `openssl x509 -serial` prints it. */
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly dnsNames: readonly string[]
  /** IPv4 dotted, IPv6 in RFC 5952 form (`::1`, not `0:0:0:0:0:0:0:1` as OpenSSL prints it). */
  readonly ipAddresses: readonly string[]
}

/**
 * Whether the serving certificate must be replaced. A certificate that cannot be parsed needs
 * rotating too: in-cluster bootstrap keeps it in a Secret, and garbage there is fixed by issuing anew.
 */
export function needsRotation(certPem: string, check: RotationCheck): RotationDecision {
  const { now, lookaheadMs, dnsNames, ipAddresses, caPem } = check
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (error: unknown) {
    return { rotate: true, reason: `certificate cannot be parsed: ${errorMessage(error)}` }
  }
  let ca: X509Certificate
  try {
    ca = new X509Certificate(caPem)
  } catch (error: unknown) {
    return { rotate: true, reason: `CA certificate cannot be parsed: ${errorMessage(error)}` }
  }

  const notBefore = cert.validFromDate
  const notAfter = cert.validToDate
  if (now < notBefore) {
    return { rotate: true, reason: `not valid until ${notBefore.toISOString()}` }
  }
  // RFC 5280 §4.1.2.5: the validity period includes notAfter itself.
  if (now > notAfter) {
    return { rotate: true, reason: `expired at ${notAfter.toISOString()}` }
  }
  // checkIssued compares names (and AKI/SKI); verify checks the signature itself, so a certificate from
  // another CA with the same subject, as every rotated CA of ours has, is still caught.
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return { rotate: true, reason: `not signed by the CA ${JSON.stringify(ca.subject)} (serial ${ca.serialNumber})` }
  }
  for (const name of dnsNames) {
    // subject 'never': only SANs count, as for every current TLS client (RFC 6125 §6.4.4).
    if (cert.checkHost(name, { subject: 'never' }) === undefined) {
      return { rotate: true, reason: `DNS name ${name} is missing` }
    }
  }
  for (const ip of ipAddresses) {
    if (cert.checkIP(ip) === undefined) {
      return { rotate: true, reason: `IP address ${ip} is missing` }
    }
  }
  if (notAfter.getTime() - now.getTime() <= lookaheadMs) {
    return { rotate: true, reason: `expires at ${notAfter.toISOString()}, within the rotation window` }
  }
  return { rotate: false }
}

/** The facts about a certificate that metrics and logs report. Reads the first certificate of a PEM bundle. */
export function certificateInfo(certPem: string): CertificateInfo {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (error: unknown) {
    throw new CertificateError('could not parse the certificate', { cause: error })
  }
  const sans = subjectAltNames(cert.subjectAltName)
  return {
    serialNumber: cert.serialNumber,
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    dnsNames: sans.filter((san) => san.kind === 'DNS').map((san) => san.value),
    ipAddresses: sans.filter((san) => san.kind === 'IP Address').map((san) => canonicalIp(san.value)),
  }
}

/**
 * Node documents `x509.subjectAltName` as `kind:value` entries joined by ", ", where a value holding
 * characters that would make this ambiguous is written as a JSON string (nodejs/node CVE-2021-44532).
 */
function subjectAltNames(text: string | undefined): { kind: string; value: string }[] {
  if (text === undefined) return []
  const entry = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy
  const names: { kind: string; value: string }[] = []
  for (const match of text.matchAll(entry)) {
    const [, kind = '', raw = ''] = match
    names.push({ kind, value: raw.startsWith('"') ? String(JSON.parse(raw)) : raw })
  }
  return names
}

function canonicalIp(ip: string): string {
  return isIPv6(ip) ? new SocketAddress({ address: ip, family: 'ipv6' }).address : ip
}

