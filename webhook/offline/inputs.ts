import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { text as readStream } from 'node:stream/consumers'
import type { Finding } from './findings.js'
import type { ManifestSource } from './manifests.js'
import { errorMessage } from '../../lib/errors.js'

/** kubectl -f DIR reads these (k8s.io/cli-runtime resource.FileExtensions); a file named directly is read whatever its name. */
const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/i

export interface Inputs {
  readonly sources: ManifestSource[]
  /** Paths that could not be read, as `error` findings. */
  readonly errors: Finding[]
}

/**
 * Reads what `-f`/positional arguments name, as kubectl does: a file; a directory's manifest files
 * (in name order; with `recursive`, its subdirectories' too); `-` for stdin, read once.
 */
export async function readInputs(paths: readonly string[], recursive: boolean, stdin: NodeJS.ReadableStream): Promise<Inputs> {
  const sources: ManifestSource[] = []
  const errors: Finding[] = []
  let stdinRead = false
  const fail = (file: string, message: string): void => {
    errors.push({ where: { file }, rule: null, action: 'error', message })
  }
  const visit = async (path: string, top: boolean): Promise<void> => {
    let info
    try {
      info = await stat(path)
    } catch (error: unknown) {
      fail(path, `${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : errorMessage(error)}`)
      return
    }
    if (info.isDirectory()) {
      if (!top && !recursive) return
      let entries
      try {
        entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      } catch (error: unknown) {
        fail(path, `a directory that cannot be listed: ${errorMessage(error)}`)
        return
      }
      for (const entry of entries) {
        const child = join(path, entry.name)
        if (entry.isDirectory()) {
          if (recursive) await visit(child, false)
        } else if (MANIFEST_EXTENSIONS.test(entry.name)) {
          await visit(child, false)
        }
      }
      return
    }
    try {
      sources.push({ name: path, text: await readFile(path, 'utf8') })
    } catch (error: unknown) {
      fail(path, errorMessage(error))
    }
  }
  for (const path of paths.length === 0 ? ['-'] : paths) {
    if (path !== '-') {
      await visit(path, true)
    } else if (!stdinRead) {
      stdinRead = true
      sources.push({ name: '<stdin>', text: await readStream(stdin) })
    }
  }
  return { sources, errors }
}
