import type { MixedProtocolCapability, MixedProtocolFact, ProbeAnswer, ProbeResult } from '../cluster/mixed-protocol.js'
import { mixedProtocolCapability } from '../cluster/mixed-protocol.js'
import type { MixedProtocolGateSetting } from '../rules/service.js'
import { mixedProtocolUnsupportedReason } from '../rules/service.js'
import type { KubeVersion } from '../rules/version.js'
import { bounded } from '../text/bounded.js'
import type { Metrics } from './metrics.js'

/** The two logger calls used here (fastify's logger has them). */
export interface CapabilityLog {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}

export interface ReportedCapabilityDeps {
  readonly setting: MixedProtocolGateSetting
  /** The dry-run; undefined without a cluster whose version the rules judge by. */
  readonly probe: (() => Promise<ProbeAnswer>) | undefined
  /** The version the rules judge by, once known. */
  readonly version: () => KubeVersion | undefined
  readonly log: CapabilityLog
  readonly metrics: Pick<Metrics, 'mixedProtocolCapability'>
}

export interface ReportedCapability extends MixedProtocolCapability {
  /** Sets the gauge again: its value depends on the version too (the table, a forced gate). */
  versionChanged(): void
}

/**
 * The mixed-protocol fact as the server keeps it: one log line per change of the fact (not per
 * probe) and the gauge `nlb_guard_mixed_protocol_capability{source}`, one series at a time.
 */
export function reportedMixedProtocolCapability(deps: ReportedCapabilityDeps): ReportedCapability {
  const showGauge = (fact: MixedProtocolFact): void => {
    const version = deps.version()
    if (version === undefined) return
    deps.metrics.mixedProtocolCapability.reset()
    deps.metrics.mixedProtocolCapability.set({ source: fact.source }, mixedProtocolUnsupportedReason(version, fact.gate) === null ? 1 : 0)
  }
  const capability = mixedProtocolCapability({
    setting: deps.setting,
    probe: deps.probe,
    onChange(fact, result) {
      logFact(deps.log, fact, result, deps.probe === undefined)
      showGauge(fact)
    },
  })
  return { ...capability, versionChanged: () => showGauge(capability.current()) }
}

function logFact(log: CapabilityLog, fact: MixedProtocolFact, result: ProbeResult | undefined, noProbe: boolean): void {
  const what = 'mixed-protocol LoadBalancer Services'
  if (fact.source === 'config') {
    log.info({ source: fact.source, mixedProtocolLBService: fact.gate }, `${what}: MixedProtocolLBService ${fact.gate} by configuration (no probe)`)
  } else if (fact.source === 'probe') {
    const apiserver = result?.capability === 'cannot' ? { apiserver: bounded(result.message, 1000) } : {}
    log.info({ source: fact.source, ...apiserver }, `${what}: the apiserver ${fact.gate} a dry-run one`)
  } else if (noProbe) {
    log.info({ source: fact.source }, `${what}: judged by the version table (--kube-version is set: no probe)`)
  } else {
    const reason = result?.capability === 'unknown' ? result.reason : undefined
    log.warn({ source: fact.source, reason }, `${what}: the dry-run probe cannot tell; judging by the version table until it can`)
  }
}
