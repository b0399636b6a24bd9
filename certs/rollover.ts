import { X509Certificate } from 'node:crypto'
import { caBundleBase64, keyMatchesCertificate, pemCertificates } from './bundle.js'
import type { CertificateAndKey } from './issue.js'
import { issueCA, issueServingCertificate, NOT_BEFORE_BACKDATE_MS } from './issue.js'
import { needsRotation } from './rotation.js'

/**
 * What bootstrap keeps in its Secret. A key that is missing reads as '' and is treated like a
 * certificate that does not parse: replaced.
 *
 * - `ca.crt`, `ca.key`: the newest CA, the one new serving certificates are signed by.
 * - `ca-previous.crt`: during a CA rollover only, the CA being retired (its key is no longer needed).
 * - `tls.crt`, `tls.key`: the serving certificate, signed by one of the two.
 *
 * The caBundle injected into the webhook configurations is `ca.crt` followed by `ca-previous.crt`.
 */
export interface CertificateState {
  readonly caCertPem: string
  readonly caKeyPem: string
  readonly previousCaPem?: string | undefined
  readonly certPem: string
  readonly keyPem: string
}

export const SECRET_KEYS = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  previousCaCert: 'ca-previous.crt',
  cert: 'tls.crt',
  key: 'tls.key',
} as const

export interface PlanOptions {
  readonly now: Date
  /** SANs the serving certificate must carry. */
  readonly dnsNames: readonly string[]
  /** IP SANs it must carry too (a webhook reached by URL on an address, as in the end-to-end suite). */
  readonly ipAddresses?: readonly string[]
  /** Reissue the serving certificate when it expires within this long. */
  readonly servingLookaheadMs: number
  /** Start a CA rollover when the CA expires within this long. */
  readonly caLookaheadMs: number
  /**
   * How long a rollover step waits before the next one: for the apiserver to load a new caBundle,
   * and for every replica to poll the Secret and serve the new certificate.
   */
  readonly propagationMs: number
  /** The caBundle (base64) this replica last found in every webhook configuration, if any. */
  readonly confirmedBundle: string | undefined
  readonly caCommonName: string
  readonly servingValidityDays?: number
  readonly caValidityDays?: number
}

export type PlanStepKind =
  /** No Secret (or one without a usable CA): a new CA and serving certificate. */
  | 'created'
  /** The serving certificate was replaced (expiring, wrong names, unusable). */
  | 'serving-rotated'
  /** Rollover step 1: a new CA becomes `ca.crt`, the old one moves to `ca-previous.crt`. */
  | 'ca-rollover-started'
  /** Rollover step 2: the serving certificate is reissued by the new CA. */
  | 'serving-switched'
  /** Rollover step 3: the old CA leaves the bundle. */
  | 'ca-rollover-finished'

export interface PlanStep {
  readonly kind: PlanStepKind
  readonly reason: string
}

export interface Plan {
  readonly state: CertificateState
  /** Empty when `state` is the input unchanged. */
  readonly steps: readonly PlanStep[]
}

/**
 * The next state of the bootstrap Secret. Pure apart from key generation: time comes from
 * `options.now`, and every wait is derived from certificate issue times, so a replica that restarts
 * half-way through a rollover carries on from the Secret alone.
 *
 * A CA rollover never leaves a moment where the apiserver would reject the certificate served:
 * 1. when the CA nears expiry (or its key is unusable), a new CA is made and both go into caBundle;
 * 2. once this replica has seen that bundle in every webhook configuration and `propagationMs` has
 *    passed since the new CA was made, the serving certificate is reissued by the new CA;
 * 3. `propagationMs` after that reissue (every replica polls the Secret more often), the old CA is
 *    dropped from the bundle.
 */
