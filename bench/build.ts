import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { copyFile, cp, mkdir, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/*
 * What the benchmark runs, built on demand: nlb-guard from dist/ (Node cannot strip-load our
 * sources, whose imports end in .js), and the controller-runtime peer as a Go binary kept in the
 * user's cache, outside the repository, keyed by its sources and the Go version.
 */

export const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const CLI = join(ROOT, 'dist/bundle/bin.js')

interface Exec {
  readonly code: number | null
  readonly output: string
}

export function exec(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

async function sourceFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return []
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')).map((e) => join(e.parentPath, e.name))
}

/** dist/ is stale when a source under webhook/ or certs/ is newer than its compiled .js or the bundle, or has none. */
async function staleSource(): Promise<string | undefined> {
  for (const dir of ['webhook', 'certs']) {
    for (const source of await sourceFiles(join(ROOT, dir))) {
      const compiled = join(ROOT, 'dist', relative(ROOT, source)).replace(/\.ts$/, '.js')
      if (!existsSync(compiled)) return relative(ROOT, source)
      const sourceTime = (await stat(source)).mtimeMs
      if ((await stat(compiled)).mtimeMs < sourceTime || (await stat(CLI)).mtimeMs < sourceTime) return relative(ROOT, source)
    }
  }
  return undefined
}

/** Runs `npm run build` (tsc, then the esbuild bundle the image ships) when dist/ is missing or older than the sources. */
export async function ensureDist(log: (line: string) => void): Promise<void> {
  const stale = existsSync(CLI) ? await staleSource() : 'dist/bundle/bin.js missing'
  if (stale === undefined) return
  log(`building dist/ (${stale}): npm run build`)
  const result = await exec('npm', ['run', '--silent', 'build'])
  if (result.code !== 0) throw new Error(`npm run build failed:\n${result.output}`)
}

/**
 * A copy of dist/ (with package.json, and node_modules linked) in `dir`, so that a rebuild during
 * the run, by a test or a colleague, cannot change what later rounds measure. Returns its CLI.
 */
export async function snapshotDist(dir: string): Promise<string> {
  await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'))
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return join(dir, 'dist/bundle/bin.js')
}

export function cacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'nlb-guard', 'bench')
}

export type GoPeer = { readonly binary: string; readonly goVersion: string } | { readonly missing: string }

/** Builds bench/controller-runtime once per change of its sources or of Go; later runs reuse the binary. */
export async function ensureGoPeer(log: (line: string) => void): Promise<GoPeer> {
  let goVersion: string
  try {
    const version = await exec('go', ['env', 'GOVERSION'])
    if (version.code !== 0) return { missing: `go env GOVERSION failed: ${version.output.trim()}` }
    goVersion = version.output.trim()
  } catch {
    return { missing: 'go is not installed' }
  }
  const dir = join(ROOT, 'bench/controller-runtime')
  const hash = createHash('sha256').update(goVersion)
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(file).update(await readFile(join(dir, file)))
  const binary = join(cacheDir(), `crbench-${hash.digest('hex').slice(0, 16)}`)
  if (existsSync(binary)) return { binary, goVersion }
  log(`building the controller-runtime peer with ${goVersion} into ${binary} (the first build downloads modules: minutes)`)
  await mkdir(cacheDir(), { recursive: true })
  const partial = `${binary}.${process.pid}.tmp`
  const build = await exec('go', ['build', '-trimpath', '-o', partial, '.'], { cwd: dir })
  if (build.code !== 0) return { missing: `go build failed: ${build.output.trim().slice(-1500)}` }
  await rename(partial, binary)
  return { binary, goVersion }
}

export interface Baseline {
  /** The ref as given (`main`, a tag, a commit). */
  readonly ref: string
  readonly commit: string
  /** Its dist/bundle/bin.js. */
  readonly cli: string
}

/**
 * nlb-guard as it was at `ref`, for before/after figures from one run: the commit's files (git
 * archive, no worktree registered) in a folder under the temp dir keyed by the commit, built with
 * `npm run build` against this checkout's node_modules. Kept for later runs: a commit never changes.
 */
export async function buildBaseline(ref: string, log: (line: string) => void): Promise<Baseline> {
  const parsed = await exec('git', ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])
  if (parsed.code !== 0) throw new Error(`--baseline ${ref}: not a commit: ${parsed.output.trim()}`)
  const commit = parsed.output.trim()
  const dir = join(tmpdir(), `nlb-guard-bench-baseline-${commit.slice(0, 12)}`)
  const cli = join(dir, 'dist/bundle/bin.js')
  if (existsSync(cli)) return { ref, commit, cli }
  log(`building the baseline ${ref} (${commit.slice(0, 12)}) in ${dir}`)
  const partial = `${dir}.${process.pid}.tmp`
  await rm(partial, { recursive: true, force: true })
  await mkdir(partial, { recursive: true })
  const unpacked = await exec('sh', ['-c', 'git archive --format=tar "$1" | tar -x -C "$2"', 'sh', commit, partial])
  if (unpacked.code !== 0) throw new Error(`git archive ${commit} failed: ${unpacked.output}`)
  const lock = await exec('git', ['diff', '--quiet', commit, '--', 'package-lock.json'])
  if (lock.code !== 0) log(`  note: package-lock.json differs at ${ref}: built against this checkout's node_modules all the same`)
  await symlink(join(ROOT, 'node_modules'), join(partial, 'node_modules'), 'dir')
  const built = await exec('npm', ['run', '--silent', 'build'], { cwd: partial })
  if (built.code !== 0) throw new Error(`npm run build of ${ref} failed:\n${built.output.slice(-3000)}`)
  await rm(dir, { recursive: true, force: true })
  await rename(partial, dir)
  return { ref, commit, cli }
}
