import { createSocket } from 'node:dgram'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort } from '../testkit/net.ts'
import { type Body, type BodyName, makeBodies } from './bodies.ts'
import { ensureDist, ensureGoPeer, exec, ROOT, snapshotDist } from './build.ts'
import { cpuMark, otherCpuPercent, waitForQuiet } from './cpu.ts'
import type { BurstsConfig, BurstsResult } from './load/bursts.ts'
import { jsonLine, loadGenerator, loadProcesses, runPinned, type ClosedLoopResult, type LoadGenerator } from './load/closed.ts'
import type { PacedConfig, PacedResult } from './load/paced.ts'
import { postReview } from './load/post.ts'
import { measurePodCache, summarisePodCache } from './pod-cache.ts'
import { type Certificates, controllerRuntimePeer, fastifyPeer, floorPeer, imageNodeFlags, nlbGuardPeer, type PeerSpec, type RunningPeer, rssMiB, serverProcesses, startPeer, stopProcess } from './peers.ts'
import { evaluateTargets, figures, markdownReport, median, README_MARKERS, textReport, withBenchResults } from './report.ts'
import type { PeerRound, Results } from './results.ts'
import { errorMessage } from '../lib/errors.ts'

const USAGE = `Usage: node bench/run.ts [--quick] [options]     (npm run bench -- [options])

Loopback HTTPS benchmark of nlb-guard against a bare node:https floor, bare fastify and a
controller-runtime webhook, server and load generator on separate cores. Prints a table,
PASS/MISS per target and a markdown snippet; writes results JSON and markdown. Never fails on a number, only when the
benchmark itself cannot run.

Options (full run defaults first, --quick second):
  --quick                  a seconds-long smoke run (CI): one round, tiny durations
  --out FILE               results JSON (default bench/results.json); markdown goes beside it (.md);
                           a full run to the default also rewrites README.md's Performance figures
  --rounds N               interleaved rounds of every peer (3; 1)
  --duration S             each throughput, new-connection and 2 MiB UPDATE run (10; 1)
  --latency-duration S     each fixed-rate latency run (15; 1)
  --rate N                 the fixed rate, requests/s (1000)
  --requests N             requests before the "after load" RSS (1000000; 10000)
  --soak S                 soak length after them (600; 4)
  --idle S                 silence between the idle-boundary bursts (100; 2)
  --server-cpu N           core the servers are pinned to (1)
  --client-cpu N           core the load generators and this script are pinned to (0)
  -h, --help               show this help
`

interface Settings {
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
}

function parseSettings(argv: readonly string[]): Settings | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'latency-duration': { type: 'string' },
      rate: { type: 'string' },
      requests: { type: 'string' },
      soak: { type: 'string' },
      idle: { type: 'string' },
      'server-cpu': { type: 'string' },
      'client-cpu': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  const quick = values.quick === true
  const number = (flag: string, text: string | undefined, fallback: number, min = 0) => {
    if (text === undefined) return fallback
    const value = Number(text)
    if (!Number.isFinite(value) || value < min) throw new Error(`--${flag} expects a number ≥ ${min}, got "${text}"`)
    return value
  }
  const idle = number('idle', values.idle, quick ? 2 : 100)
  return {
    quick,
    out: resolve(values.out ?? join(ROOT, 'bench/results.json')),
    rounds: Math.round(number('rounds', values.rounds, quick ? 1 : 3, 1)),
    duration: number('duration', values.duration, quick ? 1 : 10, 1),
    warmup: quick ? 1 : 5,
    latencyDuration: number('latency-duration', values['latency-duration'], quick ? 1 : 15, 1),
    rate: number('rate', values.rate, 1000, 1),
    requests: Math.round(number('requests', values.requests, quick ? 10_000 : 1_000_000)),
    soak: number('soak', values.soak, quick ? 4 : 600, 1),
    soakSampleSeconds: quick ? 0.5 : 5,
    idle,
    idleGaps: 1,
    startupTrials: quick ? 1 : 5,
    settleMs: quick ? 300 : 1000,
    quietWaitSeconds: quick ? 0 : 60,
    maxOtherCpuPercent: 30,
    repeatBudgetSeconds: quick ? 0 : 900,
    serverCpu: Math.round(number('server-cpu', values['server-cpu'], 1)),
    clientCpu: Math.round(number('client-cpu', values['client-cpu'], 0)),
  }
}

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
}

