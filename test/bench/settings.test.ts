import t from 'tap'
import { UsageError } from '../../lib/args.js'
import { BENCH_USAGE, parseSettings } from '../../bench/settings.js'

t.test('a full run and a --quick run, and the flags over them', async (t) => {
  const full = parseSettings([], '/repo')
  t.not(full, 'help')
  if (full === 'help') return
  t.match(full, { quick: false, out: '/repo/bench/results.json', rounds: 3, duration: 10, latencyDuration: 15, rate: 1000, requests: 1_000_000, soak: 600, idle: 100, serverCpu: 1, clientCpu: 0, baselines: [], profileSeconds: 10 })
  const quick = parseSettings(['--quick', '--rounds', '2', '--out', '/tmp/r.json'], '/repo')
  t.match(quick, { quick: true, out: '/tmp/r.json', rounds: 2, duration: 1, requests: 10_000, soak: 4, idle: 2 })
  t.match(parseSettings(['--baseline', 'main', '--baseline', 'abc123', '--profile-seconds', '4'], '/repo'), { baselines: ['main', 'abc123'], profileSeconds: 4 })
  t.equal(parseSettings(['-h'], '/repo'), 'help')
})

t.test('a bad flag or number is a UsageError with the usage', async (t) => {
  for (const argv of [['--bogus'], ['--rounds', '0'], ['--rate', 'fast'], ['--duration', '']]) {
    const error = t.throws(() => parseSettings(argv, '/repo'), argv.join(' '))
    t.type(error, UsageError)
    t.equal((error as UsageError).usage, BENCH_USAGE)
  }
  for (const flag of ['--quick', '--out FILE', '--rounds N', '--server-cpu N', '--baseline REF', '--profile-seconds S', '-h, --help']) t.match(BENCH_USAGE, flag)
})
