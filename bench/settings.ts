import { join, resolve } from 'node:path'
import { HELP_FLAG, optionsText, parseFlags, UsageError, type Flags } from '../lib/args.ts'

/* What a bench run is told: the flags, their usage text, and the settings a full or --quick run uses. */

const BENCH_FLAGS = {
  quick: { type: 'boolean', help: 'a seconds-long smoke run (CI): one round, tiny durations' },
  out: {
    type: 'string',
    value: 'FILE',
    help: 'results JSON (default bench/results.json); markdown goes beside it (.md);\na full run to the default also rewrites README.md\'s Performance figures',
  },
  rounds: { type: 'string', value: 'N', help: 'interleaved rounds of every peer (3; 1)' },
  duration: { type: 'string', value: 'S', help: 'each throughput, new-connection and 2 MiB UPDATE run (10; 1)' },
  'latency-duration': { type: 'string', value: 'S', help: 'each fixed-rate latency run (15; 1)' },
  rate: { type: 'string', value: 'N', help: 'the fixed rate, requests/s (1000)' },
  requests: { type: 'string', value: 'N', help: 'requests before the "after load" RSS (1000000; 10000)' },
  soak: { type: 'string', value: 'S', help: 'soak length after them (600; 4)' },
  idle: { type: 'string', value: 'S', help: 'silence between the idle-boundary bursts (100; 2)' },
  baseline: {
    type: 'string',
    multiple: true,
    value: 'REF',
    help: 'also build nlb-guard at this git commit (in a folder under the temp dir) and run it as\na peer in the same interleaved rounds: before/after figures from one run; repeatable',
  },
  'profile-only': { type: 'boolean', help: 'only the CPU profiles, printed; nothing written (for work on the hot path)' },
  'profile-seconds': { type: 'string', value: 'S', help: 'each CPU profile of nlb-guard under load, Service and Pod (10; 2)' },
  'server-cpu': { type: 'string', value: 'N', help: 'core the servers are pinned to (1)' },
  'client-cpu': { type: 'string', value: 'N', help: 'core the load generators and this script are pinned to (0)' },
  help: HELP_FLAG,
} as const satisfies Flags

export const BENCH_USAGE = `Usage: node bench/run.ts [--quick] [options]     (npm run bench -- [options])

Loopback HTTPS benchmark of nlb-guard against two bare node:https floors (one answers without
parsing, one parses the review), bare fastify and a controller-runtime webhook, server and load
generator on separate cores, then CPU profiles of nlb-guard under load. Prints a table, PASS/MISS
per target and a markdown snippet; writes results JSON and markdown. Never fails on a number, only
when the benchmark itself cannot run.

Options (full run defaults first, --quick second):
${optionsText(BENCH_FLAGS)}
`

export interface Settings {
  readonly quick: boolean
  readonly out: string
  readonly rounds: number
  readonly duration: number
  readonly warmup: number
  readonly latencyDuration: number
  readonly rate: number
  readonly requests: number
  readonly soak: number
  readonly soakSampleSeconds: number
  readonly idle: number
  readonly idleGaps: number
  readonly startupTrials: number
  readonly settleMs: number
  /** Longest wait before a round for other processes to calm down (they skew the figures). */
  readonly quietWaitSeconds: number
  /** A round during which other processes used more than this (percent of a core) is measured again… */
  readonly maxOtherCpuPercent: number
  /** …while this much time for repeats is left. */
  readonly repeatBudgetSeconds: number
  readonly serverCpu: number
  readonly clientCpu: number
  /** Git refs of nlb-guard to run beside the working tree's, as `baseline <ref>` peers. */
  readonly baselines: readonly string[]
  readonly profileSeconds: number
  readonly profileOnly: boolean
}

/** The settings argv asks for, or 'help'. Throws UsageError (with BENCH_USAGE) on a bad flag or number. */
export function parseSettings(argv: readonly string[], root: string): Settings | 'help' {
  const { values } = parseFlags(BENCH_FLAGS, argv, { usage: BENCH_USAGE })
  if (values.help === true) return 'help'
  const quick = values.quick === true
  const number = (flag: string, text: string | undefined, fallback: number, min = 0) => {
    if (text === undefined) return fallback
    const value = Number(text)
    if (text.trim() === '' || !Number.isFinite(value) || value < min) throw new UsageError(`--${flag} expects a number ≥ ${min}, got "${text}"`, { usage: BENCH_USAGE })
    return value
  }
  return {
    quick,
    out: resolve(values.out ?? join(root, 'bench/results.json')),
    rounds: Math.round(number('rounds', values.rounds, quick ? 1 : 3, 1)),
    duration: number('duration', values.duration, quick ? 1 : 10, 1),
    warmup: quick ? 1 : 5,
    latencyDuration: number('latency-duration', values['latency-duration'], quick ? 1 : 15, 1),
    rate: number('rate', values.rate, 1000, 1),
    requests: Math.round(number('requests', values.requests, quick ? 10_000 : 1_000_000)),
    soak: number('soak', values.soak, quick ? 4 : 600, 1),
    soakSampleSeconds: quick ? 0.5 : 5,
    idle: number('idle', values.idle, quick ? 2 : 100),
    idleGaps: 1,
    startupTrials: quick ? 1 : 5,
    settleMs: quick ? 300 : 1000,
    quietWaitSeconds: quick ? 0 : 60,
    maxOtherCpuPercent: 30,
    repeatBudgetSeconds: quick ? 0 : 900,
    serverCpu: Math.round(number('server-cpu', values['server-cpu'], 1)),
    clientCpu: Math.round(number('client-cpu', values['client-cpu'], 0)),
    baselines: values.baseline ?? [],
    profileSeconds: number('profile-seconds', values['profile-seconds'], quick ? 2 : 10, 1),
    profileOnly: values['profile-only'] === true,
  }
}