async function start(bench: Bench, spec: PeerSpec, tag: string): Promise<RunningPeer> {
  const peer = await startPeer({
    spec,
    cpu: bench.settings.serverCpu,
    port: await freePort(),
    metricsPort: await freePort(),
    certs: bench.certs,
    probeBody: Buffer.from(bench.bodies.service.json),
    logFile: join(bench.workDir, `${spec.name}-${tag}.log`),
  })
  bench.running.add(peer)
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
  const peer = await start(bench, nlbGuardPeer(bench.cli), 'memory')
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

/**
 * The health-check sidecar (`nlb-guard healthcheck`), as it idles in a UDP pod: a UDP socket is
 * bound to its port, so it keeps the matching TCP port open for the NLB's probe.
 */
async function sidecarRss(bench: Bench): Promise<{ rssMiB: number } | { missing: string }> {
  const port = await freePort()
  const udp = createSocket('udp4')
  await new Promise<void>((done) => udp.bind(port, '127.0.0.1', done))
  const { spawn } = await import('node:child_process')
  const child = spawn('taskset', ['-c', String(bench.settings.serverCpu), process.execPath, ...imageNodeFlags(), bench.cli, 'healthcheck', '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  serverProcesses.add(child)
  child.on('exit', () => serverProcesses.delete(child))
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  try {
    const deadline = performance.now() + 5000
    while (performance.now() < deadline && child.exitCode === null) {
      const open = await new Promise<boolean>((done) => {
        const socket = connect(port, '127.0.0.1', () => done(socket.destroy() !== undefined)).on('error', () => done(false))
      })
      if (open) break
      await sleep(20)
    }
    if (child.exitCode !== null) return { missing: `nlb-guard healthcheck exited with ${child.exitCode}: ${stderr.trim().split('\n')[0] ?? ''}` }
    await sleep(1000)
    return { rssMiB: await rssMiB(child.pid as number) }
  } finally {
    await stopProcess(child)
    udp.close()
  }
}

/** Puts a full run's markdown into the README's Performance section; false when it has no markers. */
async function updateReadme(markdown: string): Promise<boolean> {
  const file = join(ROOT, 'README.md')
  const updated = withBenchResults(await readFile(file, 'utf8'), markdown)
  if (updated === undefined) return false
  await writeFile(file, updated)
  return true
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

// The peers of every round run without a cluster (`--kube-version`), so nlb-guard answers the Pod
// body `allowed` with injection off; the Pod rule against a filled Service cache is measured apart,
// by measurePodCache (bench/pod-cache.ts), with 10 and with 10,000 Services.
function peerSpecs(cli: string, floorScript: string, fastifyScript: string, ciphers: string, goBinary: string | { missing: string }): PeerSpec[] {
  return [nlbGuardPeer(cli), floorPeer(floorScript, ciphers), fastifyPeer(fastifyScript, ciphers), controllerRuntimePeer(goBinary)]
}

async function main(argv: readonly string[]): Promise<number> {
  let settings: Settings | 'help'
  try {
    settings = parseSettings(argv)
  } catch (error: unknown) {
    process.stderr.write(`bench: ${errorMessage(error)}\n\n${USAGE}`)
    return 2
  }
  if (settings === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const s = settings
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
  const generator = await loadGenerator(workDir)
  const bench: Bench = {
    settings: s,
    workDir,
    cli,
    certs: { dir: certDir, cert: join(certDir, 'tls.crt'), key: join(certDir, 'tls.key'), ca: join(certDir, 'ca.crt') },
    bodies,
    bodyFiles,
    generator,
    running: new Set(),
  }
  const onSignal = () => {
    for (const child of [...serverProcesses, ...loadProcesses]) child.kill('SIGKILL')
    rmSync(workDir, { recursive: true, force: true })
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  let failed = false
  try {
    const floorScript = join(workDir, 'floor.mjs')
    await copyFile(join(ROOT, 'bench/floor.ts'), floorScript)
    // Beside the snapshot's node_modules link, so that `fastify` resolves.
    const fastifyScript = join(dirname(dirname(dirname(cli))), 'fastify-floor.mjs')
    await copyFile(join(ROOT, 'bench/fastify-floor.ts'), fastifyScript)
    // nlb-guard's own cipher list, from the snapshot's compiled module (it imports nothing).
    const { CIPHERS } = (await import(pathToFileURL(join(dirname(dirname(cli)), 'webhook/server/ciphers.js')).href)) as { CIPHERS: string }
    const specs = peerSpecs(cli, floorScript, fastifyScript, CIPHERS, 'missing' in go ? { missing: go.missing } : go.binary)
    const mach = machine('missing' in go ? 'Go not found' : go.goVersion, generator)
    log(`${mach.cpuModel}, ${mach.cores} cores, Node ${mach.node}, ${mach.go}, ${generator.name}; load average ${mach.loadAverageAtStart.join(' ')}`)
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
    const startupSamples = rounds.filter((r) => r.peer === 'nlb-guard').map((r) => r.startupMs)
    const { memory, idleBoundary } = await memoryAndIdle(bench, startupSamples)
    for (let trial = 0; trial < s.startupTrials; trial++) {
      const peer = await start(bench, nlbGuardPeer(bench.cli), `startup${trial}`)
      startupSamples.push(peer.startupMs)
      await stop(bench, peer)
    }
    log(`start-up: ${startupSamples.map((v) => v.toFixed(0)).join(', ')} ms`)
    const podCache = summarisePodCache(
      await measurePodCache({
        cli: bench.cli,
        certs: bench.certs,
        podBodyFile: bench.bodyFiles.pod,
        workDir,
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
    const sidecar = await sidecarRss(bench)

    const figureList = figures(rounds, s.rate)
    const idleSamples = [...rounds.filter((r) => r.peer === 'nlb-guard').map((r) => r.rssIdleMiB), memory.idleMiB]
    const startupMedian = median(startupSamples)
    const results: Results = {
      schema: 1,
      mode: s.quick ? 'quick' : 'full',
      startedAt: startedAt.toISOString(),
      wallSeconds: (performance.now() - started) / 1000,
      machine: mach,
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
      bodies: Object.fromEntries(Object.values(bodies).map((b) => [b.name, { description: b.description, bytes: Buffer.byteLength(b.json) }])),
      peers: specs.map((p) => ({ name: p.name, description: p.description, ...(p.missing === undefined ? {} : { missing: p.missing }) })),
      rounds,
      figures: figureList,
      nlbGuard: { startupMs: { samples: startupSamples, median: startupMedian }, memory, idleBoundary },
      podCache,
      sidecar,
      targets: evaluateTargets({
        figures: figureList,
        rate: s.rate,
        startupMedianMs: startupMedian,
        idleMiB: median(idleSamples),
        requests: memory.requests,
        afterRequestsMiB: memory.afterRequestsMiB,
        soakSeconds: memory.soak.seconds,
        soakGrowthMiB: memory.soak.growthMiB,
        idle: idleBoundary,
        podCache,
        quick: s.quick,
      }),
    }
    const markdown = markdownReport(results)
    const markdownFile = s.out.endsWith('.json') ? s.out.replace(/\.json$/, '.md') : `${s.out}.md`
    await mkdir(dirname(s.out), { recursive: true })
    await writeFile(s.out, `${JSON.stringify(results, null, 2)}\n`)
    await writeFile(markdownFile, markdown)
    process.stdout.write(textReport(results))
    process.stdout.write(`\n--- markdown for the README's Performance section (also in ${markdownFile}) ---\n\n${markdown}\n`)
    log(`wrote ${s.out} and ${markdownFile}`)
    // Only a full run with the default output speaks for the project: --quick and --out runs leave the README alone.
    if (!s.quick && s.out === join(ROOT, 'bench/results.json')) {
      log((await updateReadme(markdown)) ? 'updated the Performance figures in README.md' : `README.md has no ${README_MARKERS.begin} … ${README_MARKERS.end} markers: not updated`)
    }
    return 0
  } catch (error: unknown) {
    failed = true
    throw error
  } finally {
    await Promise.all([...bench.running].map((p) => p.stop()))
    if (failed) log(`logs kept in ${workDir}`)
    else await rm(workDir, { recursive: true, force: true })
  }
}

process.exitCode = await main(process.argv.slice(2))
