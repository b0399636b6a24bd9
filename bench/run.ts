import { existsSync, readFileSync, rmSync } from 'node:fs'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { freePort } from '../testkit/net.ts'
import { type Body, type BodyName, makeBodies } from './bodies.ts'
import { type Baseline, buildBaseline, ensureDist, ensureGoPeer, exec, ROOT, snapshotDist } from './build.ts'
import { cpuMark, otherCpuPercent, waitForQuiet } from './cpu.ts'
import type { BurstsConfig, BurstsResult } from './load/bursts.ts'
import { jsonLine, loadGenerator, loadProcesses, runPinned, type ClosedLoopResult, type LoadGenerator } from './load/closed.ts'
import type { PacedConfig, PacedResult } from './load/paced.ts'
import { postReview } from './load/post.ts'
import { measurePodCache, summarisePodCache } from './pod-cache.ts'
import { startFakeApiserver } from './fake-apiserver.ts'
import type { FakeApiserver } from '../testkit/fake-apiserver.ts'
import { profileDir, profileText, readProfile, summariseProfile, type ProfileSummary } from './profile.ts'
import { writeOutputs } from './outputs.ts'
import { benchSidecar } from './sidecar.ts'
import { type Certificates, controllerRuntimePeer, fastifyPeer, floorPeer, nlbGuardPeer, type NlbGuardOptions, parsingFloorPeer, type PeerSpec, type RunningPeer, serverProcesses, startPeer } from './peers.ts'
import { evaluateTargets, figures, median } from './report.ts'
import type { PeerRound, PodCacheSummary, Results } from './results.ts'
import { BENCH_USAGE, parseSettings, type Settings } from './settings.ts'
import { reportUsageError, UsageError } from '../lib/args.ts'
import { errorMessage } from '../lib/errors.ts'

const started = performance.now()
const startedAt = new Date()
const log = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)

/** Everything a measurement needs: where things are, how to load them, what is running. */
interface Bench {
  readonly settings: Settings
  readonly workDir: string
  /** The run's snapshot of dist/bundle/bin.js. */
  readonly cli: string
  readonly certs: Certificates
  readonly bodies: Record<BodyName, Body>
  readonly bodyFiles: Record<BodyName, string>
  readonly generator: LoadGenerator
  readonly running: Set<RunningPeer>
  /** The apiserver every nlb-guard and the controller-runtime peer read Services from (ROUND_SERVICES of them). */
  readonly fake: FakeApiserver
  readonly baselines: readonly Baseline[]
}

/**
 * Services in the rounds' fake apiserver (bench/fake-apiserver.ts: one selects the Pod body, a
 * quarter are UDP): enough for a real lookup, the cache-size question itself is bench/pod-cache.ts's.
 */
const ROUND_SERVICES = 1000

/** nlb-guard (the working tree's, or a baseline's), its Services from the run's fake apiserver. */
function nlbGuard(bench: Bench, options: NlbGuardOptions & { readonly cli?: string } = {}): PeerSpec {
  return nlbGuardPeer(options.cli ?? bench.cli, { kubeconfig: bench.fake.kubeconfig, ...options })
}

const isNlbGuard = (spec: PeerSpec) => spec.name === 'nlb-guard' || spec.name.startsWith('baseline ')

/** nlb-guard answers /mutate before its Service cache is listed: /readyz on the metrics port says when it is. */
async function waitReady(metricsPort: number): Promise<void> {
  const { get } = await import('node:http')
  const ready = () =>
    new Promise<boolean>((resolve) => {
      get({ host: '127.0.0.1', port: metricsPort, path: '/readyz' }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      }).on('error', () => resolve(false))
    })
  for (let i = 0; i < 1500; i++) {
    if (await ready()) return
    await sleep(20)
  }
  throw new Error(`nlb-guard not ready after 30 s (metrics port ${metricsPort})`)
}