export function planCertificates(current: CertificateState | undefined, options: PlanOptions): Plan {
  const { now } = options
  const steps: PlanStep[] = []

  const ca = current === undefined ? undefined : parse(current.caCertPem)
  if (current === undefined || ca === undefined || now > ca.validToDate) {
    const reason =
      current === undefined ? 'no Secret yet' : ca === undefined ? 'the CA certificate cannot be parsed' : `the CA expired at ${ca.validToDate.toISOString()}`
    return { state: fresh(options), steps: [{ kind: 'created', reason }] }
  }

  let state: CertificateState = current
  if (state.previousCaPem !== undefined) {
    const previous = parse(state.previousCaPem)
    if (previous === undefined || now > previous.validToDate) {
      state = { ...state, previousCaPem: undefined }
      steps.push({ kind: 'ca-rollover-finished', reason: previous === undefined ? 'the previous CA cannot be parsed' : 'the previous CA expired' })
    }
  }

  // Step 1. An expiring CA waits for a rollover under way to finish; a CA that cannot sign cannot.
  const caProblem = keyProblem(state.caCertPem, state.caKeyPem) ?? (state.previousCaPem === undefined ? expiresWithin(ca, now, options.caLookaheadMs) : undefined)
  if (caProblem !== undefined) {
    const next = newCA(options)
    // The CA kept in the bundle is the one that verifies the certificate replicas serve right now,
    // even when its key is unusable.
    const keep = state.previousCaPem !== undefined && signedBy(state.certPem, state.previousCaPem) ? state.previousCaPem : state.caCertPem
    state = { ...state, caCertPem: next.certPem, caKeyPem: next.keyPem, previousCaPem: keep }
    steps.push({ kind: 'ca-rollover-started', reason: caProblem })
  }

  // Step 2, and ordinary serving rotation.
  const signedByPrevious = state.previousCaPem !== undefined && signedBy(state.certPem, state.previousCaPem)
  const check = { now, lookaheadMs: options.servingLookaheadMs, dnsNames: options.dnsNames, ipAddresses: options.ipAddresses ?? [] }
  if (signedByPrevious && state.previousCaPem !== undefined) {
    // Judged against the CA that signed it, with no lookahead: only a certificate that cannot be
    // served at all skips the wait.
    const decision = needsRotation(state.certPem, { ...check, lookaheadMs: 0, caPem: state.previousCaPem })
    const unusable = decision.rotate ? decision.reason : keyProblem(state.certPem, state.keyPem)
    const waited = now.getTime() - issuedAt(state.caCertPem) >= options.propagationMs
    if (unusable !== undefined) {
      state = { ...state, ...newServing(state, options) }
      steps.push({ kind: 'serving-rotated', reason: unusable })
    } else if (waited && options.confirmedBundle === caBundleOf(state)) {
      state = { ...state, ...newServing(state, options) }
      steps.push({ kind: 'serving-switched', reason: 'the new CA is in every webhook configuration' })
    }
  } else {
    const decision = needsRotation(state.certPem, { ...check, caPem: state.caCertPem })
    const reason = decision.rotate ? decision.reason : keyProblem(state.certPem, state.keyPem)
    if (reason !== undefined) {
      state = { ...state, ...newServing(state, options) }
      steps.push({ kind: 'serving-rotated', reason })
    }
  }

  // Step 3.
  if (state.previousCaPem !== undefined && !signedBy(state.certPem, state.previousCaPem)) {
    if (now.getTime() - issuedAt(state.certPem) >= options.propagationMs) {
      state = { ...state, previousCaPem: undefined }
      steps.push({ kind: 'ca-rollover-finished', reason: 'every replica has had time to load the serving certificate of the new CA' })
    }
  }
  return { state, steps }
}

/** The CA certificates to trust, newest first. */
export function bundleCertificates(state: CertificateState): string[] {
  return state.previousCaPem === undefined ? [state.caCertPem] : [state.caCertPem, state.previousCaPem]
}

