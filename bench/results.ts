import type { SidecarFigures } from './sidecar.ts'
import type { BurstsResult } from './load/bursts.ts'
import type { PeerName } from './peers.ts'
import type { ProfileSummary } from './profile.ts'

/** bench/results.json. Times in milliseconds, memory in MiB (VmRSS, KiB / 1024), rates per second. */

export interface LatencySummary {
  readonly p50: number
  readonly p99: number
}

/** One peer in one round: a fresh process, measured under every load in turn. */
export interface PeerRound {
  readonly peer: PeerName
  readonly round: number
  readonly startupMs: number
  readonly rssIdleMiB: number
  /** After all of this round's loads, the 2 MiB UPDATEs included. */
  readonly rssAfterMiB: number
  /** What the peer answered to each body before the load (patched / allowed / an error). */
  readonly answers: Readonly<Record<string, string>>
  /** Requests per second, keyed `<body>@<connections>`. */
  readonly throughput: Readonly<Record<string, number>>
  /** Fixed-rate latency, keyed by body. */
  readonly latency: Readonly<Record<string, LatencySummary & { readonly achievedRate: number }>>
  /** Closed loop, `Connection: close`: a full TLS handshake per request. */
  readonly newConnectionRps: number
  /** The 2 MiB UPDATE, one connection, back to back. */
  readonly update: LatencySummary & { readonly rps: number }
  /** Non-2xx answers and connection errors over every load of the round. */
  readonly errors: number
  /** 1-minute load average when the round started. */
  readonly loadAverage: number
  /** CPU used by processes other than the benchmark's during the round, in percent of one core. */
  readonly otherCpuPercent: number
}

export interface Figure {
  readonly key: string
  readonly label: string
  readonly unit: string
  readonly higherIsBetter: boolean
  /** Median over rounds, per peer; absent when the peer did not run. */
  readonly medians: Readonly<Partial<Record<PeerName, number>>>
  /** nlb-guard ÷ the transport limit (the floor that does not parse). */
  readonly ratioToFloor?: number
  readonly ratioToParsingFloor?: number
  readonly ratioToFastify?: number
  readonly ratioToControllerRuntime?: number
  /** nlb-guard ÷ each baseline peer, by peer name (before/after). */
  readonly ratioToBaseline?: Readonly<Record<string, number>>
}

export interface TargetResult {
  readonly target: string
  readonly value: string
  /** null: not measured in this run (the reason is in `note`). */
  readonly pass: boolean | null
  readonly note?: string
}

export interface Results {
  readonly schema: 1
  readonly mode: 'full' | 'quick'
  readonly startedAt: string
  readonly wallSeconds: number
  readonly machine: {
    readonly cpuModel: string
    readonly cores: number
    readonly kernel: string
    readonly node: string
    readonly go: string
    readonly loadGenerator: string
    readonly loadAverageAtStart: readonly number[]
  }
  readonly settings: Readonly<Record<string, number | string | boolean>>
  readonly bodies: Readonly<Record<string, { readonly description: string; readonly bytes: number }>>
  readonly peers: ReadonlyArray<{ readonly name: PeerName; readonly description: string; readonly missing?: string }>
  readonly rounds: readonly PeerRound[]
  readonly figures: readonly Figure[]
  readonly nlbGuard: {
    readonly startupMs: { readonly samples: readonly number[]; readonly median: number }
    readonly memory: {
      readonly idleMiB: number
      readonly requests: number
      readonly afterRequestsMiB: number
      readonly soak: { readonly seconds: number; readonly requests: number; readonly errors: number; readonly samples: ReadonlyArray<readonly [number, number]>; readonly growthMiB: number }
    }
    /** A client idling between bursts on its keep-alive connections (bench/load/bursts.ts). */
    readonly idleBoundary: BurstsResult & { readonly idleSeconds: number; readonly gaps: number }
    /** `--kube-version` alone, no cluster connection (client-node not loaded); absent in older results. */
    readonly withoutCluster?: { readonly startupMs: { readonly samples: readonly number[]; readonly median: number }; readonly rssIdleMiB: { readonly samples: readonly number[]; readonly median: number } }
  }
  /** The Pod CREATE at the fixed rate against nlb-guard whose Service cache holds 10 or 10,000 Services. */
  readonly podCache: PodCacheSummary
  /** The health-check sidecar (bench/sidecar.ts); older results hold only the previous sidecar's `rssMiB`. */
  readonly sidecar: SidecarFigures
  /** CPU profiles of nlb-guard under load (bench/profile.ts); absent in results from before them. */
  readonly profiles?: readonly ProfileSummary[]
  /** The rounds' fake apiserver: how many Services nlb-guard's and controller-runtime's caches list. */
  readonly fakeApiserver?: { readonly services: number }
  /** nlb-guard built at other commits, run as peers in the same rounds (--baseline). */
  readonly baselines?: ReadonlyArray<{ readonly peer: PeerName; readonly ref: string; readonly commit: string }>
  readonly targets: readonly TargetResult[]
}

/** One pod-cache round (bench/pod-cache.ts): one size, one fresh nlb-guard. */
export interface PodCacheRound {
  readonly services: number
  readonly round: number
  readonly cachedUdpServices: number
  readonly answer: string
  readonly p50: number
  readonly p99: number
  readonly errors: number
}

export interface PodCacheSize {
  readonly p50: number
  readonly p99: number
  readonly cachedUdpServices: number
  readonly answer: string
  readonly errors: number
}

export interface PodCacheSummary {
  readonly rounds: readonly PodCacheRound[]
  readonly services10: PodCacheSize
  readonly services10000: PodCacheSize
  readonly p99Ratio: number
}
