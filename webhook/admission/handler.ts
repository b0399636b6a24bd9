import type { Config } from '../config.js'
import { apiVersionOf, decode, isService, kindKey, Service } from '../k8s/objects.js'
import type { Decision, RuleId } from '../rules/decision.js'
import { NO_CHANGE } from '../rules/decision.js'
import { mutateService, type MixedProtocolGate } from '../rules/service.js'
import type { KubeVersion } from '../rules/version.js'
import type { AdmissionResponse } from './response.js'
import { allowed, auditAnnotations, errored, fromDecision } from './response.js'
import type { AdmissionRequest } from './review.js'

export type AdmissionMode = 'mutate' | 'validate'

const SERVICE = kindKey('v1', 'Service')

/** A rule for one kind of object, plugged into the handler (the Pod rule's, admission/pod-rules.ts, needs the Service cache). */
export type KindRule = (request: AdmissionRequest, version: KubeVersion, mode: AdmissionMode) => Decision | InvalidObject

export interface AdmissionDeps {
  readonly config: Pick<Config, 'excludedNamespaces' | 'mixedProtocolLBService' | 'unbuildableMixedProtocol'> & Partial<Pick<Config, 'enforcement'>>
  /** The cluster's version, or undefined while it is not known yet. */
  readonly clusterVersion: () => KubeVersion | undefined
  /**
   * What is known of the cluster's mixed-protocol support (the probe's answer, or the configured
   * setting); without it, the configured setting alone.
   */
  readonly mixedProtocolGate?: (() => MixedProtocolGate) | undefined
  /**
   * Whether a namespace is labelled `nlb-guard.io/enforcement=warn` (cluster/namespaces.ts): there
   * nlb-guard is warn-only whatever the global setting. Without it, the global setting alone.
   */
  readonly warnOnlyNamespace?: ((namespace: string) => boolean) | undefined
  /** Extra rules by kindKey (`v1 Pod`, `apps/v1 Deployment`, …); v1 Services are always handled. */
  readonly rules?: ReadonlyMap<string, KindRule>
}

/** `warned`: enforcement warn, and enforce would have changed or denied the object. */
export type Outcome = 'allowed' | 'patched' | 'denied' | 'warned' | 'error'

export interface Admission {
  readonly response: AdmissionResponse
  readonly outcome: Outcome
  /** Rules that changed (or, when denied, refused) the object; with `warned`, would have. */
  readonly rules: readonly RuleId[]
  /** With `warned`: what enforce would have done. */
  readonly wouldHave?: 'changed' | 'denied'
}

/** The object in the request does not have the shape of its kind. */
export class InvalidObject {
  readonly invalid = true
  constructor(readonly message: string) {}
}

/** Decides one admission request. Pure apart from the injected cluster facts; never throws for bad objects. */
export function admit(request: AdmissionRequest, mode: AdmissionMode, deps: AdmissionDeps): Admission {
  const { uid } = request
  if (request.namespace !== undefined && deps.config.excludedNamespaces.includes(request.namespace)) {
    return { response: allowed(uid), outcome: 'allowed', rules: [] }
  }
  const version = deps.clusterVersion()
  if (version === undefined) {
    // Readiness keeps traffic away until the version is known; this answers a request that raced it.
    return { response: errored(uid, 500, 'nlb-guard does not know the cluster version yet'), outcome: 'error', rules: [] }
  }
  const key = kindKey(apiVersionOf(request.kind.group, request.kind.version), request.kind.kind)
  const rule = key === SERVICE ? serviceRule(deps) : deps.rules?.get(key)
  const decision = rule === undefined ? NO_CHANGE : rule(request, version, mode)
  if (decision instanceof InvalidObject) {
    return { response: errored(uid, 400, decision.message), outcome: 'error', rules: [] }
  }
  const warnHere = request.namespace !== undefined && deps.warnOnlyNamespace?.(request.namespace) === true
  if (deps.config.enforcement === 'warn' || warnHere) return warnOnly(uid, decision, mode)
  const response = fromDecision(uid, decision, { patch: mode === 'mutate' })
  const rules = decision.allowed ? [...new Set(decision.changes.map((c) => c.rule))] : [decision.rule]
  const outcome: Outcome = !response.allowed ? 'denied' : response.patch === undefined ? 'allowed' : 'patched'
  return { response, outcome, rules }
}

/**
 * enforcement: warn. The mutating webhook allows every object unchanged and says in warnings what
 * enforce would have changed or denied; the validating webhook then has nothing to add (its checks
 * are the same rules on an object that was left alone on purpose), so it allows without a word.
 */
function warnOnly(uid: string, decision: Decision, mode: AdmissionMode): Admission {
  if (mode === 'validate') return { response: allowed(uid), outcome: 'allowed', rules: [] }
  if (!decision.allowed) {
    const message = `${WARN_ONLY} would deny this: ${decision.message}`
    return { response: { ...allowed(uid, [message, ...decision.hints]), auditAnnotations: auditAnnotations('would-deny', [decision.rule], decision.message) }, outcome: 'warned', rules: [decision.rule], wouldHave: 'denied' }
  }
  if (decision.changes.length === 0) return { response: allowed(uid, decision.hints), outcome: 'allowed', rules: [] }
  const warnings = decision.changes.map((c) => `${WARN_ONLY} would have ${c.message}`)
  const rules = [...new Set(decision.changes.map((c) => c.rule))]
  return {
    response: { ...allowed(uid, [...warnings, ...decision.hints]), auditAnnotations: auditAnnotations('would-mutate', rules, decision.changes.map((c) => c.message).join(' | ')) },
    outcome: 'warned',
    rules,
    wouldHave: 'changed',
  }
}

/** How every warning of enforcement warn starts, so a platform team can grep a week of them. */
export const WARN_ONLY = 'nlb-guard (enforcement: warn, nothing changed)'

function serviceRule(deps: AdmissionDeps): KindRule {
  return (request, version) => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return NO_CHANGE
    const object = decode(Service, isService, request.object)
    if (!object.success) return new InvalidObject(`request.object is not a v1 Service: ${firstIssue(object.error)}`)
    let oldObject: Service | undefined
    if (request.operation === 'UPDATE' && request.oldObject != null) {
      const old = decode(Service, isService, request.oldObject)
      if (!old.success) return new InvalidObject(`request.oldObject is not a v1 Service: ${firstIssue(old.error)}`)
      oldObject = old.data
    }
    return mutateService({
      operation: request.operation,
      object: object.data,
      oldObject,
      namespace: request.namespace,
      cluster: { version, mixedProtocolGate: deps.mixedProtocolGate?.() ?? deps.config.mixedProtocolLBService },
      policy: { unbuildableMixedProtocol: deps.config.unbuildableMixedProtocol },
    })
  }
}

export function firstIssue(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  const issue = error.issues[0]
  if (issue === undefined) return 'invalid'
  return `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`
}