/** The caBundle value (base64 of the PEM certificates) for a state whose CAs parse. */
export function caBundleOf(state: CertificateState): string {
  return caBundleBase64(bundleCertificates(state).flatMap((pem) => pemCertificates(pem)))
}

/** Reads the Secret's `data` (base64 values, as the API returns them). */
export function stateFromSecretData(data: Readonly<Record<string, string>> | undefined): CertificateState {
  const text = (key: string): string => Buffer.from(data?.[key] ?? '', 'base64').toString('utf8')
  const previous = text(SECRET_KEYS.previousCaCert)
  return {
    caCertPem: text(SECRET_KEYS.caCert),
    caKeyPem: text(SECRET_KEYS.caKey),
    ...(previous !== '' && { previousCaPem: previous }),
    certPem: text(SECRET_KEYS.cert),
    keyPem: text(SECRET_KEYS.key),
  }
}

/** The Secret's `data` for a state; keys the state does not use are kept from `others`. */
export function secretDataFromState(state: CertificateState, others: Readonly<Record<string, string>> = {}): Record<string, string> {
  const data: Record<string, string> = { ...others }
  const put = (key: string, value: string | undefined): void => {
    if (value === undefined) delete data[key]
    else data[key] = Buffer.from(value).toString('base64')
  }
  put(SECRET_KEYS.caCert, state.caCertPem)
  put(SECRET_KEYS.caKey, state.caKeyPem)
  put(SECRET_KEYS.previousCaCert, state.previousCaPem)
  put(SECRET_KEYS.cert, state.certPem)
  put(SECRET_KEYS.key, state.keyPem)
  return data
}

/** When a certificate of ours was issued: its notBefore is backdated by a fixed amount (issue.ts). */
export function issuedAt(certPem: string): number {
  const cert = parse(certPem)
  return cert === undefined ? 0 : cert.validFromDate.getTime() + NOT_BEFORE_BACKDATE_MS
}

function fresh(options: PlanOptions): CertificateState {
  const ca = newCA(options)
  return { caCertPem: ca.certPem, caKeyPem: ca.keyPem, ...newServing({ caCertPem: ca.certPem, caKeyPem: ca.keyPem }, options) }
}

function newCA(options: PlanOptions): CertificateAndKey {
  return issueCA({
    commonName: options.caCommonName,
    now: options.now,
    ...(options.caValidityDays !== undefined && { validityDays: options.caValidityDays }),
  })
}

function newServing(state: Pick<CertificateState, 'caCertPem' | 'caKeyPem'>, options: PlanOptions): Pick<CertificateState, 'certPem' | 'keyPem'> {
  const serving = issueServingCertificate({
    ca: { certPem: state.caCertPem, keyPem: state.caKeyPem },
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses ?? [],
    now: options.now,
    ...(options.servingValidityDays !== undefined && { validityDays: options.servingValidityDays }),
  })
  return { certPem: serving.certPem, keyPem: serving.keyPem }
}

function parse(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem)
  } catch {
    return undefined
  }
}

function signedBy(certPem: string, caPem: string): boolean {
  const cert = parse(certPem)
  const ca = parse(caPem)
  return cert !== undefined && ca !== undefined && cert.checkIssued(ca) && cert.verify(ca.publicKey)
}

/** Why `keyPem` cannot be used with `certPem`, or undefined when it can. */
function keyProblem(certPem: string, keyPem: string): string | undefined {
  const cert = parse(certPem)
  if (cert === undefined) return 'the certificate cannot be parsed'
  try {
    return keyMatchesCertificate(cert, keyPem) ? undefined : 'the private key does not belong to the certificate'
  } catch {
    return 'the private key cannot be parsed'
  }
}

function expiresWithin(cert: X509Certificate, now: Date, lookaheadMs: number): string | undefined {
  return cert.validToDate.getTime() - now.getTime() <= lookaheadMs
    ? `the CA expires at ${cert.validToDate.toISOString()}, within the rollover window`
    : undefined
}