async function start(bench: Bench, spec: PeerSpec, tag: string): Promise<RunningPeer> {
  const metricsPort = await freePort()
  const peer = await startPeer({
    spec,
    cpu: bench.settings.serverCpu,
    port: await freePort(),
    metricsPort,
    certs: bench.certs,
    probeBody: Buffer.from(bench.bodies.service.json),
    logFile: join(bench.workDir, `${spec.name}-${tag}.log`),
  })
  bench.running.add(peer)
  if (isNlbGuard(spec)) await waitReady(metricsPort)
  return peer
}

async function stop(bench: Bench, peer: RunningPeer): Promise<void> {
  await peer.stop()
  bench.running.delete(peer)
}

function closedLoop(bench: Bench, port: number, bodies: readonly BodyName[], connections: number, seconds: number, keepAlive = true): Promise<ClosedLoopResult> {
  return bench.generator.run({ port, bodyFiles: bodies.map((b) => bench.bodyFiles[b]), connections, seconds, keepAlive, cpu: bench.settings.clientCpu })
}

async function runPaced(bench: Bench, config: PacedConfig): Promise<PacedResult> {
  return jsonLine<PacedResult>(await runPinned(bench.settings.clientCpu, process.execPath, [join(ROOT, 'bench/load/paced.ts'), JSON.stringify(config)]))
}

function paced(bench: Bench, port: number, body: BodyName): Promise<PacedResult> {
  return runPaced(bench, { port, caFile: bench.certs.ca, bodyFiles: [bench.bodyFiles[body]], rate: bench.settings.rate, seconds: bench.settings.latencyDuration, connections: 8 })
}

/** What a peer answers to a body: `patched`, `allowed`, `denied: …` or the HTTP failure. */
async function answerTo(bench: Bench, port: number, body: BodyName): Promise<string> {
  try {
    const answer = await postReview({ port, ca: readFileSync(bench.certs.ca) }, false, bench.bodies[body].json)
    if (answer.status !== 200) return `HTTP ${answer.status}`
    const response = (JSON.parse(answer.body) as { response?: { allowed?: boolean; patch?: string; status?: { message?: string } } }).response
    if (response?.allowed !== true) return `denied: ${response?.status?.message ?? '?'}`
    return response.patch === undefined ? 'allowed' : 'patched'
  } catch (error: unknown) {
    return `error: ${errorMessage(error)}`
  }
}

/** One peer, one round: a fresh process through every load in turn. */
async function peerRound(bench: Bench, spec: PeerSpec, round: number): Promise<PeerRound> {
  const s = bench.settings
  const otherBefore = s.quietWaitSeconds > 0 ? await waitForQuiet(25, s.quietWaitSeconds, log) : 0
  const mark = cpuMark()
  const loadAverage = loadavg()[0] ?? 0
  const peer = await start(bench, spec, `round${round}`)
  let result: Omit<PeerRound, 'otherCpuPercent'>
  try {
    await sleep(s.settleMs)
    const rssIdleMiB = await peer.rssMiB()
    const answers: Record<string, string> = {}
    for (const body of ['service', 'pod', 'update'] as const) answers[body] = await answerTo(bench, peer.port, body)
    let errors = 0
    const count = <T extends { errors: number }>(result: T): T => {
      errors += result.errors
      return result
    }
    count(await closedLoop(bench, peer.port, ['service', 'pod'], 8, s.warmup))
    const throughput: Record<string, number> = {}
    for (const body of ['service', 'pod'] as const) {
      for (const connections of [8, 25]) {
        throughput[`${body}@${connections}`] = count(await closedLoop(bench, peer.port, [body], connections, s.duration)).rps
      }
    }
    const latency: PeerRound['latency'] = {}
    for (const body of ['service', 'pod'] as const) {
      const result = count(await paced(bench, peer.port, body))
      if (result.firstError !== undefined) log(`  ${spec.name} ${body} at ${s.rate}/s: ${result.errors} errors, first: ${result.firstError}`)
      Object.assign(latency, { [body]: { p50: result.latencyMs.p50, p99: result.latencyMs.p99, achievedRate: result.achievedRate } })
    }
    const newConnectionRps = count(await closedLoop(bench, peer.port, ['service'], 8, s.duration, false)).rps
    const update = count(await closedLoop(bench, peer.port, ['update'], 1, Math.max(s.duration, 2)))
    const rssAfterMiB = await peer.rssMiB()
    result = {
      peer: spec.name,
      round,
      startupMs: peer.startupMs,
      rssIdleMiB,
      rssAfterMiB,
      answers,
      throughput,
      latency,
      newConnectionRps,
      update: { p50: update.latencyMs.p50, p99: update.latencyMs.p99, rps: update.rps },
      errors,
      loadAverage,
    }
  } finally {
    await stop(bench, peer)
  }
  // Measured after the stop: the server's CPU time counts as ours only once it is reaped.
  const other = otherCpuPercent(mark, cpuMark())
  log(
    `round ${round} ${spec.name}: start ${peer.startupMs.toFixed(0)} ms; ${Object.entries(result.throughput)
      .map(([k, v]) => `${k} ${Math.round(v)}/s`)
      .join(', ')}; p99 ${result.latency['service']?.p99.toFixed(2)} ms; new-conn ${Math.round(result.newConnectionRps)}/s; 2 MiB p99 ${result.update.p99.toFixed(1)} ms; RSS ${result.rssIdleMiB.toFixed(0)}→${result.rssAfterMiB.toFixed(0)} MiB; errors ${result.errors}; other processes ${other.toFixed(0)}% of a core (${otherBefore.toFixed(0)}% before); answers ${JSON.stringify(result.answers)}`,
  )
  return { ...result, otherCpuPercent: other }
}

