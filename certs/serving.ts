import { keyMatchesCertificate } from './bundle.js'
import { CertificateError } from './errors.js'
import type { CertificateAndKey } from './issue.js'
import type { CertificateInfo } from './rotation.js'
import { certificateInfo } from './rotation.js'

/** The slice of a pino logger the certificate code writes to (fastify's `app.log` is one). */
export interface Log {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

/** Throws CertificateError unless `keyPem` is the private key of the first certificate in `certPem`. */
export function checkKeyPair(pair: CertificateAndKey): CertificateInfo {
  let matches: boolean
  try {
    matches = keyMatchesCertificate(pair.certPem, pair.keyPem)
  } catch (error: unknown) {
    throw new CertificateError('the certificate or its key cannot be parsed', { cause: error })
  }
  if (!matches) throw new CertificateError('the private key does not belong to the certificate')
  return certificateInfo(pair.certPem)
}
