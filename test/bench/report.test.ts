import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { README_MARKERS, withBenchResults } from '../../bench/report.ts'
import { ROOT } from '../fixtures/cli.js'

t.test('a full bench run rewrites only what lies between the README markers', async (t) => {
  const readme = `# x\n\n## Performance\n\nintro\n\n${README_MARKERS.begin}\nold figures\n${README_MARKERS.end}\n\nwhy\n`
  const once = withBenchResults(readme, '| new | figures |\n\n')
  t.equal(once, `# x\n\n## Performance\n\nintro\n\n${README_MARKERS.begin}\n| new | figures |\n${README_MARKERS.end}\n\nwhy\n`)
  t.equal(withBenchResults(once ?? '', '| new | figures |\n'), once, 'running it again changes nothing')
  t.equal(withBenchResults('# no markers\n', 'x'), undefined, 'a README without markers is left alone')
  t.equal(withBenchResults(`${README_MARKERS.end}\n${README_MARKERS.begin}\n`, 'x'), undefined, 'markers in the wrong order are left alone')
})

t.test("the README's Performance section holds the figures of bench/results.md", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const markdown = await readFile(join(ROOT, 'bench/results.md'), 'utf8')
  t.equal(withBenchResults(readme, markdown), readme, 'README and bench/results.md agree: rerun `npm run bench` or copy them together')
})

t.test('the targets of issue 18: ratios of medians from the same rounds, each PASS or MISS', async (t) => {
  const { evaluateTargets, figures } = await import('../../bench/report.ts')
  const round = (peer: string, rps: Record<string, number>, p99: number) => ({
    peer,
    round: 1,
    startupMs: 1,
    rssIdleMiB: 50,
    rssAfterMiB: 60,
    answers: {},
    throughput: rps,
    latency: { service: { p50: 0.3, p99, achievedRate: 1000 }, pod: { p50: 0.3, p99, achievedRate: 1000 } },
    newConnectionRps: 1,
    update: { p50: 1, p99: 2, rps: 1 },
    errors: 0,
    loadAverage: 0,
    otherCpuPercent: 0,
  })
  const all = (service: number, pod: number) => ({ 'service@8': service, 'service@25': service, 'pod@8': pod, 'pod@25': pod })
  const rounds = [
    round('nlb-guard', all(9000, 8000), 1.5),
    round('baseline main', all(6000, 4000), 2),
    round('parsing-floor', all(20_000, 15_000), 1.4),
    round('floor', all(40_000, 40_000), 1),
    round('fastify', all(10_000, 10_000), 1.4),
    round('controller-runtime', all(2000, 5000), 3),
  ] as Parameters<typeof figures>[0]
  const list = figures(rounds, 1000)
  t.equal(list.find((f) => f.key === 'throughput pod@8')?.ratioToBaseline?.['baseline main'], 2, 'nlb-guard ÷ the baseline')
  const pod = { p50: 1, p99: 1, cachedUdpServices: 1, answer: 'patched', errors: 0 }
  const targets = evaluateTargets({
    figures: list,
    rate: 1000,
    startupMedianMs: 100,
    idleMiB: 55,
    requests: 1,
    afterRequestsMiB: 70,
    soakSeconds: 1,
    soakGrowthMiB: 0,
    idle: { requests: 1, errors: 0, closedWhileIdle: 0, reusedAfterIdle: 8, requestsAfterIdle: 8, idleSeconds: 100, gaps: 1 },
    podCache: { rounds: [], services10: pod, services10000: pod, p99Ratio: 1 },
    quick: false,
  } as Parameters<typeof evaluateTargets>[0])
  const verdict = Object.fromEntries(targets.map((x) => [x.target, x]))
  t.match(verdict['Pod CREATE ≥ 2 × controller-runtime'], { value: '1.60× (worst: pod@8)', pass: false, note: /≤ 100\.0 µs of server CPU per request, now 125\.0 µs/ })
  t.match(verdict['Service CREATE ≥ 3 × controller-runtime'], { value: '4.50× (worst: service@8)', pass: true })
  t.match(verdict['throughput ≥ 0.85 × bare fastify (Service and Pod)'], { value: '0.80× (worst: pod@8)', pass: false })
  t.match(verdict['throughput ≥ 0.5 × the parsing floor'], { value: '0.45× (worst: service@8)', pass: false })
  t.match(verdict["p99 at 1,000 req/s ≤ 1.2 × the parsing floor's"], { pass: true, value: /^1\.07×/ })
  t.match(verdict['RSS idle ≤ 60 MiB'], { pass: true })
  t.notOk(targets.some((x) => x.target.includes('0.90 × floor')), 'the target against the floor that does not parse is replaced by the parsing floor')
})