/** nlb-guard alone: RSS idle, after N requests, over a soak; then the idle boundary on the same process. */
async function memoryAndIdle(bench: Bench, startupSamples: number[]) {
  const s = bench.settings
  const peer = await start(bench, nlbGuard(bench), 'memory')
  startupSamples.push(peer.startupMs)
  try {
    await sleep(s.quick ? 500 : 2000)
    const idleMiB = await peer.rssMiB()
    log(`memory: idle ${idleMiB.toFixed(1)} MiB; sending ${s.requests.toLocaleString('en')} requests (Service and Pod in turn, 8 connections)`)
    let requests = 0
    let rps = 0
    while (requests < s.requests) {
      const chunk = rps === 0 ? 1 : Math.min(s.quick ? 2 : 10, Math.max(1, Math.ceil((s.requests - requests) / rps)))
      const result = await closedLoop(bench, peer.port, ['service', 'pod'], 8, chunk)
      requests += result.requests
      rps = result.rps
    }
    await sleep(s.settleMs)
    const afterRequestsMiB = await peer.rssMiB()
    log(`memory: after ${requests.toLocaleString('en')} requests ${afterRequestsMiB.toFixed(1)} MiB; soaking ${s.soak} s`)

    const samples: Array<[number, number]> = []
    const soakStart = performance.now()
    const soak = closedLoop(bench, peer.port, ['service', 'pod'], 8, s.soak)
    let finished = false
    void soak.finally(() => (finished = true))
    while (!finished) {
      samples.push([(performance.now() - soakStart) / 1000, await peer.rssMiB()])
      await Promise.race([sleep(s.soakSampleSeconds * 1000), soak.catch(() => undefined)])
    }
    const soakResult = await soak
    samples.push([(performance.now() - soakStart) / 1000, await peer.rssMiB()])
    const window = Math.min(60, s.soak / 4)
    const first = median(samples.filter(([t]) => t <= window).map(([, v]) => v))
    const last = median(samples.filter(([t]) => t >= soakResult.seconds - window).map(([, v]) => v))
    const growthMiB = last - first
    log(`memory: soak ${soakResult.requests.toLocaleString('en')} requests, ${soakResult.errors} errors, RSS ${first.toFixed(1)} → ${last.toFixed(1)} MiB`)

    log(`idle boundary: bursts ${s.idle} s apart on the same keep-alive connections`)
    const config: BurstsConfig = { port: peer.port, caFile: bench.certs.ca, bodyFile: bench.bodyFiles.service, connections: 8, requestsPerBurst: 200, idleSeconds: s.idle, gaps: s.idleGaps }
    const idle = jsonLine<BurstsResult>(await runPinned(s.clientCpu, process.execPath, [join(ROOT, 'bench/load/bursts.ts'), JSON.stringify(config)]))
    log(`idle boundary: ${idle.requests} requests, ${idle.errors} errors, ${idle.closedWhileIdle} closed while idle, ${idle.reusedAfterIdle}/${idle.requestsAfterIdle} reused`)
    return {
      memory: { idleMiB, requests, afterRequestsMiB, soak: { seconds: soakResult.seconds, requests: soakResult.requests, errors: soakResult.errors, samples, growthMiB } },
      idleBoundary: { idleSeconds: s.idle, gaps: s.idleGaps, ...idle },
    }
  } finally {
    await stop(bench, peer)
  }
}

