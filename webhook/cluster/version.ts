import { backoff, type RetryPolicy } from '../../lib/retry.js'
import type { KubeVersion } from '../rules/version.js'
import { parseKubeVersion } from '../rules/version.js'

/** Where the rules get the cluster's version: fixed by configuration, or read from the cluster. */
export interface VersionSource {
  current(): KubeVersion | undefined
  readonly origin: 'override' | 'cluster'
  start(): void
  stop(): void
}

export function fixedVersion(version: KubeVersion): VersionSource {
  return { current: () => version, origin: 'override', start() {}, stop() {} }
}

export interface PolledVersionOptions {
  /** Returns `gitVersion` from the cluster's `/version`. */
  readonly fetch: () => Promise<string>
  /** Upgrades happen under a running webhook: refresh this often once known. */
  readonly refreshMs: number
  /** How soon to try again while the version is still unknown. */
  readonly retry: RetryPolicy
  readonly onChange: (version: KubeVersion) => void
  /** `retryInMs`: when the next attempt is. */
  readonly onError: (error: unknown, known: KubeVersion | undefined, retryInMs: number) => void
  /** Runs after every successful read, changed or not, before the next one is scheduled. */
  readonly afterRefresh?: ((version: KubeVersion) => Promise<void>) | undefined
}

/** Reads the version now and then; keeps the last known one when a refresh fails. */
export function polledVersion(options: PolledVersionOptions): VersionSource {
  let known: KubeVersion | undefined
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const retries = backoff(options.retry)

  const poll = async (): Promise<void> => {
    let delay = options.refreshMs
    let read: KubeVersion | undefined
    try {
      read = parseKubeVersion(await options.fetch())
      retries.reset()
      if (known?.text !== read.text) {
        known = read
        options.onChange(read)
      }
    } catch (error: unknown) {
      if (known === undefined) delay = retries.next()
      options.onError(error, known, delay)
    }
    if (read !== undefined) await options.afterRefresh?.(read)
    if (!stopped) {
      timer = setTimeout(() => void poll(), delay)
      timer.unref()
    }
  }

  return {
    current: () => known,
    origin: 'cluster',
    start: () => void poll(),
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
