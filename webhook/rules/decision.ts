/**
 * What a rule answers: the object is allowed (possibly with JSON Patch operations, each change
 * explained), or denied with a message a person can act on. Rules build decisions; only the
 * admission layer turns them into AdmissionReview responses.
 */

export type RuleId = 'S1' | 'S2' | 'S3' | 'S4' | 'P1'

export interface JsonPatchOp {
  readonly op: 'add' | 'replace' | 'remove'
  readonly path: string
  readonly value?: unknown
}

/** One change made to the user's object, explained in plain words (kubectl prints it as a warning). */
export interface Change {
  readonly rule: RuleId
  readonly message: string
  /**
   * Whether the object is unsafe to store without this change. The validating webhook denies such
   * objects when the change is still missing (the mutating webhook did not run); other changes are
   * only reported there.
   */
  readonly required: boolean
}

export interface Allowed {
  readonly allowed: true
  readonly ops: readonly JsonPatchOp[]
  readonly changes: readonly Change[]
  /** Advice that changes nothing (S4, ratcheted problems). */
  readonly hints: readonly string[]
}

export interface Denied {
  readonly allowed: false
  readonly rule: RuleId
  readonly message: string
  readonly hints: readonly string[]
}

export type Decision = Allowed | Denied

export const NO_CHANGE: Allowed = Object.freeze({ allowed: true, ops: [], changes: [], hints: [] })

/** Every warning a response carries: each change, then each hint. */
export function warningsOf(decision: Decision): string[] {
  return decision.allowed ? [...decision.changes.map((c) => c.message), ...decision.hints] : [...decision.hints]
}
