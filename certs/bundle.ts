import { X509Certificate, createPrivateKey } from 'node:crypto'
import { CertificateError } from './errors.js'

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?\r?\n-----END CERTIFICATE-----/g

/**
 * The certificates of a PEM bundle, each re-encoded by OpenSSL so that two bundles holding the same
 * certificates compare equal whatever their line endings or surrounding text. Throws when a block
 * does not parse or there is none.
 */
export function pemCertificates(text: string, what = 'the bundle'): string[] {
  const blocks = text.match(PEM_CERTIFICATE) ?? []
  if (blocks.length === 0) throw new CertificateError(`${what} holds no PEM certificate`)
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block).toString()
    } catch (error: unknown) {
      throw new CertificateError(`certificate ${index + 1} of ${what} cannot be parsed`, { cause: error })
    }
  })
}

/** A caBundle value: PEM certificates concatenated, base64-encoded as the API field expects. */
export function caBundleBase64(certificates: readonly string[]): string {
  return Buffer.from(certificates.join('')).toString('base64')
}

/**
 * Whether `keyPem` is the private key of `cert` (a parsed certificate, or the first in a PEM).
 * Throws when either cannot be parsed: callers word that case themselves.
 */
export function keyMatchesCertificate(cert: X509Certificate | string, keyPem: string): boolean {
  const certificate = typeof cert === 'string' ? new X509Certificate(cert) : cert
  return certificate.checkPrivateKey(createPrivateKey(keyPem))
}
