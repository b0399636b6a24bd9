import { X509Certificate, createPrivateKey } from 'node:crypto'
import type { SecureContextOptions } from 'node:tls'
import type { Metrics } from '../webhook/server/metrics.js'
import { tlsOptions } from '../webhook/server/app.js'
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

/** A TLS server whose certificate can be replaced: node's tls.Server, and so https.Server. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void
}

/** Throws CertificateError unless `keyPem` is the private key of the first certificate in `certPem`. */
export function checkKeyPair(pair: CertificateAndKey): CertificateInfo {
  let matches: boolean
  try {
    matches = new X509Certificate(pair.certPem).checkPrivateKey(createPrivateKey(pair.keyPem))
  } catch (error: unknown) {
    throw new CertificateError('the certificate or its key cannot be parsed', { cause: error })
  }
  if (!matches) throw new CertificateError('the private key does not belong to the certificate')
  return certificateInfo(pair.certPem)
}

export interface ServingCertificateSwap {
  readonly server: SecureContextTarget
  /** Kept as it is: the client-certificate CA is not part of what rotates. */
  readonly clientCa: string | Buffer | undefined
  readonly metrics: Pick<Metrics, 'certificateNotAfter' | 'certificateReloads'>
  readonly log: Log
}

/**
 * Replaces the live certificate. `setSecureContext` applies to handshakes from now on: connections
 * already open keep the context they were made with, so keep-alive requests go on undisturbed
 * (node docs, tls.Server#setSecureContext). Throws CertificateError, leaving the old certificate in
 * place, when the pair does not match or TLS refuses it.
 */
export function swapServingCertificate(target: ServingCertificateSwap, pair: CertificateAndKey, source: 'files' | 'secret'): CertificateInfo {
  let info: CertificateInfo
  try {
    info = checkKeyPair(pair)
    target.server.setSecureContext(tlsOptions({ cert: pair.certPem, key: pair.keyPem, clientCa: target.clientCa }))
  } catch (error: unknown) {
    target.metrics.certificateReloads.inc({ source, result: 'rejected' })
    if (error instanceof CertificateError) throw error
    throw new CertificateError('TLS refused the certificate', { cause: error })
  }
  target.metrics.certificateReloads.inc({ source, result: 'loaded' })
  target.metrics.certificateNotAfter.set(info.notAfter.getTime() / 1000)
  target.log.info(
    { source, serialNumber: info.serialNumber, notAfter: info.notAfter.toISOString(), dnsNames: info.dnsNames },
    'serving certificate loaded',
  )
  return info
}
