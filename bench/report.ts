import type { PeerName } from './peers.ts'
import type { Figure, PeerRound, PodCacheSummary, Results, TargetResult } from './results.ts'

/* Medians, ratios, targets, and the two ways of printing them: a terminal table and README markdown. */

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

interface FigureSpec {
  readonly key: string
  readonly label: string
  readonly unit: string
  readonly higherIsBetter: boolean
  readonly value: (round: PeerRound) => number | undefined
}

export const THROUGHPUT_KEYS = ['service@8', 'service@25', 'pod@8', 'pod@25'] as const

export function figureSpecs(rate: number): FigureSpec[] {
  const bodyLabel: Record<string, string> = { service: 'Service CREATE', pod: 'Pod CREATE' }
  return [
    ...THROUGHPUT_KEYS.map((key) => {
      const [body, connections] = key.split('@') as [string, string]
      return { key: `throughput ${key}`, label: `${bodyLabel[body]}, ${connections} connections`, unit: 'req/s', higherIsBetter: true, value: (r: PeerRound) => r.throughput[key] }
    }),
    ...(['service', 'pod'] as const).flatMap((body) => [
      { key: `latency ${body} p50`, label: `${bodyLabel[body]} p50 at ${rate.toLocaleString('en')} req/s`, unit: 'ms', higherIsBetter: false, value: (r: PeerRound) => r.latency[body]?.p50 },
      { key: `latency ${body} p99`, label: `${bodyLabel[body]} p99 at ${rate.toLocaleString('en')} req/s`, unit: 'ms', higherIsBetter: false, value: (r: PeerRound) => r.latency[body]?.p99 },
    ]),
    { key: 'new connection per request', label: 'new TLS connection per request, 8 connections', unit: 'req/s', higherIsBetter: true, value: (r) => r.newConnectionRps },
    { key: 'update p50', label: '2 MiB UPDATE p50, 1 connection', unit: 'ms', higherIsBetter: false, value: (r) => r.update.p50 },
    { key: 'update p99', label: '2 MiB UPDATE p99, 1 connection', unit: 'ms', higherIsBetter: false, value: (r) => r.update.p99 },
    { key: 'update rps', label: '2 MiB UPDATE, 1 connection', unit: 'req/s', higherIsBetter: true, value: (r) => r.update.rps },
    { key: 'startup', label: 'start to first answered /mutate', unit: 'ms', higherIsBetter: false, value: (r) => r.startupMs },
    { key: 'rss idle', label: 'RSS idle (1 s after start)', unit: 'MiB', higherIsBetter: false, value: (r) => r.rssIdleMiB },
    { key: 'rss after round', label: "RSS after the round's loads", unit: 'MiB', higherIsBetter: false, value: (r) => r.rssAfterMiB },
  ]
}

export function figures(rounds: readonly PeerRound[], rate: number): Figure[] {
  const peers: PeerName[] = ['nlb-guard', 'floor', 'fastify', 'controller-runtime']
  return figureSpecs(rate).map((spec) => {
    const medians: Partial<Record<PeerName, number>> = {}
    for (const peer of peers) {
      const values = rounds.filter((r) => r.peer === peer).map(spec.value).filter((v): v is number => v !== undefined)
      if (values.length > 0) medians[peer] = median(values)
    }
    const nlb = medians['nlb-guard']
    const ratio = (other: number | undefined) => (nlb === undefined || other === undefined || other === 0 ? undefined : nlb / other)
    const toFloor = ratio(medians.floor)
    const toFastify = ratio(medians.fastify)
    const toCr = ratio(medians['controller-runtime'])
    return {
      key: spec.key,
      label: spec.label,
      unit: spec.unit,
      higherIsBetter: spec.higherIsBetter,
      medians,
      ...(toFloor === undefined ? {} : { ratioToFloor: toFloor }),
      ...(toFastify === undefined ? {} : { ratioToFastify: toFastify }),
      ...(toCr === undefined ? {} : { ratioToControllerRuntime: toCr }),
    }
  })
}

export function formatNumber(value: number | undefined, unit: string): string {
  if (value === undefined || !Number.isFinite(value)) return '–'
  if (unit === 'req/s') return Math.round(value).toLocaleString('en')
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value.toFixed(1)
  return value.toFixed(1)
}

