import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../fixtures/cli.js'

// `npm run bench -- --quick` as CI runs it, so the benchmark keeps working as the server changes.
// Seconds when the controller-runtime peer's Go binary is cached; its first build downloads modules.
t.setTimeout(15 * 60_000)

interface QuickResults {
  mode: string
  rounds: Array<{ peer: string; answers: Record<string, string>; errors: number; throughput: Record<string, number> }>
  targets: Array<{ target: string; pass: boolean | null }>
  profiles: Array<{ topSelf: unknown[]; topInclusive: unknown[] }>
  nlbGuard: { startupMs: { median: number }; memory: { idleMiB: number } }
  podCache: { services10: { answer: string; cachedUdpServices: number; p99: number }; services10000: { answer: string; cachedUdpServices: number; p99: number } }
}

t.test('bench/run.ts --quick runs and writes parseable results', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-bench-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'results.json')
  // Plain Node, as `npm run bench` runs it: without tap's loader or coverage in the environment,
  // which would load into every server and client the benchmark starts.
  const env = { ...process.env }
  delete env['NODE_OPTIONS']
  delete env['NODE_V8_COVERAGE']
  const child = spawn(process.execPath, [join(ROOT, 'bench/run.ts'), '--quick', '--out', out], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 0, 'exits 0', { output: output.slice(-4000) })

  const results = JSON.parse(await readFile(out, 'utf8')) as QuickResults
  t.equal(results.mode, 'quick')
  const nlbGuard = results.rounds.filter((r) => r.peer === 'nlb-guard')
  t.equal(nlbGuard.length, 1, 'one quick round of nlb-guard')
  t.same(nlbGuard[0]?.answers, { service: 'patched', pod: 'patched', update: 'patched' }, 'nlb-guard answers the bodies as rules S2 and P1 say (the Pod gets the sidecar: its Service comes from the fake apiserver)')
  t.equal(nlbGuard[0]?.errors, 0, 'no failed request under load')
  t.ok(Object.values(nlbGuard[0]?.throughput ?? {}).every((rps) => rps > 0), 'every throughput figure measured')
  t.ok(results.rounds.some((r) => r.peer === 'floor'), 'the transport limit ran')
  t.same(results.rounds.find((r) => r.peer === 'parsing-floor')?.answers, { service: 'allowed', pod: 'allowed', update: 'allowed' }, 'the parsing floor ran and parsed every body')
  t.same(results.rounds.find((r) => r.peer === 'fastify')?.answers, { service: 'allowed', pod: 'allowed', update: 'allowed' }, 'bare fastify ran and parsed every body')
  t.ok(results.nlbGuard.startupMs.median > 0 && results.nlbGuard.memory.idleMiB > 0, 'start-up and memory measured')
  t.match(results.podCache, { services10: { answer: 'patched', cachedUdpServices: 3 }, services10000: { answer: 'patched', cachedUdpServices: 2500 } }, 'the Pod is patched from a Service cache filled with 10 and 10,000 Services')
  t.ok(results.podCache.services10.p99 > 0 && results.podCache.services10000.p99 > 0, 'Pod latency measured at both sizes')
  t.ok(results.targets.length >= 9 && results.targets.every((x) => x.pass === null || typeof x.pass === 'boolean'), 'every target has a verdict')
  for (const target of ['Pod CREATE ≥ 2 × controller-runtime', 'Service CREATE ≥ 3 × controller-runtime', 'throughput ≥ 0.85 × bare fastify (Service and Pod)', 'throughput ≥ 0.5 × the parsing floor', "p99 at 1,000 req/s ≤ 1.2 × the parsing floor's", 'RSS idle ≤ 60 MiB']) {
    t.ok(results.targets.some((x) => x.target === target), `target printed: ${target}`)
  }
  t.equal(results.profiles.length, 2, 'a CPU profile of the Service and of the Pod body')
  t.ok(results.profiles.every((p) => p.topSelf.length > 0 && p.topInclusive.length > 0), 'each with its top frames')
  t.match(await readFile(join(dir, 'results.md'), 'utf8'), /\| target \| measured \|/, 'markdown written beside the JSON')
  t.match(output, /PASS|MISS/, 'verdicts printed')
})
