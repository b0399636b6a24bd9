import { execFile, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { freePort } from '../testkit/net.ts'
import { HELP_FLAG, optionsText, parseFlags, reportUsageError, UsageError, type Flags } from '../lib/args.ts'

/*
 * The health-check sidecar's figures: what every UDP pod pays for it. Self-contained: `npm run
 * bench` calls benchSidecar() once, and `node bench/sidecar.ts [--quick]` runs it alone (CI's smoke
 * test, test/bench/sidecar.test.ts, runs --quick). A full run writes bench/sidecar-results.json and
 * .md and puts the markdown in README.md between the sidecar markers. The image is the Dockerfile's
 * `sidecar` target; without a Docker engine its size is computed from the files that target copies
 * into its one layer.
 */

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..')

/**
 * The environment the Pod rule gives the injected container (webhook/rules/pod.ts SIDECAR_ENV;
 * test/bench/sidecar.test.ts keeps the two equal): the figures are measured as it runs in a pod.
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { GOMAXPROCS: '1', GOGC: '50', GOMEMLIMIT: '6MiB' }

/**
 * The previous sidecar, `nlb-guard healthcheck` on Node 24 in nlb-guard's own image (TypeScript,
 * removed in 0.1.0), measured with this module (5 trials, 2,000 probes) on 2026-12-01 just before
 * its removal, run as its image ran it (`node --max-semi-space-size=4 dist/bundle/bin.js healthcheck`).
 * Its image's own files: the `node` binary 126.6 MB, production node_modules 95.9 MB, the bundle
 * 3.5 MB, on top of the node:24-bookworm-slim Debian base.
 */
export const PREVIOUS_SIDECAR = {
  name: '`nlb-guard healthcheck` (Node 24)',
  rssIdleMiB: 60.61,
  rssUnderProbesMiB: 73.66,
  startMs: 439.6,
  binaryBytes: 126_595_440,
  imageNote: '226 MB of its own files + the Debian base',
}

export interface SidecarFigures {
  readonly binary: string
  readonly binaryBytes: number
  /** The target's layer as a tar (512-byte header and padding per file), and gzipped as a registry stores it. */
  readonly image: { readonly files: ReadonlyArray<{ path: string; bytes: number }>; readonly layerBytes: number; readonly gzipBytes: number }
  readonly env: Readonly<Record<string, string>>
  /** spawn → the first TCP probe accepted, with the UDP socket already bound. */
  readonly startMs: { readonly samples: number[]; readonly median: number }
  readonly rssIdleMiB: { readonly samples: number[]; readonly median: number }
  readonly probes: number
  readonly probeErrors: number
  /** The highest VmRSS sampled every 5 ms while the probes arrive, and VmRSS after them. */
  readonly rssUnderProbesMiB: number
  readonly rssAfterProbesMiB: number
  readonly rssAnonAfterProbesMiB: number
  readonly targets: ReadonlyArray<{ readonly target: string; readonly measured: string; readonly pass: boolean }>
}

export interface SidecarSettings {
  readonly trials: number
  readonly probes: number
  /** Milliseconds between start and the idle RSS reading. */
  readonly settleMs: number
  /** Core the sidecar is pinned to (taskset), when given. */
  readonly cpu?: number
}

export const FULL: SidecarSettings = { trials: 5, probes: 2000, settleMs: 1000 }
export const QUICK: SidecarSettings = { trials: 1, probes: 200, settleMs: 200 }

/** Builds the binary with the script `npm run sidecar:build` runs (cached) and returns its path. */
export async function buildSidecar(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [join(ROOT, 'sidecar/build.sh')], { maxBuffer: 1 << 20 })
  return stdout.trim().split('\n').at(-1) ?? ''
}

