import type { PeerName } from './peers.ts'
import { profileMarkdown, profileText } from './profile.ts'
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
  const peers = [...new Set(rounds.map((r) => r.peer))]
  const baselines = peers.filter((p) => p.startsWith('baseline '))
  return figureSpecs(rate).map((spec) => {
    const medians: Partial<Record<PeerName, number>> = {}
    for (const peer of peers) {
      const values = rounds.filter((r) => r.peer === peer).map(spec.value).filter((v): v is number => v !== undefined)
      if (values.length > 0) medians[peer] = median(values)
    }
    const nlb = medians['nlb-guard']
    const ratio = (other: number | undefined) => (nlb === undefined || other === undefined || other === 0 ? undefined : nlb / other)
    const toFloor = ratio(medians.floor)
    const toParsingFloor = ratio(medians['parsing-floor'])
    const toFastify = ratio(medians.fastify)
    const toCr = ratio(medians['controller-runtime'])
    const toBaseline: Record<string, number> = {}
    for (const b of baselines) {
      const value = ratio(medians[b])
      if (value !== undefined) toBaseline[b] = value
    }
    return {
      key: spec.key,
      label: spec.label,
      unit: spec.unit,
      higherIsBetter: spec.higherIsBetter,
      medians,
      ...(toFloor === undefined ? {} : { ratioToFloor: toFloor }),
      ...(toParsingFloor === undefined ? {} : { ratioToParsingFloor: toParsingFloor }),
      ...(toFastify === undefined ? {} : { ratioToFastify: toFastify }),
      ...(toCr === undefined ? {} : { ratioToControllerRuntime: toCr }),
      ...(Object.keys(toBaseline).length === 0 ? {} : { ratioToBaseline: toBaseline }),
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
  readonly withoutCluster?: NonNullable<Results['nlbGuard']['withoutCluster']>
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
  const results: TargetResult[] = []
  const throughputTarget = (target: string, keys: readonly string[], peer: PeerName, min: number, missing: string) => {
    const found = worst(keys.map((k) => `throughput ${k}`), (f) => {
      const other = f.medians[peer]
      const nlb = f.medians['nlb-guard']
      return other === undefined || nlb === undefined || other === 0 ? undefined : nlb / other
    })
    if (found === undefined) return results.push({ target, value: '–', pass: null, note: missing })
    const pass = found.value >= min
    const figure = byKey.get(found.key)
    const notes = [pass ? undefined : budgetNote(figure, peer, min), peer === 'parsing-floor' ? frameworkNote(figure) : undefined].filter((n) => n !== undefined)
    return results.push({ target, value: `${found.value.toFixed(2)}× (worst: ${found.key.replace('throughput ', '')})`, pass, ...(notes.length === 0 ? {} : { note: notes.join('; ') }) })
  }
  throughputTarget('Pod CREATE ≥ 2 × controller-runtime', ['pod@8', 'pod@25'], 'controller-runtime', 2, 'controller-runtime peer not measured')
  throughputTarget('Service CREATE ≥ 3 × controller-runtime', ['service@8', 'service@25'], 'controller-runtime', 3, 'controller-runtime peer not measured')
  throughputTarget('throughput ≥ 0.85 × bare fastify (Service and Pod)', THROUGHPUT_KEYS, 'fastify', 0.85, 'bare fastify not measured')
  throughputTarget('throughput ≥ 0.5 × the parsing floor', THROUGHPUT_KEYS, 'parsing-floor', 0.5, 'parsing floor not measured')
  const p99Ratios = (['service', 'pod'] as const)
    .map((body) => {
      const figure = byKey.get(`latency ${body} p99`)
      const nlb = figure?.medians['nlb-guard']
      const floor = figure?.medians['parsing-floor']
      return nlb === undefined || floor === undefined || floor === 0 ? undefined : { body, nlb, floor, ratio: nlb / floor }
    })
    .filter((x) => x !== undefined)
    .sort((a, b) => b.ratio - a.ratio)
  const worstP99Ratio = p99Ratios[0]
  results.push({
    target: `p99 at ${inputs.rate.toLocaleString('en')} req/s ≤ 1.2 × the parsing floor's`,
    value: worstP99Ratio === undefined ? '–' : `${worstP99Ratio.ratio.toFixed(2)}× (worst: ${worstP99Ratio.body}, ${worstP99Ratio.nlb.toFixed(2)} ms vs ${worstP99Ratio.floor.toFixed(2)} ms)`,
    pass: worstP99Ratio === undefined ? null : worstP99Ratio.ratio <= 1.2,
  })
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
  const bare = inputs.withoutCluster
  results.push({
    target: 'RSS idle ≤ 60 MiB',
    value: `${inputs.idleMiB.toFixed(1)} MiB`,
    pass: inputs.idleMiB <= 60,
    note: `with its cluster connection, as it runs in a cluster${bare === undefined ? '' : `; ${bare.rssIdleMiB.median.toFixed(1)} MiB without one (--kube-version alone: client-node not loaded)`}`,
  })
  results.push({ target: 'RSS after load ≤ 80 MiB', value: `${inputs.afterRequestsMiB.toFixed(1)} MiB after ${inputs.requests.toLocaleString('en')} requests`, pass: inputs.afterRequestsMiB <= 80 })
  results.push({
    target: 'RSS growth over the soak < 5 MiB',
    value: `${inputs.soakGrowthMiB >= 0 ? '+' : ''}${inputs.soakGrowthMiB.toFixed(1)} MiB over ${formatSeconds(inputs.soakSeconds)}`,
    pass: inputs.soakGrowthMiB < 5,
    ...(inputs.quick ? { note: 'quick: a few seconds, indicative only' } : {}),
  })
  results.push({
    target: 'start to first /mutate ≤ 300 ms',
    value: `${inputs.startupMedianMs.toFixed(0)} ms`,
    pass: inputs.startupMedianMs <= 300,
    note: `with its cluster connection${bare === undefined ? '' : `; ${bare.startupMs.median.toFixed(0)} ms without one`}`,
  })
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

/**
 * What meeting a missed throughput target takes, in CPU time per request on the server's one core:
 * now 1/rate; needed 1/(min × the peer's rate).
 */
function budgetNote(figure: Figure | undefined, peer: PeerName, min: number): string | undefined {
  const nlb = figure?.medians['nlb-guard']
  const other = figure?.medians[peer]
  if (nlb === undefined || other === undefined || nlb === 0 || other === 0) return undefined
  const now = 1e6 / nlb
  const needed = 1e6 / (min * other)
  return `meeting it takes ≤ ${needed.toFixed(1)} µs of server CPU per request, now ${now.toFixed(1)} µs: ${(now - needed).toFixed(1)} µs less`
}

/** How far bare fastify itself is from the parsing floor on the same figure: the share the framework leaves. */
function frameworkNote(figure: Figure | undefined): string | undefined {
  const fastify = figure?.medians.fastify
  const floor = figure?.medians['parsing-floor']
  if (fastify === undefined || floor === undefined || floor === 0) return undefined
  return `bare fastify, before any rule, reaches ${(fastify / floor).toFixed(2)}× the parsing floor here`
}

export function formatSeconds(seconds: number): string {
  if (seconds >= 120) return `${Math.round(seconds / 60)} min`
  return `${Math.round(seconds)} s`
}

const verdict = (pass: boolean | null) => (pass === null ? 'n/a ' : pass ? 'PASS' : 'MISS')

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
}

/** The main table's cells of one figure: medians of each fixed peer, then nlb-guard's ratios to them. */
function mainRow(f: Figure): string[] {
  return [
    formatNumber(f.medians['nlb-guard'], f.unit),
    formatNumber(f.medians['parsing-floor'], f.unit),
    formatNumber(f.medians.floor, f.unit),
    formatNumber(f.medians.fastify, f.unit),
    formatNumber(f.medians['controller-runtime'], f.unit),
    ratioText(f.ratioToParsingFloor),
    ratioText(f.ratioToFloor),
    ratioText(f.ratioToFastify),
    ratioText(f.ratioToControllerRuntime),
  ]
}

/** Before/after rows: each baseline's median beside nlb-guard's, and nlb-guard ÷ it. */
function baselineRows(results: Results): { header: string[]; rows: string[][] } | undefined {
  const baselines = (results.baselines ?? []).map((b) => b.peer)
  if (baselines.length === 0) return undefined
  return {
    header: ['figure (median of rounds)', ...baselines, 'nlb-guard', ...baselines.map((b) => `÷ ${b}`)],
    rows: results.figures.map((f) => [
      `${f.label} (${f.unit})`,
      ...baselines.map((b) => formatNumber(f.medians[b], f.unit)),
      formatNumber(f.medians['nlb-guard'], f.unit),
      ...baselines.map((b) => ratioText(f.ratioToBaseline?.[b])),
    ]),
  }
}

function textTable(header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  return [pad(header, widths), pad(widths.map((w) => '-'.repeat(w)), widths), ...rows.map((r) => pad(r, widths))]
}

/** The table printed at the end of a run. */
export function textReport(results: Results): string {
  const header = ['figure (median of rounds)', 'nlb-guard', 'parsing floor', 'floor', 'fastify', 'ctrl-runtime', '÷ parsing fl.', '÷ floor', '÷ fastify', '÷ ctrl-rt']
  const rows = results.figures.map((f) => [`${f.label} (${f.unit})`, ...mainRow(f)])
  const before = baselineRows(results)
  const nlb = results.nlbGuard
  const lines = [
    '',
    `nlb-guard benchmark (${results.mode}) on ${results.machine.cpuModel}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.machine.go}, ${results.machine.loadGenerator}; ${results.settings['rounds']} round(s), ${formatSeconds(results.wallSeconds)}`,
    `  ${otherCpuText(results)}`,
    ...Object.values(results.bodies).map((b) => `  body: ${b.description}`),
    ...results.peers.filter((p) => p.missing !== undefined).map((p) => `  ${p.name}: not run: ${p.missing}`),
    '',
    ...textTable(header, rows),
    '',
    ...(before === undefined ? [] : ['before/after: nlb-guard built at other commits, in the same interleaved rounds', ...(results.baselines ?? []).map((b) => `  ${b.peer}: ${b.commit}`), ...textTable(before.header, before.rows), '']),
    ...((results.profiles ?? []).length === 0 ? [] : ['CPU profiles of nlb-guard under load (node --cpu-prof):', ...(results.profiles ?? []).flatMap(profileText), '']),
    'nlb-guard alone:',
    `  start to first answered /mutate: median ${nlb.startupMs.median.toFixed(0)} ms of ${nlb.startupMs.samples.length} starts`,
    ...(nlb.withoutCluster === undefined ? [] : [`  without a cluster connection (--kube-version alone): start ${nlb.withoutCluster.startupMs.median.toFixed(0)} ms, RSS idle ${nlb.withoutCluster.rssIdleMiB.median.toFixed(1)} MiB (medians of ${nlb.withoutCluster.startupMs.samples.length})`]),
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
    '| figure | nlb-guard | parsing floor: `node:https` + `JSON.parse` | transport limit: `node:https`, no parse | bare fastify | controller-runtime (Go) | ÷ parsing floor | ÷ transport limit | ÷ fastify | ÷ controller-runtime |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.figures.map((f) => `| ${f.label} (${f.unit}) | ${mainRow(f).join(' | ')} |`),
  ]
  const before = baselineRows(results)
  const beforeTable =
    before === undefined
      ? []
      : [
          `Before/after, from the same interleaved rounds: nlb-guard built at ${(results.baselines ?? []).map((b) => `\`${b.ref}\` (${b.commit.slice(0, 12)})`).join(', ')} (\`--baseline\`), run like the working tree's.`,
          '',
          `| ${before.header.join(' | ')} |`,
          `|---|${before.header.slice(1).map(() => '---:').join('|')}|`,
          ...before.rows.map((r) => `| ${r.join(' | ')} |`),
          '',
        ]
  const profiles = (results.profiles ?? []).flatMap((p) => ['', ...profileMarkdown(p)])
  const services = results.fakeApiserver?.services
  const sidecar = `${results.sidecar.rssIdleMiB.median.toFixed(2)} MiB (its own figures: below)`
  return [
    `Measured with \`npm run bench\`${results.mode === 'quick' ? ' --quick (a smoke run: too short for the figures to mean much)' : ''} on ${results.startedAt.slice(0, 10)}: ${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, ${m.go}. Loopback HTTPS (TLS 1.3, HTTP/1.1), the server pinned to one core and the load generator (${m.loadGenerator}) to the other; median of ${rounds} interleaved round(s), each peer a fresh process per round; ${otherCpuText(results)}. Bodies: ${Object.values(results.bodies)
      .map((b) => b.description)
      .join('; ')}.`,
    '',
    ...table,
    '',
    `The parsing floor reads the body, \`JSON.parse\`s it and echoes the uid: the least a Node webhook can do. The transport limit answers a constant review without parsing: what TLS and HTTP alone cost on this Node, which no webhook reaches. Bare fastify parses the body and echoes its uid with nlb-guard's TLS options and limits and no logger: what the framework costs before any rule. nlb-guard runs every rule and logs one JSON line per admission${services === undefined ? '' : `; it and the controller-runtime peer (\`bench/controller-runtime/\`: rule S2 on Services, rule P1 on Pods through a client-go informer's lister) read the same ${services.toLocaleString('en')} Services from a fake apiserver, so both patch the Pod with the sidecar`}. Latency at a fixed rate is measured open-loop from send to last byte.`,
    '',
    ...beforeTable,
    ...(profiles.length === 0 ? [] : ['CPU profiles of nlb-guard under load (`node --cpu-prof`, bench/profile.ts), one process per body:', ...profiles, '']),
    '| nlb-guard alone | |',
    '|---|---:|',
    `| start to first answered \`/mutate\` (median of ${nlb.startupMs.samples.length}) | ${nlb.startupMs.median.toFixed(0)} ms |`,
    `| RSS idle | ${nlb.memory.idleMiB.toFixed(1)} MiB |`,
    ...(nlb.withoutCluster === undefined ? [] : [`| without a cluster connection (\`--kube-version\` alone, client-node not loaded): start / RSS idle (median of ${nlb.withoutCluster.startupMs.samples.length}) | ${nlb.withoutCluster.startupMs.median.toFixed(0)} ms / ${nlb.withoutCluster.rssIdleMiB.median.toFixed(1)} MiB |`]),
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
