import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/*
 * Where nlb-guard's CPU goes under load: a V8 CPU profile (`node --cpu-prof`) of one server process
 * answering one body closed-loop, summarised as the functions that take the most of its busy time,
 * alone (self) and with everything they call (inclusive). The bundle esbuild makes keeps a comment
 * naming each source module above its code (`// node_modules/pino/lib/proto.js`), so a frame is named
 * by the module it came from, not by a line of a 1.7 MB chunk.
 */

/** The parts of a `.cpuprofile` (Chrome DevTools Profiler.Profile) read here. */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
    readonly children?: readonly number[]
  }>
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface ProfileFrame {
  /** `functionName (module:line)`, line 1-based in the module's source where it is known. */
  readonly frame: string
  /** Share of the busy (non-idle) time spent in this function itself. */
  readonly self: number
  /** Share of the busy time with this function on the stack. */
  readonly inclusive: number
}

export interface ProfileSummary {
  readonly body: string
  /** Sampled time, and the share of it the process was idle (waiting for requests). */
  readonly sampledMs: number
  readonly idle: number
  /** Shares of the busy time in V8's own pseudo-frames: GC, and compiled code outside any function. */
  readonly gc: number
  readonly topSelf: readonly ProfileFrame[]
  readonly topInclusive: readonly ProfileFrame[]
}

/** Names a bundle's (or a module's) line: the source module the esbuild comment above it names. */
export class FrameNamer {
  readonly #modules = new Map<string, Array<{ readonly line: number; readonly module: string }>>()

  where(url: string, line: number): string {
    if (url === '') return ''
    if (url.startsWith('node:')) return url
    if (!url.startsWith('file://')) return basename(url)
    let marks = this.#modules.get(url)
    if (marks === undefined) {
      marks = []
      const path = fileURLToPath(url)
      if (existsSync(path)) {
        const lines = readFileSync(path, 'utf8').split('\n')
        for (let i = 0; i < lines.length; i++) {
          const match = /^\/\/ ((?:dist|node_modules)\/\S+\.[cm]?js)$/.exec(lines[i] ?? '')
          if (match?.[1] !== undefined) marks.push({ line: i, module: match[1].replace(/^dist\//, '').replace(/\.js$/, '.ts').replace(/^(node_modules\/.*)\.ts$/, '$1.js') })
        }
      }
      this.#modules.set(url, marks)
    }
    let found: { readonly line: number; readonly module: string } | undefined
    for (const mark of marks) {
      if (mark.line > line) break
      found = mark
    }
    // Outside the bundle (client-node is external): the package path from node_modules on.
    const path = fileURLToPath(url)
    const fromModules = path.lastIndexOf('node_modules/')
    if (found === undefined) return fromModules >= 0 ? `${path.slice(fromModules)}:${line + 1}` : `${basename(path)}:${line + 1}`
    return `${found.module}:+${line - found.line}`
  }
}

const PSEUDO = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

/**
 * Where the measured load starts: `windowMs` before the last sample. The bench stops the server
 * as soon as the load ends, so the start of the process (module compilation) and the warm-up
 * before the load stay out of the figures.
 */
export function loadStart(profile: CpuProfile, windowMs: number): number {
  let fromEnd = 0
  for (let i = profile.samples.length - 1; i >= 0; i--) {
    fromEnd += profile.timeDeltas[i + 1] ?? 0
    if (fromEnd > windowMs * 1000) return i + 1
  }
  return 0
}

/** The `top` functions by self and by inclusive share of the busy time, over the last `windowMs` (loadStart). */
export function summariseProfile(profile: CpuProfile, body: string, options: { readonly top?: number; readonly windowMs?: number; readonly namer?: FrameNamer } = {}): ProfileSummary {
  const top = options.top ?? 15
  const namer = options.namer ?? new FrameNamer()
  const parent = new Map<number, number>()
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const frameOf = new Map<number, string>()
  const name = (id: number): string => {
    let frame = frameOf.get(id)
    if (frame === undefined) {
      const { functionName, url, lineNumber } = (byId.get(id) as CpuProfile['nodes'][number]).callFrame
      const where = namer.where(url, lineNumber)
      frame = `${functionName || '(anonymous)'}${where === '' ? '' : ` (${where})`}`
      frameOf.set(id, frame)
    }
    return frame
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let idle = 0
  let gc = 0
  let total = 0
  // A sample's stack: the frames from its node up to the root, each counted once (recursion).
  const stacks = new Map<number, readonly string[]>()
  const first = options.windowMs === undefined ? 0 : loadStart(profile, options.windowMs)
  for (let i = first; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0)
    total += delta
    const leaf = name(id)
    if (leaf === '(idle)') {
      idle += delta
      continue
    }
    if (leaf === '(garbage collector)') gc += delta
    self.set(leaf, (self.get(leaf) ?? 0) + delta)
    let stack = stacks.get(id)
    if (stack === undefined) {
      const frames = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) frames.add(name(at))
      stack = [...frames]
      stacks.set(id, stack)
    }
    for (const frame of stack) inclusive.set(frame, (inclusive.get(frame) ?? 0) + delta)
  }
  const busy = total - idle
  const share = (micros: number) => (busy > 0 ? micros / busy : 0)
  const ranked = (map: Map<string, number>) =>
    [...map.entries()]
      .filter(([frame]) => !PSEUDO.has(frame))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame]) => ({ frame, self: share(self.get(frame) ?? 0), inclusive: share(inclusive.get(frame) ?? 0) }))
  return { body, sampledMs: total / 1000, idle: total > 0 ? idle / total : 0, gc: share(gc), topSelf: ranked(self), topInclusive: ranked(inclusive) }
}