function machine(goVersion: string, generator: LoadGenerator): Results['machine'] {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    go: goVersion,
    loadGenerator: generator.name,
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
  }
}

// nlb-guard (each baseline too) and the controller-runtime peer read the Services of one fake
// apiserver, so both run their Pod rule on the Pod body (a lookup, a selector match, a sidecar
// patch); how the Pod rule scales with the cache is measured apart, by measurePodCache
// (bench/pod-cache.ts), with 10 and with 10,000 Services.

async function main(argv: readonly string[]): Promise<number> {
  let settings: Settings | 'help'
  try {
    settings = parseSettings(argv, ROOT)
  } catch (error: unknown) {
    if (error instanceof UsageError) return reportUsageError(process.stderr, 'bench', error.message, error.usage)
    throw error
  }
  if (settings === 'help') {
    process.stdout.write(BENCH_USAGE)
    return 0
  }
  const s = settings
  const { bench, go } = await prepare(s)
  const onSignal = () => {
    for (const child of [...serverProcesses, ...loadProcesses]) child.kill('SIGKILL')
    void bench.fake.stop()
    rmSync(bench.workDir, { recursive: true, force: true })
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  // A failed run keeps its folder (the servers' logs), as does --profile-only (the .cpuprofile files).
  let keep = false
  try {
    if (s.profileOnly) {
      process.stdout.write(`${(await profileUnderLoad(bench)).flatMap(profileText).join('\n')}\n`)
      keep = true
      return 0
    }
    const specs = await peers(bench, go)
    const mach = machine('missing' in go ? 'Go not found' : go.goVersion, bench.generator)
    log(`${mach.cpuModel}, ${mach.cores} cores, Node ${mach.node}, ${mach.go}, ${bench.generator.name}; load average ${mach.loadAverageAtStart.join(' ')}`)
    const rounds = await measureRounds(bench, specs)
    const profiles = await profileUnderLoad(bench)
    const startupSamples = rounds.filter((r) => r.peer === 'nlb-guard').map((r) => r.startupMs)
    const { memory, idleBoundary } = await memoryAndIdle(bench, startupSamples)
    await measureStartups(bench, startupSamples)
    const noCluster = await withoutCluster(bench)
    const podCache = await podCacheFigures(bench)
    // The sidecar's own figures (bench/sidecar.ts): a full run to the default output writes them too.
    const sidecar = await benchSidecar({ quick: s.quick, cpu: s.serverCpu, log, ...(s.out === join(ROOT, 'bench/results.json') ? {} : { out: join(dirname(s.out), 'sidecar-results.json') }) })
    const results = assembleResults({ bench, mach, specs, rounds, startupSamples, memory, idleBoundary, podCache, sidecar, profiles, noCluster })
    await writeOutputs(results, settings, log)
    return 0
  } catch (error: unknown) {
    keep = true
    throw error
  } finally {
    await Promise.all([...bench.running].map((p) => p.stop()))
    await bench.fake.stop()
    if (keep) log(`logs and profiles kept in ${bench.workDir}`)
    else await rm(bench.workDir, { recursive: true, force: true })
  }
}

/** Pins this process, builds what is missing, and lays out the run's folder: a snapshot of dist, certificates, bodies. */
async function prepare(s: Settings): Promise<{ bench: Bench; go: Awaited<ReturnType<typeof ensureGoPeer>> }> {
  if (cpus().length < 2) log(`warning: ${cpus().length} core: server and load generator share it, the figures mean little`)
  // -a: every thread; one that ends while taskset walks them fails the call, so try again.
  let pinned = await exec('taskset', ['-a', '-p', '-c', String(s.clientCpu), String(process.pid)])
  for (let attempt = 1; pinned.code !== 0 && attempt < 5; attempt++) pinned = await exec('taskset', ['-a', '-p', '-c', String(s.clientCpu), String(process.pid)])
  if (pinned.code !== 0) throw new Error(`taskset failed (util-linux is needed to pin processes): ${pinned.output}`)

  await ensureDist(log)
  const go = await ensureGoPeer(log)
  if ('missing' in go) log(`controller-runtime peer not run: ${go.missing}`)
  const workDir = await mkdtemp(join(tmpdir(), 'nlb-guard-bench-'))
  const cli = await snapshotDist(join(workDir, 'app'))
  const certDir = join(workDir, 'certs')
  const certsResult = await exec(process.execPath, [cli, 'certs', 'generate', '--service', 'nlb-guard', '--namespace', 'bench', '--out', certDir, '--ip', '127.0.0.1', '--dns', 'localhost'])
  if (certsResult.code !== 0) throw new Error(`nlb-guard certs generate failed: ${certsResult.output}`)
  const bodies = makeBodies()
  const bodyFiles = {} as Record<BodyName, string>
  for (const body of Object.values(bodies)) {
    bodyFiles[body.name] = join(workDir, `${body.name}.json`)
    await writeFile(bodyFiles[body.name], body.json)
  }
  const baselines: Baseline[] = []
  for (const ref of s.baselines) baselines.push(await buildBaseline(ref, log))
  const bench: Bench = {
    fake: await startFakeApiserver(ROUND_SERVICES, workDir),
    baselines,
    settings: s,
    workDir,
    cli,
    certs: { dir: certDir, cert: join(certDir, 'tls.crt'), key: join(certDir, 'tls.key'), ca: join(certDir, 'ca.crt') },
    bodies,
    bodyFiles,
    generator: await loadGenerator(workDir),
    running: new Set(),
  }
  return { bench, go }
}

/** The four peers, their scripts copied next to the snapshot. */
async function peers(bench: Bench, go: Awaited<ReturnType<typeof ensureGoPeer>>): Promise<PeerSpec[]> {
  const { cli, workDir } = bench
  const floorScript = join(workDir, 'floor.mjs')
  await copyFile(join(ROOT, 'bench/floor.ts'), floorScript)
  // Beside the snapshot's node_modules link, so that `fastify` resolves.
  const fastifyScript = join(dirname(dirname(dirname(cli))), 'fastify-floor.mjs')
  await copyFile(join(ROOT, 'bench/fastify-floor.ts'), fastifyScript)
  const parsingFloorScript = join(workDir, 'parsing-floor.mjs')
  await copyFile(join(ROOT, 'bench/parsing-floor.ts'), parsingFloorScript)
  // nlb-guard's own cipher list, from the snapshot's compiled module (it imports nothing).
  const { CIPHERS } = (await import(pathToFileURL(join(dirname(dirname(cli)), 'webhook/server/ciphers.js')).href)) as { CIPHERS: string }
  return [
    nlbGuard(bench),
    ...bench.baselines.map((b) => nlbGuard(bench, { cli: b.cli, name: `baseline ${b.ref}` })),
    floorPeer(floorScript, CIPHERS),
    parsingFloorPeer(parsingFloorScript, CIPHERS),
    fastifyPeer(fastifyScript, CIPHERS),
    controllerRuntimePeer('missing' in go ? { missing: go.missing } : go.binary, bench.fake.url),
  ]
}

/**
 * CPU profiles of nlb-guard (`node --cpu-prof`, as the image runs it otherwise) answering the
 * Service body, then the Pod body, closed-loop on 8 connections; each a fresh process, warmed up,
 * then loaded and stopped at once. Its profile is written when it exits; the summary covers the
 * load's last seconds only, so the start and the warm-up are left out.
 */
async function profileUnderLoad(bench: Bench): Promise<ProfileSummary[]> {
  const summaries: ProfileSummary[] = []
  for (const body of ['service', 'pod'] as const) {
    const dir = await profileDir(bench.workDir, body)
    const peer = await start(bench, nlbGuard(bench, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] }), `profile-${body}`)
    let load: ClosedLoopResult
    try {
      await closedLoop(bench, peer.port, [body], 8, bench.settings.warmup)
      load = await closedLoop(bench, peer.port, [body], 8, bench.settings.profileSeconds)
    } finally {
      await stop(bench, peer)
    }
    const summary = summariseProfile(await readProfile(dir), `${bench.bodies[body].description}, 8 connections, ${Math.round(load.rps).toLocaleString('en')} req/s`, {
      // The load's seconds less a little: the stop after it takes a few milliseconds.
      windowMs: Math.max(500, load.seconds * 1000 - 300),
    })
    summaries.push(summary)
    log(`profile ${body}: ${Math.round(load.rps)} req/s; top self: ${summary.topSelf.slice(0, 5).map((f) => `${f.frame} ${(f.self * 100).toFixed(1)}%`).join(', ')}`)
  }
  return summaries
}