export async function measureSidecar(settings: SidecarSettings, binary?: string): Promise<SidecarFigures> {
  const path = binary ?? (await buildSidecar())
  const binaryBytes = (await stat(path)).size
  const image = await imageLayer(path)
  const startSamples: number[] = []
  const idleSamples: number[] = []
  let underProbes = 0
  let after = { rss: 0, anon: 0 }
  let probeErrors = 0
  for (let trial = 0; trial < settings.trials; trial++) {
    const run = await startOnce(path, settings)
    try {
      startSamples.push(run.startMs)
      await new Promise((resolve) => setTimeout(resolve, settings.settleMs))
      idleSamples.push(mib(status(run.pid, 'VmRSS')))
      if (trial === 0) {
        let peak = 0
        const sampler = setInterval(() => (peak = Math.max(peak, status(run.pid, 'VmRSS'))), 5)
        probeErrors = await probe(run.port, settings.probes)
        clearInterval(sampler)
        after = { rss: status(run.pid, 'VmRSS'), anon: status(run.pid, 'RssAnon') }
        underProbes = mib(Math.max(peak, after.rss))
      }
    } finally {
      await run.stop()
    }
  }
  const rssIdle = median(idleSamples)
  const figures = {
    binary: path,
    binaryBytes,
    image,
    env: SIDECAR_ENV,
    startMs: { samples: startSamples, median: median(startSamples) },
    rssIdleMiB: { samples: idleSamples, median: rssIdle },
    probes: settings.probes,
    probeErrors,
    rssUnderProbesMiB: underProbes,
    rssAfterProbesMiB: mib(after.rss),
    rssAnonAfterProbesMiB: mib(after.anon),
  }
  return {
    ...figures,
    targets: [
      { target: 'sidecar RSS ≤ 2 MiB (idle and under probes)', measured: `${rssIdle.toFixed(2)} MiB idle, ${underProbes.toFixed(2)} MiB under ${settings.probes.toLocaleString('en')} probes`, pass: Math.max(rssIdle, underProbes) <= 2 },
      { target: 'sidecar image ≤ 10 MB', measured: `${(image.layerBytes / 1e6).toFixed(2)} MB (${(image.gzipBytes / 1e6).toFixed(2)} MB gzipped)`, pass: image.layerBytes <= 10e6 },
    ],
  }
}

/** The files of the Dockerfile's `sidecar` stage: what its COPY instructions put in its one layer. */
async function imageLayer(binary: string): Promise<SidecarFigures['image']> {
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
  const stage = /^FROM\s+\S+\s+AS\s+sidecar\s*$([\s\S]*?)(?=^FROM\s|(?![\s\S]))/im.exec(dockerfile)?.[1] ?? ''
  const copies = [...stage.matchAll(/^COPY\s+--from=sidecar-build\s+(\S+)\s+(\S+)\s*$/gm)]
  if (copies.length === 0) throw new Error('the Dockerfile has no `sidecar` stage copying from sidecar-build')
  // The only file the build stage makes is the binary; anything else copied would need a size here.
  const files = copies.map(([, , dest]) => ({ path: dest ?? '', bytes: readFileSync(binary).length }))
  const layerBytes = files.reduce((sum, f) => sum + 512 + Math.ceil(f.bytes / 512) * 512, 1024)
  const gzipBytes = gzipSync(readFileSync(binary), { level: 6 }).length
  return { files, layerBytes, gzipBytes }
}

interface Running {
  readonly pid: number
  readonly port: number
  readonly startMs: number
  stop(): Promise<void>
}

