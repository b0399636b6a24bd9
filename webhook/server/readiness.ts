/**
 * Readiness as a set of named checks. A check returns null when satisfied, or why not. The server
 * is ready only when every check passes and it is not shutting down.
 */
export class Readiness {
  private readonly checks = new Map<string, () => string | null>()
  private shuttingDown = false

  add(name: string, check: () => string | null): void {
    this.checks.set(name, check)
  }

  /** After SIGTERM: report not ready so endpoints drop this pod, while requests are still served. */
  startShutdown(): void {
    this.shuttingDown = true
  }

  reasons(): string[] {
    const reasons = this.shuttingDown ? ['shutting down'] : []
    for (const [name, check] of this.checks) {
      const reason = check()
      if (reason !== null) reasons.push(`${name}: ${reason}`)
    }
    return reasons
  }
}