/** Every peer once per round, interleaved; a round disturbed by other processes is measured again while the budget lasts. */
async function measureRounds(bench: Bench, specs: readonly PeerSpec[]): Promise<PeerRound[]> {
  const s = bench.settings
  const rounds: PeerRound[] = []
  let repeatBudgetMs = s.repeatBudgetSeconds * 1000
  for (let round = 1; round <= s.rounds; round++) {
    for (const spec of specs) {
      if (spec.missing !== undefined) continue
      try {
        for (;;) {
          const begun = performance.now()
          const result = await peerRound(bench, spec, round)
          if (result.otherCpuPercent <= s.maxOtherCpuPercent || repeatBudgetMs <= 0) {
            rounds.push(result)
            break
          }
          repeatBudgetMs -= performance.now() - begun
          log(`round ${round} ${spec.name}: other processes used ${result.otherCpuPercent.toFixed(0)}% of a core meanwhile: measuring it again`)
        }
      } catch (error: unknown) {
        // A peer that breaks is reported; only nlb-guard breaking fails the run.
        if (spec.name === 'nlb-guard') throw error
        log(`round ${round} ${spec.name} failed: ${errorMessage(error)}`)
      }
    }
  }
  return rounds
}

/**
 * nlb-guard without a cluster connection (`--kube-version` alone: `@kubernetes/client-node` is not
 * loaded): its start and idle RSS, beside the figures with one (every other nlb-guard of the run).
 */
