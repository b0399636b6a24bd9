/**
 * The one retry policy: the delay starts at `initialMs`, doubles after each consecutive failure up
 * to `maxMs`, and each delay is stretched by a random part of up to `jitter` of itself, so replicas
 * that failed together (an apiserver restart) do not all retry in the same instant. The shape is
 * k8s.io/apimachinery's wait.Backoff (Duration, Factor 2, Jitter, Cap), which client-go's
 * reflectors use for the same reason.
 */
export interface RetryPolicy {
  readonly initialMs: number
  readonly maxMs: number
  /** Fraction of the delay added at random, 0–1 (default 0.2: a delay of 5 s becomes 5–6 s). */
  readonly jitter?: number
}

export interface Backoff {
  /** The delay before the next attempt, after a failure. */
  next(): number
  /** After a success: the next failure starts again from initialMs. */
  reset(): void
}

export function backoff(policy: RetryPolicy, random: () => number = Math.random): Backoff {
  const jitter = policy.jitter ?? 0.2
  let base = 0
  return {
    next() {
      base = base === 0 ? policy.initialMs : Math.min(base * 2, policy.maxMs)
      return Math.round(base * (1 + jitter * random()))
    },
    reset() {
      base = 0
    },
  }
}