/** The one `.cpuprofile` a process wrote into `dir`. */
export async function readProfile(dir: string): Promise<CpuProfile> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`)
  return JSON.parse(await readFile(join(dir, files[0] as string), 'utf8')) as CpuProfile
}

/** A fresh folder for one process's profile. */
export async function profileDir(workDir: string, name: string): Promise<string> {
  const dir = join(workDir, 'profiles', name)
  await mkdir(dir, { recursive: true })
  return dir
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`

/** The summary as text: one table per ranking. */
export function profileText(summary: ProfileSummary): string[] {
  const width = Math.max(...[...summary.topSelf, ...summary.topInclusive].map((f) => f.frame.length), 10)
  const row = (f: ProfileFrame) => `    ${percent(f.self).padStart(6)} ${percent(f.inclusive).padStart(6)}  ${f.frame.padEnd(width)}`
  return [
    `  ${summary.body}: ${(summary.sampledMs / 1000).toFixed(1)} s sampled, ${percent(1 - summary.idle)} busy; shares of the busy time (GC ${percent(summary.gc)})`,
    '    self   incl.  by self',
    ...summary.topSelf.map(row),
    '    self   incl.  by inclusive',
    ...summary.topInclusive.map(row),
  ]
}

/** The summary as markdown: the top frames by self and by inclusive share side by side. */
export function profileMarkdown(summary: ProfileSummary): string[] {
  const rows = Math.max(summary.topSelf.length, summary.topInclusive.length)
  const cell = (f: ProfileFrame | undefined, pick: 'self' | 'inclusive') => (f === undefined ? '| | ' : `| \`${f.frame.replace(/\|/g, '\\|')}\` | ${percent(f[pick])} `)
  return [
    `${summary.body}: ${(summary.sampledMs / 1000).toFixed(1)} s sampled, ${percent(1 - summary.idle)} of it busy; shares of the busy time (garbage collection: ${percent(summary.gc)}).`,
    '',
    '| by self time | self | by inclusive time | inclusive |',
    '|---|---:|---|---:|',
    ...Array.from({ length: rows }, (_, i) => `${cell(summary.topSelf[i], 'self')}${cell(summary.topInclusive[i], 'inclusive')}|`),
  ]
}
