// Pod admission as the cluster grows: p50/p99 of the Pod CREATE review at a fixed rate against
// nlb-guard whose informer cache was filled from a fake apiserver holding 10 or 10,000 Services.
// The target (issue 4): p99 with 10,000 within 1.2× of p99 with 10.
import { readFile } from 'node:fs/promises'
import { get } from 'node:http'
import { join } from 'node:path'
import { startFakeApiserver } from './fake-apiserver.ts'
import type { PacedConfig, PacedResult } from './load/paced.ts'
import type { Certificates } from './peers.ts'
import { nlbGuardPeer, startPeer } from './peers.ts'
import { median } from './report.ts'
import type { PodCacheRound, PodCacheSize, PodCacheSummary } from './results.ts'

export interface PodCacheOptions {
  readonly cli: string
  readonly certs: Certificates
  readonly podBodyFile: string
  readonly workDir: string
  readonly rounds: number
  readonly rate: number
  readonly seconds: number
  readonly serverCpu: number
  readonly freePort: () => Promise<number>
  /** Runs bench/load/paced.ts pinned to the client core; returns its JSON result. */
  readonly paced: (config: PacedConfig) => Promise<PacedResult>
  /** Closed-loop load on the Pod body before measuring, as every peer round has (JIT warm-up). */
  readonly warmup: (port: number) => Promise<void>
  readonly answerTo: (port: number) => Promise<string>
  readonly log: (line: string) => void
}

function metric(port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve(Number(body.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN)))
    }).on('error', reject)
  })
}

function ready(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    }).on('error', () => resolve(false))
  })
}

/** Interleaved rounds: 10, 10,000, 10, 10,000, … each on a fresh server and fake apiserver. */
export async function measurePodCache(options: PodCacheOptions): Promise<PodCacheRound[]> {
  const rounds: PodCacheRound[] = []
  for (let round = 1; round <= options.rounds; round++) {
    for (const services of [10, 10_000]) {
      const fake = await startFakeApiserver(services, options.workDir)
      const metricsPort = await options.freePort()
      const base = nlbGuardPeer(options.cli)
      const spec = {
        ...base,
        command: (port: number, _metrics: number, certs: Certificates) => {
          const { command, args } = base.command(port, metricsPort, certs)
          return { command, args: [...args, '--kubeconfig', fake.kubeconfig] }
        },
      }
      const peer = await startPeer({
        spec,
        cpu: options.serverCpu,
        port: await options.freePort(),
        metricsPort,
        certs: options.certs,
        probeBody: await readFile(options.podBodyFile),
        logFile: join(options.workDir, `pod-cache-${services}-round${round}.log`),
      }).catch(async (error: unknown) => {
        await fake.stop()
        throw error
      })
      try {
        for (let i = 0; i < 600 && !(await ready(metricsPort)); i++) await new Promise((r) => setTimeout(r, 50))
        const cachedUdpServices = await metric(metricsPort, 'nlb_guard_service_cache_size')
        const answer = await options.answerTo(peer.port)
        await options.warmup(peer.port)
        const result = await options.paced({ port: peer.port, caFile: options.certs.ca, bodyFiles: [options.podBodyFile], rate: options.rate, seconds: options.seconds, connections: 8 })
        rounds.push({ services, round, cachedUdpServices, answer, p50: result.latencyMs.p50, p99: result.latencyMs.p99, errors: result.errors })
        options.log(`pod cache round ${round}, ${services} Services (${cachedUdpServices} UDP cached): ${answer}; p50 ${result.latencyMs.p50.toFixed(3)} ms, p99 ${result.latencyMs.p99.toFixed(3)} ms, errors ${result.errors}`)
      } finally {
        await peer.stop()
        await fake.stop()
      }
    }
  }
  return rounds
}

/** Medians per size and the ratio the target is about. */
export function summarisePodCache(rounds: readonly PodCacheRound[]): PodCacheSummary {
  const of = (services: number): PodCacheSize => {
    const own = rounds.filter((r) => r.services === services)
    return { p50: median(own.map((r) => r.p50)), p99: median(own.map((r) => r.p99)), cachedUdpServices: own[0]?.cachedUdpServices ?? 0, answer: own[0]?.answer ?? '', errors: own.reduce((n, r) => n + r.errors, 0) }
  }
  const small = of(10)
  const large = of(10_000)
  return { rounds, services10: small, services10000: large, p99Ratio: large.p99 / small.p99 }
}