async function withoutCluster(bench: Bench): Promise<NonNullable<Results['nlbGuard']['withoutCluster']>> {
  const startup: number[] = []
  const rss: number[] = []
  for (let trial = 0; trial < Math.max(1, Math.min(3, bench.settings.startupTrials)); trial++) {
    const peer = await start(bench, nlbGuardPeer(bench.cli), `no-cluster${trial}`)
    startup.push(peer.startupMs)
    await sleep(bench.settings.settleMs)
    rss.push(await peer.rssMiB())
    await stop(bench, peer)
  }
  log(`without a cluster connection: start ${startup.map((v) => v.toFixed(0)).join(', ')} ms; RSS idle ${rss.map((v) => v.toFixed(1)).join(', ')} MiB`)
  return { startupMs: { samples: startup, median: median(startup) }, rssIdleMiB: { samples: rss, median: median(rss) } }
}

/** More cold starts of nlb-guard, added to the rounds' own. */
async function measureStartups(bench: Bench, startupSamples: number[]): Promise<void> {
  for (let trial = 0; trial < bench.settings.startupTrials; trial++) {
    const peer = await start(bench, nlbGuard(bench), `startup${trial}`)
    startupSamples.push(peer.startupMs)
    await stop(bench, peer)
  }
  log(`start-up: ${startupSamples.map((v) => v.toFixed(0)).join(', ')} ms`)
}

