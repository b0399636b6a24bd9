import type { Decision, JsonPatchOp } from '../rules/decision.js'
import { warningsOf } from '../rules/decision.js'
import type { AdmissionVersion } from './review.js'

/**
 * Every AdmissionReview answer is built here, by a few constructors (controller-runtime's
 * `Allowed`, `Denied`, `Patched`, `Errored`): the uid is copied in one place, and a response carries
 * a `patch` only when there is something to change.
 */

export interface AdmissionStatus {
  readonly code: number
  readonly reason?: string
  readonly message: string
}

export interface AdmissionResponse {
  readonly uid: string
  readonly allowed: boolean
  readonly patchType?: 'JSONPatch'
  readonly patch?: string
  readonly warnings?: readonly string[]
  readonly status?: AdmissionStatus
}

export interface AdmissionReviewResponse {
  readonly apiVersion: AdmissionVersion
  readonly kind: 'AdmissionReview'
  readonly response: AdmissionResponse
}

/** The apiserver rejects a review whose warnings are too long or too many; kubectl prints each on its own line. */
const MAX_WARNINGS = 32
const MAX_WARNING_LENGTH = 1024

function withWarnings(warnings: readonly string[]): { warnings?: readonly string[] } {
  if (warnings.length === 0) return {}
  return {
    warnings: warnings
      .slice(0, MAX_WARNINGS)
      .map((w) => (w.length > MAX_WARNING_LENGTH ? `${w.slice(0, MAX_WARNING_LENGTH - 1)}…` : w)),
  }
}

export function allowed(uid: string, warnings: readonly string[] = []): AdmissionResponse {
  return { uid, allowed: true, ...withWarnings(warnings) }
}

export function patched(uid: string, ops: readonly JsonPatchOp[], warnings: readonly string[] = []): AdmissionResponse {
  if (ops.length === 0) return allowed(uid, warnings)
  return {
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
    ...withWarnings(warnings),
  }
}

export function denied(uid: string, message: string, warnings: readonly string[] = []): AdmissionResponse {
  return { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message }, ...withWarnings(warnings) }
}

/** The request could not be handled: 400 for a malformed request, 500 for our own failure. */
export function errored(uid: string, code: 400 | 500, message: string): AdmissionResponse {
  return { uid, allowed: false, status: { code, reason: code === 400 ? 'BadRequest' : 'InternalError', message } }
}

/** A rule decision as a response; `patch: false` (the validating webhook) reports changes instead of making them. */
export function fromDecision(uid: string, decision: Decision, options: { patch: boolean }): AdmissionResponse {
  if (!decision.allowed) return denied(uid, decision.message, warningsOf(decision))
  if (options.patch) return patched(uid, decision.ops, warningsOf(decision))
  const required = decision.changes.find((c) => c.required)
  if (required) {
    return denied(uid, `nlb-guard's mutating webhook did not make a change this object needs: ${required.message}`, decision.hints)
  }
  return allowed(uid, [...decision.changes.map((c) => `nlb-guard would have ${c.message}`), ...decision.hints])
}

export function review(apiVersion: AdmissionVersion, response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion, kind: 'AdmissionReview', response }
}
