import type { RuleId } from '../rules/decision.js'

/**
 * What the offline commands and `audit` report: one record per finding, the same for text, JSON and
 * GitHub output.
 *
 * - `change`: the rules would change the object (fix applies it);
 * - `deny`: the rules would refuse the object;
 * - `pending`: the object would be accepted but its load balancer never built (fix --split helps);
 * - `split`: fix --split rewrote the object as one Service per protocol;
 * - `missing-sidecar`: a running pod lacks the health-check sidecar the Pod rule would add (audit);
 * - `hint`: advice, not a finding (exit 0);
 * - `error`: the input could not be read (exit 3).
 */
export type Action = 'change' | 'deny' | 'pending' | 'split' | 'missing-sidecar' | 'hint' | 'error'

export interface Where {
  /** A path as given, `<stdin>`, or `cluster` for audit. */
  readonly file: string
  /** 1-based document in the file, when known. */
  readonly document?: number | undefined
  /** 0-based item of a List document. */
  readonly item?: number | undefined
  /** 1-based line where the object starts, when known. */
  readonly line?: number | undefined
  /** Helm's `# Source:` of the document. */
  readonly helmSource?: string | undefined
}

export interface ObjectId {
  readonly apiVersion?: string | undefined
  readonly kind: string
  readonly namespace?: string | undefined
  readonly name: string
}

export interface Finding {
  readonly where: Where
  /** Absent for a document that is not an object at all. */
  readonly object?: ObjectId | undefined
  readonly rule: RuleId | null
  readonly action: Action
  readonly message: string
}

/** Exit codes of fix, check and audit: documented in --help and README. */
export const EXIT = { clean: 0, findings: 1, usage: 2, input: 3 } as const

export function isFailure(action: Action): boolean {
  return action !== 'hint' && action !== 'error'
}

/** 3 when anything could not be read, else 1 when `failing` holds for any finding, else 0. */
export function exitCode(findings: readonly Finding[], failing: (finding: Finding) => boolean): number {
  if (findings.some((f) => f.action === 'error')) return EXIT.input
  return findings.some(failing) ? EXIT.findings : EXIT.clean
}