async function podCacheFigures(bench: Bench): Promise<PodCacheSummary> {
  const s = bench.settings
  return summarisePodCache(
    await measurePodCache({
      cli: bench.cli,
      certs: bench.certs,
      podBodyFile: bench.bodyFiles.pod,
      workDir: bench.workDir,
      rounds: s.rounds,
      rate: s.rate,
      seconds: s.latencyDuration,
      serverCpu: s.serverCpu,
      freePort,
      paced: (config) => runPaced(bench, config),
      warmup: async (port) => void (await closedLoop(bench, port, ['pod'], 8, s.warmup)),
      answerTo: (port) => answerTo(bench, port, 'pod'),
      log,
    }),
  )
}

interface Measured {
  readonly bench: Bench
  readonly mach: Results['machine']
  readonly specs: readonly PeerSpec[]
  readonly rounds: readonly PeerRound[]
  readonly startupSamples: readonly number[]
  readonly memory: Results['nlbGuard']['memory']
  readonly idleBoundary: Results['nlbGuard']['idleBoundary']
  readonly podCache: PodCacheSummary
  readonly sidecar: Results['sidecar']
  readonly profiles: readonly ProfileSummary[]
  readonly noCluster: NonNullable<Results['nlbGuard']['withoutCluster']>
}

/** bench/results.json from what was measured: the figures and each target's verdict. */
function assembleResults(m: Measured): Results {
  const s = m.bench.settings
  const figureList = figures(m.rounds, s.rate)
  const idleSamples = [...m.rounds.filter((r) => r.peer === 'nlb-guard').map((r) => r.rssIdleMiB), m.memory.idleMiB]
  const startupMedian = median(m.startupSamples)
  return {
    schema: 1,
    mode: s.quick ? 'quick' : 'full',
    startedAt: startedAt.toISOString(),
    wallSeconds: (performance.now() - started) / 1000,
    machine: m.mach,
    settings: {
      rounds: s.rounds,
      durationSeconds: s.duration,
      warmupSeconds: s.warmup,
      latencyDurationSeconds: s.latencyDuration,
      rate: s.rate,
      requests: s.requests,
      soakSeconds: s.soak,
      idleSeconds: s.idle,
      serverCpu: s.serverCpu,
      clientCpu: s.clientCpu,
      nlbGuardLogLevel: 'info',
    },
    bodies: Object.fromEntries(Object.values(m.bench.bodies).map((b) => [b.name, { description: b.description, bytes: Buffer.byteLength(b.json) }])),
    peers: m.specs.map((p) => ({ name: p.name, description: p.description, ...(p.missing === undefined ? {} : { missing: p.missing }) })),
    rounds: [...m.rounds],
    figures: figureList,
    nlbGuard: { startupMs: { samples: [...m.startupSamples], median: startupMedian }, memory: m.memory, idleBoundary: m.idleBoundary, withoutCluster: m.noCluster },
    podCache: m.podCache,
    sidecar: m.sidecar,
    profiles: [...m.profiles],
    fakeApiserver: { services: ROUND_SERVICES },
    baselines: m.bench.baselines.map((b) => ({ peer: `baseline ${b.ref}`, ref: b.ref, commit: b.commit })),
    targets: evaluateTargets({
      figures: figureList,
      rate: s.rate,
      startupMedianMs: startupMedian,
      withoutCluster: m.noCluster,
      idleMiB: median(idleSamples),
      requests: m.memory.requests,
      afterRequestsMiB: m.memory.afterRequestsMiB,
      soakSeconds: m.memory.soak.seconds,
      soakGrowthMiB: m.memory.soak.growthMiB,
      idle: m.idleBoundary,
      podCache: m.podCache,
      quick: s.quick,
    }),
  }
}

process.exitCode = await main(process.argv.slice(2))
