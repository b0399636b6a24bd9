import { errorMessage } from '../../lib/errors.js'
import { IGNORE } from '../rules/annotations.js'
import { bounded } from '../text/bounded.js'
import type { MixedProtocolGate, MixedProtocolGateSetting } from '../rules/service.js'

/**
 * Whether the cluster accepts mixed-protocol LoadBalancer Services, asked of its apiserver: a
 * server-side dry-run create of one such Service in nlb-guard's own namespace. The apiserver runs
 * its admission chain and its own validation (feature gates included) and stores nothing. The
 * answer outranks the version table, which only knows each version's default; the configuration
 * (`mixedProtocolLBService: enabled|disabled`) outranks both.
 */

/** The dry-run Service. nlb-guard.io/ignore makes nlb-guard's own rules (and matchConditions) skip it. */
export const PROBE_SERVICE_NAME = 'nlb-guard-mixed-protocol-probe'
export function probeService(namespace: string) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: PROBE_SERVICE_NAME,
      namespace,
      annotations: { [IGNORE]: 'true' },
      labels: { 'app.kubernetes.io/name': 'nlb-guard', 'app.kubernetes.io/component': 'mixed-protocol-probe' },
    },
    spec: {
      type: 'LoadBalancer',
      // One port number for both protocols: valid on every version (uniqueness is per port and protocol).
      ports: [
        { name: 'tcp', port: 53, protocol: 'TCP' },
        { name: 'udp', port: 53, protocol: 'UDP' },
      ],
    },
  }
}

/** What the apiserver said to the dry-run, reduced to what the decision needs. */
export type ProbeAnswer =
  | { readonly kind: 'accepted' }
  /** An API Status: a refusal by validation, RBAC, a webhook, a missing namespace, … */
  | { readonly kind: 'status'; readonly code: number; readonly reason?: string | undefined; readonly message: string }
  /** No answer from the apiserver: network, TLS, timeout. */
  | { readonly kind: 'failed'; readonly message: string }

export type ProbeResult =
  | { readonly capability: 'can' }
  | { readonly capability: 'cannot'; readonly message: string }
  /** The probe could not tell: the reason, for the log. */
  | { readonly capability: 'unknown'; readonly reason: string }

// The apiserver's own refusals of a mixed-protocol LoadBalancer Service (pkg/apis/core/validation):
// ValidateService before 1.20, and 1.20–1.25 with the MixedProtocolLBService gate off.
const BUILT_IN_REFUSALS = [
  'cannot create an external load balancer with mix protocols',
  "may not contain more than 1 protocol when type is 'LoadBalancer'",
]

/** The reason goes to the log; another webhook's denial is as long as its author made it. */
const MAX_REASON = 500

/**
 * What the dry-run's answer says about the cluster. Only the apiserver's own validation (HTTP 422
 * Invalid, with one of its two messages) means "cannot"; anything else (RBAC, a webhook's denial, a
 * missing namespace, an unreachable apiserver) tells nothing about the cluster's Services.
 */
export function classifyProbeAnswer(answer: ProbeAnswer): ProbeResult {
  if (answer.kind === 'accepted') return { capability: 'can' }
  if (answer.kind === 'failed') return { capability: 'unknown', reason: bounded(answer.message, MAX_REASON) }
  // A webhook's denial is worded "admission webhook ... denied the request: ..." and may quote anything.
  const builtIn = answer.code === 422 && !answer.message.startsWith('admission webhook')
  if (builtIn && BUILT_IN_REFUSALS.some((text) => answer.message.includes(text))) {
    return { capability: 'cannot', message: answer.message }
  }
  return { capability: 'unknown', reason: bounded(`HTTP ${answer.code}${answer.reason ? ` ${answer.reason}` : ''}: ${answer.message}`, MAX_REASON) }
}

/** Where the rules' mixed-protocol fact comes from; the metric's closed label set. */
export type CapabilitySource = 'config' | 'probe' | 'version-table'

export interface MixedProtocolFact {
  /** For the rules' `cluster.mixedProtocolGate`. */
  readonly gate: MixedProtocolGate
  readonly source: CapabilitySource
}

/** Precedence: configuration > the probe's answer > the version table. */
export function mixedProtocolFact(setting: MixedProtocolGateSetting, probe: ProbeResult | undefined): MixedProtocolFact {
  if (setting !== 'auto') return { gate: setting, source: 'config' }
  if (probe?.capability === 'can') return { gate: 'accepted', source: 'probe' }
  if (probe?.capability === 'cannot') return { gate: 'refused', source: 'probe' }
  return { gate: 'auto', source: 'version-table' }
}

export interface MixedProtocolCapabilityOptions {
  readonly setting: MixedProtocolGateSetting
  /** The dry-run; undefined when there is no cluster to ask (offline, `--kube-version`). */
  readonly probe?: (() => Promise<ProbeAnswer>) | undefined
  /**
   * Called when the fact changes (and once for the first one), not on every probe: a refresh that
   * learns the same thing says nothing. `result` is the probe's latest result, when one ran.
   */
  readonly onChange: (fact: MixedProtocolFact, result: ProbeResult | undefined) => void
}

export interface MixedProtocolCapability {
  current(): MixedProtocolFact
  /** False until the first probe has answered (or failed), when there is one to run. */
  settled(): boolean
  /**
   * Probes again; the server calls it at start and after each read of the cluster's version. A
   * probe that cannot tell keeps the last answer while the version is the same (a timeout says
   * nothing new about the cluster), and falls back to the version table once the version changed.
   */
  refresh(version: string): Promise<void>
}

/** Keeps the rules' mixed-protocol fact, probing the apiserver when the configuration leaves it open. */
export function mixedProtocolCapability(options: MixedProtocolCapabilityOptions): MixedProtocolCapability {
  const probe = options.setting === 'auto' ? options.probe : undefined
  let fact = mixedProtocolFact(options.setting, undefined)
  let settled = probe === undefined
  let answered: { readonly version: string; readonly result: ProbeResult } | undefined
  if (settled) options.onChange(fact, undefined)

  return {
    current: () => fact,
    settled: () => settled,
    async refresh(version) {
      if (probe === undefined) return
      let result: ProbeResult
      try {
        result = classifyProbeAnswer(await probe())
      } catch (error: unknown) {
        result = { capability: 'unknown', reason: bounded(errorMessage(error), MAX_REASON) }
      }
      if (result.capability !== 'unknown') answered = { version, result }
      else if (answered?.version !== version) answered = undefined
      const next = mixedProtocolFact(options.setting, answered?.result)
      const changed = !settled || next.gate !== fact.gate || next.source !== fact.source
      fact = next
      settled = true
      if (changed) options.onChange(fact, result)
    },
  }
}