async function startOnce(binary: string, settings: SidecarSettings): Promise<Running> {
  const port = await freePort()
  const udp = createSocket('udp4')
  await new Promise<void>((resolve) => udp.bind(port, '0.0.0.0', resolve))
  const args = ['--port', String(port)]
  const command = settings.cpu === undefined ? [binary, ...args] : ['taskset', '-c', String(settings.cpu), binary, ...args]
  const begun = performance.now()
  const child = spawn(command[0] ?? binary, command.slice(1), { env: { ...process.env, ...SIDECAR_ENV }, stdio: ['ignore', 'ignore', 'ignore'] })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode} at start`)
    if ((await tcpConnect(port)) === 'accepted') break
  }
  const startMs = performance.now() - begun
  return {
    pid: child.pid as number,
    port,
    startMs,
    async stop() {
      child.kill('SIGTERM')
      await exited
      udp.close()
    },
  }
}

/** `probes` TCP connections, 8 at a time, as NLB health checks arrive; returns how many failed. */
async function probe(port: number, probes: number): Promise<number> {
  let next = 0
  let errors = 0
  const worker = async () => {
    while (next < probes) {
      next++
      if ((await tcpConnect(port)) !== 'accepted') errors++
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  return errors
}

function tcpConnect(port: number): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve('accepted')
    })
    socket.once('error', () => resolve('refused'))
  })
}

function status(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN)
}

const mib = (kib: number) => Math.round((kib / 1024) * 100) / 100

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** Markdown rows for the README's Performance section: this sidecar beside the previous one. */
export function sidecarMarkdown(figures: SidecarFigures): string {
  const p = PREVIOUS_SIDECAR
  const row = (figure: string, now: string, before: string) => `| ${figure} | ${now} | ${before} |`
  return [
    `| health-check sidecar | \`nlb-guard-healthcheck\` (Go, static) | ${p.name} |`,
    '|---|---:|---:|',
    row('RSS idle (1 s after start, median)', `${figures.rssIdleMiB.median.toFixed(2)} MiB`, `${p.rssIdleMiB.toFixed(1)} MiB`),
    row(`RSS while ${figures.probes.toLocaleString('en')} TCP probes arrive (peak)`, `${figures.rssUnderProbesMiB.toFixed(2)} MiB`, `${p.rssUnderProbesMiB.toFixed(1)} MiB`),
    row('start to first accepted probe (median)', `${figures.startMs.median.toFixed(1)} ms`, `${p.startMs.toFixed(0)} ms`),
    row('binary', `${(figures.binaryBytes / 1e6).toFixed(2)} MB`, `${(p.binaryBytes / 1e6).toFixed(0)} MB (\`node\`)`),
    row('image (its layers\' files)', `${(figures.image.layerBytes / 1e6).toFixed(2)} MB (${(figures.image.gzipBytes / 1e6).toFixed(2)} MB gzipped)`, p.imageNote),
    '',
    `Measured on ${new Date().toISOString().slice(0, 10)} with ${Object.entries(figures.env).map(([k, v]) => `${k}=${v}`).join(' ')} (the injected container's environment); ${figures.probeErrors} of ${figures.probes.toLocaleString('en')} probes failed; private memory after them ${figures.rssAnonAfterProbesMiB.toFixed(2)} MiB.`,
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...figures.targets.map((t) => `| ${t.target} | ${t.measured} | ${t.pass ? 'PASS' : 'MISS'} |`),
  ].join('\n')
}

export function sidecarText(figures: SidecarFigures): string {
  return [
    `sidecar: ${figures.binary}`,
    `  binary ${figures.binaryBytes.toLocaleString('en')} bytes; image layer ${figures.image.layerBytes.toLocaleString('en')} bytes (${figures.image.gzipBytes.toLocaleString('en')} gzipped)`,
    `  start to first accepted probe: ${figures.startMs.samples.map((v) => v.toFixed(1)).join(', ')} ms (median ${figures.startMs.median.toFixed(1)})`,
    `  RSS idle: ${figures.rssIdleMiB.samples.join(', ')} MiB; under ${figures.probes} probes (${figures.probeErrors} failed): peak ${figures.rssUnderProbesMiB} MiB, after ${figures.rssAfterProbesMiB} MiB (private ${figures.rssAnonAfterProbesMiB} MiB)`,
    ...figures.targets.map((t) => `  ${t.pass ? 'PASS' : 'MISS'} ${t.target}: ${t.measured}`),
    '',
  ].join('\n')
}

