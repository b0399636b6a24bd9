import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SIDECAR_ENV, SIDECAR_README_MARKERS, withSidecarResults } from '../../bench/sidecar.ts'
import { SIDECAR_ENV as INJECTED_ENV } from '../../webhook/rules/pod.js'
import { ROOT } from '../fixtures/cli.js'
import { sidecarBinary } from '../fixtures/sidecar.js'

interface QuickFigures {
  mode: string
  binaryBytes: number
  image: { files: Array<{ path: string; bytes: number }>; layerBytes: number; gzipBytes: number }
  startMs: { median: number }
  rssIdleMiB: { median: number }
  probes: number
  probeErrors: number
  rssUnderProbesMiB: number
  targets: Array<{ target: string; pass: boolean }>
}

t.test('the bench measures the sidecar with the environment the Pod rule injects', async (t) => {
  t.same(SIDECAR_ENV, INJECTED_ENV)
})

// `node bench/sidecar.ts --quick`, the CI smoke variant: seconds once the binary is built.
t.test('bench/sidecar.ts --quick runs and writes parseable figures', async (t) => {
  await sidecarBinary()
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-sidecar-bench-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'sidecar.json')
  const env = { ...process.env }
  delete env['NODE_OPTIONS']
  delete env['NODE_V8_COVERAGE']
  const child = spawn(process.execPath, [join(ROOT, 'bench/sidecar.ts'), '--quick', '--out', out], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, 'exits 0', { output: output.slice(-3000) })

  const figures = JSON.parse(await readFile(out, 'utf8')) as QuickFigures
  t.equal(figures.mode, 'quick')
  t.equal(figures.probeErrors, 0, `every one of ${figures.probes} probes accepted`)
  t.ok(figures.startMs.median > 0 && figures.rssIdleMiB.median > 0 && figures.rssUnderProbesMiB > 0, 'start time and memory measured')
  t.same(figures.image.files.map((f) => f.path), ['/nlb-guard-healthcheck'], "the image's one file, from the Dockerfile's sidecar target")
  t.equal(figures.image.files[0]?.bytes, figures.binaryBytes)
  t.ok(figures.image.layerBytes >= figures.binaryBytes && figures.image.gzipBytes < figures.binaryBytes, 'layer = the binary plus tar headers; gzipped smaller')
  t.same(figures.targets.map((x) => typeof x.pass), ['boolean', 'boolean'], 'a verdict per target')
  t.match(await readFile(join(dir, 'sidecar.md'), 'utf8'), /\| health-check sidecar \| `nlb-guard-healthcheck` \(Go, static\) \| `nlb-guard healthcheck` \(Node 24\) \|/, 'markdown beside the JSON, beside the previous sidecar')
})

t.test("the README's sidecar figures are those of bench/sidecar-results.md", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  t.ok(readme.includes(SIDECAR_README_MARKERS.begin), 'the README has the markers')
  t.equal(withSidecarResults(readme, await readFile(join(ROOT, 'bench/sidecar-results.md'), 'utf8')), readme, 'rerun `node bench/sidecar.ts` or copy them together')
  t.equal(withSidecarResults('# none\n', 'x'), undefined, 'a README without markers is left alone')
})
