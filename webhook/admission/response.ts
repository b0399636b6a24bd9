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
  /**
   * Kept in the apiserver's audit log, each key prefixed with the webhook's name
   * (`services.nlb-guard.io/decision`). Keys must be qualified-name segments.
   */
  readonly auditAnnotations?: Readonly<Record<string, string>>
}

export interface AdmissionReviewResponse {
  readonly apiVersion: AdmissionVersion
  readonly kind: 'AdmissionReview'
  readonly response: AdmissionResponse
}

/**
 * What the apiserver keeps of a response's warnings (k8s.io/apiserver pkg/endpoints/filters/warning.go,
 * `recorder.AddWarning`; each webhook warning goes through it): identical texts once; all of them
 * whole while their total stays within 4,096 characters (runes); past that, every warning, earlier
 * ones too, is cut to 256 characters and those that no longer fit are dropped. nlb-guard's warnings
 * say what changed and why in more than 256 characters, so they are kept within the total here,
 * where the cut is ours: each at most MAX_WARNING_RUNES, and a last one saying how many were left out.
 */
export const WARNINGS_TOTAL_RUNES = 4096
export const MAX_WARNING_RUNES = 1024
/** The apiserver sends a denial's message back whole; this bounds it all the same (rules bound what they quote). */
export const MAX_MESSAGE_RUNES = 4096
/** Room kept for the note on left-out warnings, and the shortest cut worth sending instead of the note alone. */
const NOTE_RUNES = 120
const MIN_CUT_RUNES = 256

/** The text cut to at most `max` code points (an ellipsis included), never splitting a surrogate pair. */
export function capRunes(text: string, max: number): string {
  if (text.length <= max) return text
  let runes = 0
  let index = 0
  for (const char of text) {
    if (runes === max - 1) {
      return index + char.length >= text.length ? text : `${text.slice(0, index)}…`
    }
    runes++
    index += char.length
  }
  return text
}

function runeLength(text: string): number {
  let runes = 0
  for (const _ of text) runes++
  return runes
}

function leftOut(count: number): string {
  return `nlb-guard left out ${count} more warning${count === 1 ? '' : 's'}: the apiserver keeps ${WARNINGS_TOTAL_RUNES} characters of warnings per request.`
}

/** The warnings as the apiserver will keep them whole: within the total, each capped, the rest counted. */
export function boundedWarnings(warnings: readonly string[]): string[] {
  // A string has at least as many UTF-16 code units as runes: warnings short enough in code units
  // are kept whole by the loop below too, so the usual few need no counting rune by rune (it was
  // 5% of a Service admission's CPU time, bench/ profile).
  let units = 0
  for (const warning of warnings) units += warning.length > MAX_WARNING_RUNES ? Infinity : warning.length
  if (units <= WARNINGS_TOTAL_RUNES - NOTE_RUNES) return [...warnings]
  const kept: string[] = []
  let used = 0
  for (let i = 0; i < warnings.length; i++) {
    const text = capRunes(warnings[i] ?? '', MAX_WARNING_RUNES)
    const more = i < warnings.length - 1
    const budget = WARNINGS_TOTAL_RUNES - used - (more ? NOTE_RUNES : 0)
    const length = runeLength(text)
    if (length <= budget) {
      kept.push(text)
      used += length
      continue
    }
    if (budget >= MIN_CUT_RUNES) {
      kept.push(capRunes(text, budget))
      if (more) kept.push(leftOut(warnings.length - i - 1))
    } else {
      kept.push(leftOut(warnings.length - i))
    }
    break
  }
  return kept
}

function withWarnings(warnings: readonly string[]): { warnings?: readonly string[] } {
  if (warnings.length === 0) return {}
  return { warnings: boundedWarnings(warnings) }
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
  return { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: capRunes(message, MAX_MESSAGE_RUNES) }, ...withWarnings(warnings) }
}

/** The request could not be handled: 400 for a malformed request, 500 for our own failure. */
export function errored(uid: string, code: 400 | 500, message: string): AdmissionResponse {
  return { uid, allowed: false, status: { code, reason: code === 400 ? 'BadRequest' : 'InternalError', message: capRunes(message, MAX_MESSAGE_RUNES) } }
}

/** An audit annotation's value: the audit log is kept for months, so one admission adds little to it. */
export const MAX_AUDIT_VALUE_RUNES = 1024

/** What nlb-guard did to the object, for the audit log: the decision, the rules, and why. */
export function auditAnnotations(decision: 'mutated' | 'denied' | 'would-mutate' | 'would-deny', rules: readonly string[], why: string): Record<string, string> {
  return { decision, rules: [...new Set(rules)].join(','), [decision.endsWith('deny') || decision === 'denied' ? 'reason' : 'changes']: capRunes(why, MAX_AUDIT_VALUE_RUNES) }
}

/** A rule decision as a response; `patch: false` (the validating webhook) reports changes instead of making them. */
export function fromDecision(uid: string, decision: Decision, options: { patch: boolean }): AdmissionResponse {
  if (!decision.allowed) {
    return { ...denied(uid, decision.message, warningsOf(decision)), auditAnnotations: auditAnnotations('denied', [decision.rule], decision.message) }
  }
  if (options.patch) {
    const response = patched(uid, decision.ops, warningsOf(decision))
    if (response.patch === undefined) return response
    return { ...response, auditAnnotations: auditAnnotations('mutated', decision.changes.map((c) => c.rule), decision.changes.map((c) => c.message).join(' | ')) }
  }
  const required = decision.changes.find((c) => c.required)
  if (required) {
    const message = `nlb-guard's mutating webhook did not make a change this object needs: ${required.message}`
    return { ...denied(uid, message, decision.hints), auditAnnotations: auditAnnotations('denied', [required.rule], message) }
  }
  return allowed(uid, [...decision.changes.map((c) => `nlb-guard would have ${c.message}`), ...decision.hints])
}

export function review(apiVersion: AdmissionVersion, response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion, kind: 'AdmissionReview', response }
}