export const SIDECAR_README_MARKERS = { begin: '<!-- bench:sidecar:begin -->', end: '<!-- bench:sidecar:end -->' } as const

/** The README with `markdown` between the sidecar markers and nothing else changed; undefined without them. */
export function withSidecarResults(readme: string, markdown: string): string | undefined {
  const begin = readme.indexOf(SIDECAR_README_MARKERS.begin)
  const end = readme.indexOf(SIDECAR_README_MARKERS.end)
  if (begin < 0 || end < begin) return undefined
  return `${readme.slice(0, begin + SIDECAR_README_MARKERS.begin.length)}\n${markdown.trimEnd()}\n${readme.slice(end)}`
}

export const DEFAULT_OUT = join(ROOT, 'bench/sidecar-results.json')

/**
 * Measures, prints, writes `out` (JSON) and its .md; a full run to the default output also rewrites
 * the README's sidecar figures. The hook `npm run bench` calls.
 */
export async function benchSidecar(options: { quick: boolean; out?: string; cpu?: number; binary?: string; log?: (line: string) => void }): Promise<SidecarFigures> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const settings = { ...(options.quick ? QUICK : FULL), ...(options.cpu === undefined ? {} : { cpu: options.cpu }) }
  log(`sidecar: ${settings.trials} start(s), ${settings.probes} probes`)
  const figures = await measureSidecar(settings, options.binary)
  const markdown = `${sidecarMarkdown(figures)}\n`
  log(sidecarText(figures).trimEnd())
  // A quick run writes only where it is told to: its figures must not replace a full run's.
  const out = options.out ?? (options.quick ? undefined : DEFAULT_OUT)
  if (out === undefined) return figures
  await writeFile(out, `${JSON.stringify({ mode: options.quick ? 'quick' : 'full', measuredAt: new Date().toISOString(), ...figures }, null, 2)}\n`)
  await writeFile(`${out.replace(/\.json$/, '')}.md`, markdown)
  if (!options.quick && out === DEFAULT_OUT && options.binary === undefined) {
    const file = join(ROOT, 'README.md')
    const updated = withSidecarResults(await readFile(file, 'utf8'), markdown)
    if (updated !== undefined) await writeFile(file, updated)
    log(updated === undefined ? `README.md has no ${SIDECAR_README_MARKERS.begin} markers: not updated` : "updated the sidecar's figures in README.md")
  }
  return figures
}

const SIDECAR_FLAGS = {
  quick: { type: 'boolean', help: 'a seconds-long smoke run' },
  binary: { type: 'string', value: 'FILE', help: 'the sidecar binary to measure (default: built as npm run sidecar:build does)' },
  out: { type: 'string', value: 'FILE', help: 'results JSON (markdown beside it)' },
  help: HELP_FLAG,
} as const satisfies Flags

const SIDECAR_USAGE = `Usage: node bench/sidecar.ts [--quick] [options]

The health-check sidecar's figures on their own: what every UDP pod pays for it.

Options:
${optionsText(SIDECAR_FLAGS)}
`

async function main(argv: readonly string[]): Promise<number> {
  let values
  try {
    ;({ values } = parseFlags(SIDECAR_FLAGS, argv, { usage: SIDECAR_USAGE }))
  } catch (error: unknown) {
    if (error instanceof UsageError) return reportUsageError(process.stderr, 'bench/sidecar.ts', error.message, error.usage)
    throw error
  }
  if (values.help === true) {
    process.stdout.write(SIDECAR_USAGE)
    return 0
  }
  const figures = await benchSidecar({
    quick: values.quick === true,
    ...(values.out === undefined ? {} : { out: values.out }),
    ...(values.binary === undefined ? {} : { binary: values.binary }),
  })
  process.stdout.write(`${sidecarMarkdown(figures)}\n`)
  return figures.probeErrors === 0 ? 0 : 1
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = await main(process.argv.slice(2))
