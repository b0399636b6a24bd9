import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { CertificateAndKey } from './issue.js'
import type { Log } from './serving.js'
import { errorMessage } from '../lib/errors.js'

export interface CertificateFileWatchOptions {
  readonly certFile: string
  readonly keyFile: string
  /** The pair being served now, so that only a change is applied. */
  readonly initial: CertificateAndKey
  /** Puts a new pair into service; throws to refuse it (the old one then stays). */
  readonly apply: (pair: CertificateAndKey) => void
  readonly log: Log
  /** Quiet time after the last change event before the files are read. */
  readonly debounceMs?: number
  /** A full re-read this often, for filesystems whose change events do not reach us. */
  readonly pollMs?: number
}

export interface CertificateFileWatch {
  /** Re-reads both files now and applies them if they changed. */
  reload(): Promise<void>
  close(): void
}

// The kubelet swaps a Secret volume with three renames in a row (`..data_tmp` over `..data`), and
// cert-manager's csi driver or an editor write files in a few steps: 250 ms lets a burst settle.
const DEFAULT_DEBOUNCE_MS = 250

// controller-runtime's certwatcher re-reads every 10 s as its safety net; the inotify events make
// reloads prompt, so this only covers the filesystems (some network mounts) that never send any.
const DEFAULT_POLL_MS = 60_000

/**
 * Watches the serving certificate and key files and applies a changed pair.
 *
 * The directories are watched, not the files: in a Secret volume `tls.crt` is a symlink to
 * `..data/tls.crt` and an update renames a new `..data` symlink into place, which changes the
 * directory but never the inode a file watch would hold. Both files are re-read together and must
 * match (a half-written pair is refused and the next event retries); on any failure the current
 * certificate stays and a line is logged.
 */
export function watchCertificateFiles(options: CertificateFileWatchOptions): CertificateFileWatch {
  const { certFile, keyFile, apply, log } = options
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS
  let served = options.initial
  let refused: string | undefined
  let debounce: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let again = false
  let closed = false

  const reloadOnce = async (): Promise<void> => {
    let pair: CertificateAndKey
    try {
      const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')])
      pair = { certPem, keyPem }
    } catch (error: unknown) {
      log.warn({ certFile, keyFile, reason: errorMessage(error) }, 'cannot read the certificate files; keeping the current certificate')
      return
    }
    if (closed || (pair.certPem === served.certPem && pair.keyPem === served.keyPem)) return
    // The poll re-reads refused files every minute: the same bytes are refused (and said) once.
    const fingerprint = pair.certPem + pair.keyPem
    if (fingerprint === refused) return
    try {
      apply(pair)
      served = pair
      refused = undefined
    } catch (error: unknown) {
      refused = fingerprint
      log.warn({ certFile, keyFile, reason: errorMessage(error) }, 'the certificate files changed but cannot be used; keeping the current certificate')
    }
  }

  const reload = (): Promise<void> => {
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          await reloadOnce()
        } while (again && !closed)
      } finally {
        running = undefined
      }
    })()
    return running
  }

  const schedule = (): void => {
    if (closed) return
    clearTimeout(debounce)
    debounce = setTimeout(() => void reload(), debounceMs)
    debounce.unref()
  }

  const watchers: FSWatcher[] = []
  for (const directory of new Set([dirname(certFile), dirname(keyFile)])) {
    try {
      const watcher = watch(directory, { persistent: false }, schedule)
      watcher.on('error', (error: unknown) => {
        log.warn({ directory, reason: errorMessage(error) }, 'watching the certificate directory failed; re-reading it periodically instead')
        watcher.close()
      })
      watchers.push(watcher)
    } catch (error: unknown) {
      log.warn({ directory, reason: errorMessage(error) }, 'cannot watch the certificate directory; re-reading it periodically instead')
    }
  }
  const poll = setInterval(() => void reload(), options.pollMs ?? DEFAULT_POLL_MS)
  poll.unref()

  return {
    reload,
    close() {
      closed = true
      clearTimeout(debounce)
      clearInterval(poll)
      for (const watcher of watchers) watcher.close()
    },
  }
}

