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
  /** Retry this often while the version is still unknown. */
  readonly retryMs: number
  readonly onChange: (version: KubeVersion) => void
  readonly onError: (error: unknown, known: KubeVersion | undefined) => void
  /** Runs after every successful read, changed or not, before the next one is scheduled. */
  readonly afterRefresh?: ((version: KubeVersion) => Promise<void>) | undefined
}

/** Reads the version now and then; keeps the last known one when a refresh fails. */
export function polledVersion(options: PolledVersionOptions): VersionSource {
  let known: KubeVersion | undefined
  let timer: NodeJS.Timeout | undefined
  let stopped = false

  const poll = async (): Promise<void> => {
    let read: KubeVersion | undefined
    try {
      read = parseKubeVersion(await options.fetch())
      if (known?.text !== read.text) {
        known = read
        options.onChange(read)
      }
    } catch (error: unknown) {
      options.onError(error, known)
    }
    if (read !== undefined) await options.afterRefresh?.(read)
    if (!stopped) {
      timer = setTimeout(() => void poll(), known === undefined ? options.retryMs : options.refreshMs)
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