const ratioText = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(2)}×`)

interface TargetInputs {
  readonly figures: readonly Figure[]
  readonly rate: number
  readonly startupMedianMs: number
  readonly idleMiB: number
  readonly requests: number
  readonly afterRequestsMiB: number
  readonly soakSeconds: number
  readonly soakGrowthMiB: number
  readonly idle: Results['nlbGuard']['idleBoundary']
  readonly podCache: PodCacheSummary
  readonly quick: boolean
}

export function evaluateTargets(inputs: TargetInputs): TargetResult[] {
  const byKey = new Map(inputs.figures.map((f) => [f.key, f]))
  const worst = (keys: readonly string[], pick: (f: Figure) => number | undefined) => {
    let found: { key: string; value: number } | undefined
    for (const key of keys) {
      const figure = byKey.get(key)
      const value = figure === undefined ? undefined : pick(figure)
      if (value !== undefined && (found === undefined || value < found.value)) found = { key, value }
    }
    return found
  }
  const throughputKeys = THROUGHPUT_KEYS.map((k) => `throughput ${k}`)
  const results: TargetResult[] = []
  const floor = worst(throughputKeys, (f) => f.ratioToFloor)
  results.push(
    floor === undefined
      ? { target: 'throughput ≥ 0.90 × floor', value: '–', pass: null, note: 'floor not measured' }
      : { target: 'throughput ≥ 0.90 × floor', value: `${floor.value.toFixed(2)}× (worst: ${floor.key.replace('throughput ', '')})`, pass: floor.value >= 0.9, ...frameworkNote(byKey.get(floor.key)) },
  )
  const cr = worst(throughputKeys, (f) => f.ratioToControllerRuntime)
  results.push(
    cr === undefined
      ? { target: 'throughput ≥ 2 × controller-runtime', value: '–', pass: null, note: 'controller-runtime peer not measured' }
      : { target: 'throughput ≥ 2 × controller-runtime', value: `${cr.value.toFixed(2)}× (worst: ${cr.key.replace('throughput ', '')})`, pass: cr.value >= 2 },
  )
  const p99s = ['latency service p99', 'latency pod p99'].map((k) => ({ k, v: byKey.get(k)?.medians['nlb-guard'] })).filter((x): x is { k: string; v: number } => x.v !== undefined)
  const worstP99 = p99s.sort((a, b) => b.v - a.v)[0]
  results.push({
    target: `p99 ≤ 2 ms at ${inputs.rate.toLocaleString('en')} req/s`,
    value: worstP99 === undefined ? '–' : `${worstP99.v.toFixed(2)} ms (${worstP99.k.split(' ')[1]})`,
    pass: worstP99 === undefined ? null : worstP99.v <= 2,
  })
  const update = byKey.get('update p99')?.medians['nlb-guard']
  results.push({ target: '2 MiB UPDATE p99 ≤ 50 ms', value: update === undefined ? '–' : `${update.toFixed(1)} ms`, pass: update === undefined ? null : update <= 50 })
  const pods = inputs.podCache
  const podsPatched = pods.services10.answer === 'patched' && pods.services10000.answer === 'patched'
  results.push({
    target: 'Pod p99 with 10,000 Services cached ≤ 1.2 × with 10',
    value: `${Number.isFinite(pods.p99Ratio) ? pods.p99Ratio.toFixed(2) : '–'}× (${pods.services10000.p99.toFixed(2)} ms vs ${pods.services10.p99.toFixed(2)} ms)`,
    pass: podsPatched && Number.isFinite(pods.p99Ratio) ? pods.p99Ratio <= 1.2 : null,
    ...(podsPatched ? {} : { note: `the Pod was not patched (${pods.services10.answer}; ${pods.services10000.answer}): the rule did not run` }),
  })
  results.push({ target: 'RSS idle ≤ 60 MiB', value: `${inputs.idleMiB.toFixed(1)} MiB`, pass: inputs.idleMiB <= 60 })
  results.push({ target: 'RSS after load ≤ 80 MiB', value: `${inputs.afterRequestsMiB.toFixed(1)} MiB after ${inputs.requests.toLocaleString('en')} requests`, pass: inputs.afterRequestsMiB <= 80 })
  results.push({
    target: 'RSS growth over the soak < 5 MiB',
    value: `${inputs.soakGrowthMiB >= 0 ? '+' : ''}${inputs.soakGrowthMiB.toFixed(1)} MiB over ${formatSeconds(inputs.soakSeconds)}`,
    pass: inputs.soakGrowthMiB < 5,
    ...(inputs.quick ? { note: 'quick: a few seconds, indicative only' } : {}),
  })
  results.push({ target: 'start to first /mutate ≤ 300 ms', value: `${inputs.startupMedianMs.toFixed(0)} ms`, pass: inputs.startupMedianMs <= 300 })
  const idle = inputs.idle
  const idleOk = idle.errors === 0 && idle.closedWhileIdle === 0
  results.push({
    target: 'zero errors across a 100 s idle (keep-alive 120 s > Go client 90 s)',
    value: `${idle.errors} errors, ${idle.closedWhileIdle} connections closed while idle, ${idle.reusedAfterIdle}/${idle.requestsAfterIdle} reused after ${idle.idleSeconds} s`,
    pass: idle.idleSeconds >= 100 ? idleOk : null,
    ...(idle.idleSeconds >= 100 ? {} : { note: `idle shortened to ${idle.idleSeconds} s: the 90 s boundary is not tested` }),
  })
  return results
}

/** How far bare fastify itself is from the floor on the same figure: the share the framework leaves. */
function frameworkNote(figure: Figure | undefined): { note?: string } {
  const fastify = figure?.medians.fastify
  const floor = figure?.medians.floor
  if (fastify === undefined || floor === undefined || floor === 0) return {}
  return { note: `bare fastify, before any rule, reaches ${(fastify / floor).toFixed(2)}× the floor here` }
}

export function formatSeconds(seconds: number): string {
  if (seconds >= 120) return `${Math.round(seconds / 60)} min`
  return `${Math.round(seconds)} s`
}

const verdict = (pass: boolean | null) => (pass === null ? 'n/a ' : pass ? 'PASS' : 'MISS')

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
}

/** The table printed at the end of a run. */
export function textReport(results: Results): string {
  const header = ['figure (median of rounds)', 'nlb-guard', 'floor', 'fastify', 'ctrl-runtime', '÷ floor', '÷ fastify', '÷ ctrl-rt']
  const rows = results.figures.map((f) => [
    `${f.label} (${f.unit})`,
    formatNumber(f.medians['nlb-guard'], f.unit),
    formatNumber(f.medians.floor, f.unit),
    formatNumber(f.medians.fastify, f.unit),
    formatNumber(f.medians['controller-runtime'], f.unit),
    ratioText(f.ratioToFloor),
    ratioText(f.ratioToFastify),
    ratioText(f.ratioToControllerRuntime),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const nlb = results.nlbGuard
  const lines = [
    '',
    `nlb-guard benchmark (${results.mode}) on ${results.machine.cpuModel}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.machine.go}, ${results.machine.loadGenerator}; ${results.settings['rounds']} round(s), ${formatSeconds(results.wallSeconds)}`,
    `  ${otherCpuText(results)}`,
    ...Object.values(results.bodies).map((b) => `  body: ${b.description}`),
    ...results.peers.filter((p) => p.missing !== undefined).map((p) => `  ${p.name}: not run: ${p.missing}`),
    '',
    pad(header, widths),
    pad(widths.map((w) => '-'.repeat(w)), widths),
    ...rows.map((r) => pad(r, widths)),
    '',
    'nlb-guard alone:',
    `  start to first answered /mutate: median ${nlb.startupMs.median.toFixed(0)} ms of ${nlb.startupMs.samples.length} starts`,
    `  RSS idle ${nlb.memory.idleMiB.toFixed(1)} MiB; after ${nlb.memory.requests.toLocaleString('en')} requests ${nlb.memory.afterRequestsMiB.toFixed(1)} MiB; soak ${formatSeconds(nlb.memory.soak.seconds)} (${nlb.memory.soak.requests.toLocaleString('en')} requests, ${nlb.memory.soak.errors} errors): growth ${nlb.memory.soak.growthMiB.toFixed(1)} MiB`,
    `  idle boundary: ${nlb.idleBoundary.requests} requests, ${nlb.idleBoundary.errors} errors${nlb.idleBoundary.firstError ? ` (${nlb.idleBoundary.firstError})` : ''}, ${nlb.idleBoundary.closedWhileIdle} connections closed during ${nlb.idleBoundary.gaps} × ${nlb.idleBoundary.idleSeconds} s idle`,
    `  ${podCacheText(results.podCache)}`,
    `  health-check sidecar: RSS ${results.sidecar.rssIdleMiB.median.toFixed(2)} MiB idle, ${results.sidecar.rssUnderProbesMiB.toFixed(2)} MiB under ${results.sidecar.probes.toLocaleString('en')} probes; start ${results.sidecar.startMs.median.toFixed(1)} ms; image ${(results.sidecar.image.layerBytes / 1e6).toFixed(2)} MB (bench/sidecar.ts)`,
    '',
    'targets:',
    ...results.targets.map((t) => `  ${verdict(t.pass)}  ${t.target}: ${t.value}${t.note ? ` (${t.note})` : ''}`),
    '',
  ]
  return lines.join('\n')
}

function podCacheText(pods: PodCacheSummary): string {
  const size = (n: string, s: PodCacheSummary['services10']) => `${n} Services (${s.cachedUdpServices} UDP cached): ${s.answer}, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, ${s.errors} errors`
  return `Pod CREATE at the fixed rate, Service cache from a fake apiserver: ${size('10', pods.services10)}; ${size('10,000', pods.services10000)}`
}

/** How busy other processes kept the machine during the rounds: a noisy machine skews every figure. */
export function otherCpuText(results: Results): string {
  const values = results.rounds.map((r) => r.otherCpuPercent)
  if (values.length === 0) return 'no rounds ran'
  return `other processes on the machine during the rounds: median ${median(values).toFixed(0)}%, max ${Math.max(...values).toFixed(0)}% of a core`
}

/** The README's Performance section, regenerated by every run. */
export function markdownReport(results: Results): string {
  const m = results.machine
  const nlb = results.nlbGuard
  const rounds = results.settings['rounds']
  const table = [
    '| figure | nlb-guard | floor: bare `node:https` | bare fastify | controller-runtime (Go) | nlb-guard ÷ floor | nlb-guard ÷ fastify | nlb-guard ÷ controller-runtime |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.figures.map(
      (f) =>
        `| ${f.label} (${f.unit}) | ${formatNumber(f.medians['nlb-guard'], f.unit)} | ${formatNumber(f.medians.floor, f.unit)} | ${formatNumber(f.medians.fastify, f.unit)} | ${formatNumber(f.medians['controller-runtime'], f.unit)} | ${ratioText(f.ratioToFloor)} | ${ratioText(f.ratioToFastify)} | ${ratioText(f.ratioToControllerRuntime)} |`,
    ),
  ]
  const sidecar = `${results.sidecar.rssIdleMiB.median.toFixed(2)} MiB (its own figures: below)`
  return [
    `Measured with \`npm run bench\`${results.mode === 'quick' ? ' --quick (a smoke run: too short for the figures to mean much)' : ''} on ${results.startedAt.slice(0, 10)}: ${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, ${m.go}. Loopback HTTPS (TLS 1.3, HTTP/1.1), the server pinned to one core and the load generator (${m.loadGenerator}) to the other; median of ${rounds} interleaved round(s), each peer a fresh process per round; ${otherCpuText(results)}. Bodies: ${Object.values(results.bodies)
      .map((b) => b.description)
      .join('; ')}.`,
    '',
    ...table,
    '',
    `The floor answers a constant review without parsing it: what TLS and HTTP cost on this Node. Bare fastify parses the body and echoes its uid with nlb-guard's TLS options and limits and no logger: what the framework costs before any rule. The controller-runtime peer implements rule S2 only (\`bench/controller-runtime/\`); nlb-guard runs every rule and logs one JSON line per admission. Latency at a fixed rate is measured open-loop from send to last byte.`,
    '',
    '| nlb-guard alone | |',
    '|---|---:|',
    `| start to first answered \`/mutate\` (median of ${nlb.startupMs.samples.length}) | ${nlb.startupMs.median.toFixed(0)} ms |`,
    `| RSS idle | ${nlb.memory.idleMiB.toFixed(1)} MiB |`,
    `| RSS after ${nlb.memory.requests.toLocaleString('en')} requests | ${nlb.memory.afterRequestsMiB.toFixed(1)} MiB |`,
    `| RSS growth over a ${formatSeconds(nlb.memory.soak.seconds)} soak (${nlb.memory.soak.requests.toLocaleString('en')} requests) | ${nlb.memory.soak.growthMiB.toFixed(1)} MiB |`,
    `| errors across ${nlb.idleBoundary.gaps} × ${nlb.idleBoundary.idleSeconds} s idle between bursts | ${nlb.idleBoundary.errors} (${nlb.idleBoundary.closedWhileIdle} connections closed while idle) |`,
    `| Pod CREATE p50 / p99 at ${String(results.settings['rate'])} req/s, 10 Services in the cache (${results.podCache.services10.cachedUdpServices} UDP kept) | ${results.podCache.services10.p50.toFixed(2)} / ${results.podCache.services10.p99.toFixed(2)} ms |`,
    `| Pod CREATE p50 / p99 at ${String(results.settings['rate'])} req/s, 10,000 Services in the cache (${results.podCache.services10000.cachedUdpServices} UDP kept) | ${results.podCache.services10000.p50.toFixed(2)} / ${results.podCache.services10000.p99.toFixed(2)} ms |`,
    `| health-check sidecar RSS idle | ${sidecar} |`,
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...results.targets.map((t) => `| ${t.target} | ${t.value}${t.note ? ` (${t.note})` : ''} | ${t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS'} |`),
    '',
  ].join('\n')
}

/** Where the README's Performance figures go; a full run rewrites what lies between. */
export const README_MARKERS = { begin: '<!-- bench:results:begin -->', end: '<!-- bench:results:end -->' } as const

/** The README with `markdown` between the markers and nothing else changed; undefined without them. */
export function withBenchResults(readme: string, markdown: string): string | undefined {
  const begin = readme.indexOf(README_MARKERS.begin)
  const end = readme.indexOf(README_MARKERS.end)
  if (begin < 0 || end < begin) return undefined
  return `${readme.slice(0, begin + README_MARKERS.begin.length)}\n${markdown.trimEnd()}\n${readme.slice(end)}`
}
