import type { Config } from '../config.js'
import type { Service } from '../k8s/objects.js'
import { objectName } from '../k8s/objects.js'
import type { Decision } from '../rules/decision.js'
import { mutateService, unbuildableMixedProtocolProblem } from '../rules/service.js'
import type { KubeVersion } from '../rules/version.js'
import type { Finding, ObjectId, Where } from './findings.js'

/**
 * A Service judged by the Service rule as a CREATE, and what fix, check and audit report of it: the
 * one place outside the admission path that calls the rule, so the three cannot drift apart.
 */

export interface JudgeOptions {
  readonly version: KubeVersion
  readonly config: Pick<Config, 'mixedProtocolLBService' | 'unbuildableMixedProtocol'>
}

export interface Judgement {
  readonly decision: Decision
  /**
   * Why the Service would be accepted but its load balancer never built (a mixed-protocol Service
   * the controller in charge cannot build), or null. The webhook only warns (or, configured, denies);
   * offline it is a finding, since the Service would stay pending.
   */
  readonly pending: string | null
  readonly findings: readonly Finding[]
}

export function serviceDecision(service: Service, options: JudgeOptions): Decision {
  return mutateService({
    operation: 'CREATE',
    object: service,
    cluster: { version: options.version, mixedProtocolGate: options.config.mixedProtocolLBService },
    policy: { unbuildableMixedProtocol: options.config.unbuildableMixedProtocol },
  })
}

export function judgeService(service: Service, where: Where, object: ObjectId, options: JudgeOptions, advice: string): Judgement {
  const decision = serviceDecision(service, options)
  const pending = decision.allowed ? unbuildableMixedProtocolProblem(service, subjectOf(object)) : null
  const findings = decisionFindings(where, object, decision, pending)
  if (pending !== null) findings.push({ where, object, rule: 'S1', action: 'pending', message: `${pending} ${advice}` })
  return { decision, pending, findings }
}

/** The findings of one rule decision: a denial or each change, then each hint (but the pending one, reported apart). */
export function decisionFindings(where: Where, object: ObjectId, decision: Decision, pending: string | null): Finding[] {
  const hints = decision.hints.filter((h) => h !== pending).map((message): Finding => ({ where, object, rule: null, action: 'hint', message }))
  if (!decision.allowed) return [{ where, object, rule: decision.rule, action: 'deny', message: decision.message }, ...hints]
  return [...decision.changes.map((c): Finding => ({ where, object, rule: c.rule, action: 'change', message: c.message })), ...hints]
}

/** `Service demo/echo`: how rule messages name an object. */
export function subjectOf(id: ObjectId): string {
  return `${id.kind} ${objectName({ name: id.name, namespace: id.namespace })}`
}
