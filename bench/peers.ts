import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT } from './build.ts'
import { postReview } from './load/post.ts'

/*
 * The servers under test, each a separate process pinned to the server core. Every start is timed
 * from spawn() to the first answered POST /mutate, so each round also samples start-up time.
 */

/** The fixed peers, and `baseline <ref>` for each --baseline: nlb-guard built from another commit. */
export type PeerName = 'nlb-guard' | 'floor' | 'parsing-floor' | 'fastify' | 'controller-runtime' | `baseline ${string}`

export interface Certificates {
  readonly dir: string
  readonly cert: string
  readonly key: string
  readonly ca: string
}

export interface PeerSpec {
  readonly name: PeerName
  readonly description: string
  /** Why the peer cannot run here (Go missing, build failed); it is then reported, not run. */
  readonly missing?: string
  command(port: number, metricsPort: number, certs: Certificates): { command: string; args: string[] }
}

export interface RunningPeer {
  readonly name: PeerName
  readonly pid: number
  readonly port: number
  /** From spawn() to the first 200 answer to POST /mutate. */
  readonly startupMs: number
  rssMiB(): Promise<number>
  stop(): Promise<void>
}

/** Servers running now, for an interrupted benchmark to end them. */
export const serverProcesses = new Set<ChildProcess>()

/** The Node flags of the Dockerfile's ENTRYPOINT (`node FLAGS... script`): the bench runs what the image runs. */
export function imageNodeFlags(): string[] {
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1]
  if (entrypoint === undefined) throw new Error('the Dockerfile has no exec-form ENTRYPOINT')
  return (JSON.parse(entrypoint) as string[]).slice(1, -1)
}

export interface NlbGuardOptions {
  readonly name?: PeerName
  /** A (fake) apiserver to read Services from, so the Pod rule runs; without it `--kube-version` alone, and Pod injection is off. */
  readonly kubeconfig?: string | undefined
  /** More Node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
}

/** `cli`: dist/bundle/bin.js (what the image runs), or the run's snapshot of it (or of a baseline's). */
export function nlbGuardPeer(cli: string, options: NlbGuardOptions = {}): PeerSpec {
  const flags = [...imageNodeFlags(), ...(options.nodeFlags ?? [])]
  const cluster = options.kubeconfig === undefined ? ['--kube-version', '1.30.0'] : ['--kubeconfig', options.kubeconfig]
  return {
    name: options.name ?? 'nlb-guard',
    description: `nlb-guard serve (node ${[...imageNodeFlags(), 'dist/bundle/bin.js'].join(' ')}, as in the image), default log level info: one JSON line per admission${options.kubeconfig === undefined ? '' : '; Services from the fake apiserver'}`,
    command: (port, metricsPort, certs) => ({
      command: process.execPath,
      args: [...flags, cli, 'serve', '--tls-cert', certs.cert, '--tls-key', certs.key, ...cluster, '--address', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort), '--shutdown-delay', '0'],
    }),
  }
}

/** A plain-JavaScript reference server (a `.mjs` copy) given nlb-guard's cipher list. */
function scriptPeer(name: PeerName, description: string, script: string, ciphers: string): PeerSpec {
  return {
    name,
    description,
    command: (port, _metricsPort, certs) => ({
      command: process.execPath,
      args: [script, '--port', String(port), '--tls-cert', certs.cert, '--tls-key', certs.key, '--ciphers', ciphers],
    }),
  }
}

/**
 * `script` is bench/floor.ts copied to a `.mjs` file: the floor is written without type annotations
 * so that it runs as plain JavaScript, and Node does not load its type stripper (about 17 MiB of
 * RSS) into a process whose memory is a reference point.
 */
export function floorPeer(script: string, ciphers: string): PeerSpec {
  return scriptPeer('floor', 'transport limit: bare node:https, same Node and TLS settings, reads the body, answers a constant allowed review without parsing it', script, ciphers)
}

/** `script`: bench/parsing-floor.ts copied to a `.mjs` file, as the floor is. */
export function parsingFloorPeer(script: string, ciphers: string): PeerSpec {
  return scriptPeer('parsing-floor', 'parsing floor: bare node:https, same Node and TLS settings, reads the body, JSON.parses the review and answers allowed with its uid', script, ciphers)
}

/** `script`: bench/fastify-floor.ts copied to a `.mjs` file beside the run's node_modules. */
export function fastifyPeer(script: string, ciphers: string): PeerSpec {
  return scriptPeer('fastify', 'bare fastify, same Node, TLS and limits, no logger: parses the body, answers allowed with its uid', script, ciphers)
}

/** `apiserver`: the URL of the fake apiserver whose Services its Pod rule reads through a client-go informer. */
export function controllerRuntimePeer(binary: string | { missing: string }, apiserver: string): PeerSpec {
  return {
    name: 'controller-runtime',
    description: 'Go, controller-runtime webhook.Admission + webhook server: S2 on Services, P1 on Pods (client-go informer lister, selector match, native sidecar), both via PatchResponseFromRaw',
    ...(typeof binary === 'string' ? {} : { missing: binary.missing }),
    command: (port, _metricsPort, certs) => ({
      command: typeof binary === 'string' ? binary : 'false',
      args: ['--host', '127.0.0.1', '--port', String(port), '--cert-dir', certs.dir, '--apiserver', apiserver],
    }),
  }
}

/** VmRSS from /proc/PID/status, in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`)
  return Number(kib) / 1024
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

export interface StartOptions {
  readonly spec: PeerSpec
  readonly cpu: number
  readonly port: number
  readonly metricsPort: number
  readonly certs: Certificates
  /** A review the peer answers with 200 once it serves. */
  readonly probeBody: Buffer
  readonly logFile: string
  readonly timeoutMs?: number
}

/** Starts a peer pinned to `cpu`, polls POST /mutate every 2 ms until it answers, and times that. */
export async function startPeer(options: StartOptions): Promise<RunningPeer> {
  const { spec, port } = options
  const { command, args } = spec.command(port, options.metricsPort, options.certs)
  const log = openSync(options.logFile, 'a')
  const started = performance.now()
  // taskset execs the command: the child's pid is the server's.
  const child = spawn('taskset', ['-c', String(options.cpu), command, ...args], { cwd: ROOT, stdio: ['ignore', log, log] })
  serverProcesses.add(child)
  child.on('exit', () => serverProcesses.delete(child))
  closeSync(log)
  let exit: string | undefined
  child.on('exit', (code, signal) => (exit = `exited with ${signal ?? code}`))
  const target = { port, ca: readFileSync(options.certs.ca) }
  const deadline = started + (options.timeoutMs ?? 30_000)
  for (;;) {
    try {
      const answer = await postReview(target, false, options.probeBody)
      if (answer.status === 200) break
    } catch {
      // Not listening yet.
    }
    if (exit !== undefined || performance.now() > deadline) {
      await stopProcess(child)
      const tail = readFileSync(options.logFile, 'utf8').trim().split('\n').slice(-20).join('\n')
      throw new Error(`${spec.name} did not answer POST /mutate (${exit ?? 'timed out'}); its log ends:\n${tail}`)
    }
    await sleep(2)
  }
  const startupMs = performance.now() - started
  const pid = child.pid as number
  return {
    name: spec.name,
    pid,
    port,
    startupMs,
    rssMiB: () => rssMiB(pid),
    stop: () => stopProcess(child),
  }
}
