import { annotationsOf, isLoadBalancer, objectName, portProtocol, type Service, type ServicePort } from '../k8s/objects.js'
import * as A from './annotations.js'
import { bounded } from '../text/bounded.js'
import { crossZoneAttribute, parseGoBool, withCrossZoneAttribute } from './attributes.js'
import { loadBalancerController, type LoadBalancerController } from './controller.js'
import type { Allowed, Change, Decision, Denied, RuleId } from './decision.js'
import { NO_CHANGE } from './decision.js'
import { setAnnotations } from './patch.js'
import { atLeast, type KubeVersion } from './version.js'

/**
 * The configuration's word on the cluster's MixedProtocolLBService feature gate: `enabled` or
 * `disabled` force it; `auto` leaves it to the cluster (nlb-guard's dry-run probe, else the version).
 */
export type MixedProtocolGateSetting = 'auto' | 'enabled' | 'disabled'

/**
 * What the rules know of the cluster's MixedProtocolLBService feature gate, strongest source first:
 * - `enabled` / `disabled`: forced by configuration;
 * - `accepted` / `refused`: the apiserver's own answer to a dry-run create of a mixed-protocol
 *   LoadBalancer Service (webhook/cluster/mixed-protocol.ts);
 * - `auto`: nothing better known: the Kubernetes default for the cluster's version (off before 1.24,
 *   on from 1.24, GA and always on from 1.26).
 */
export type MixedProtocolGate = MixedProtocolGateSetting | 'accepted' | 'refused'

export interface ServiceRuleInput {
  readonly operation: 'CREATE' | 'UPDATE'
  readonly object: Service
  /** The stored object on UPDATE. */
  readonly oldObject?: Service | null | undefined
  /** `request.namespace`: the object itself may lack one on CREATE. */
  readonly namespace?: string | undefined
  readonly cluster: {
    readonly version: KubeVersion
    readonly mixedProtocolGate: MixedProtocolGate
  }
  readonly policy: {
    /** A mixed-protocol Service the cluster accepts but the AWS load balancer cannot be built for. */
    readonly unbuildableMixedProtocol: 'warn' | 'deny'
  }
}

/** Longest caller-written value quoted in a message: enough to recognise it, never megabytes. */
const MAX_QUOTED = 120

/**
 * The Service rules S1–S4 (DESIGN §4) for CREATE and UPDATE of a v1 Service, in the order they run.
 * Each sees the annotations as the rules before it left them (S2's restored or added type decides
 * which controller S3 and S4 write for).
 */
export const SERVICE_RULES: readonly ServiceRule[] = [mixedProtocols, loadBalancerType, crossZone, healthCheckHints]

/**
 * Runs SERVICE_RULES in order and stops at the first denial, as controller-runtime's
 * MultiMutatingHandler does; otherwise one patch sets every annotation the rules asked for.
 *
 * On UPDATE a problem that the stored LoadBalancer Service already had is reported, not denied: the
 * apiserver ratchets its own validation the same way, and denying would block unrelated updates (a
 * controller adding its finalizer, a label change) on objects that predate nlb-guard.
 */
export function mutateService(input: ServiceRuleInput): Decision {
  const service = input.object
  if (!isLoadBalancer(service) || isIgnored(service) || isBeingDeleted(service)) return NO_CHANGE

  // Only a stored LoadBalancer Service has a load balancer in AWS that a change could orphan.
  const live = input.operation === 'UPDATE' && input.oldObject != null && isLoadBalancer(input.oldObject) ? input.oldObject : undefined
  const subject = describeService(service, input.namespace)
  const updates = new Map<string, string>()
  const changes: Change[] = []
  const hints: string[] = []
  for (const rule of SERVICE_RULES) {
    const annotations = { ...annotationsOf(service), ...Object.fromEntries(updates) }
    const outcome = rule({ input, service, live, subject, annotations, ports: service.spec?.ports ?? [] })
    if (!outcome.allowed) return { ...outcome, hints: [...hints, ...outcome.hints] }
    for (const [key, value] of outcome.updates) updates.set(key, value)
    changes.push(...outcome.changes)
    hints.push(...outcome.hints)
  }
  const allowed: Allowed = { allowed: true, ops: setAnnotations(service.metadata, updates), changes, hints }
  return allowed
}

/** What each Service rule sees. */
export interface ServiceRuleContext {
  readonly input: ServiceRuleInput
  readonly service: Service
  /** The stored object on UPDATE when it is a LoadBalancer Service: it has a load balancer in AWS. */
  readonly live: Service | undefined
  /** `Service <namespace>/<name>`, for messages. */
  readonly subject: string
  /** The Service's annotations with the updates of the rules before this one applied. */
  readonly annotations: Readonly<Record<string, string>>
  readonly ports: readonly ServicePort[]
}

/** One rule's answer: annotations to set, each explained by a change, and hints; or a denial. */
export type ServiceRuleOutcome =
  | Denied
  | { readonly allowed: true; readonly updates: ReadonlyMap<string, string>; readonly changes: readonly Change[]; readonly hints: readonly string[] }

export type ServiceRule = (context: ServiceRuleContext) => ServiceRuleOutcome

function allowedWith(hints: readonly string[], updates: ReadonlyMap<string, string> = new Map(), changes: readonly Change[] = []): ServiceRuleOutcome {
  return { allowed: true, updates, changes, hints }
}

/**
 * Denies when `problem` finds one in the admitted Service, unless the stored Service had it too
 * (then it becomes a hint). The denial carries this rule's hints so far.
 */
function ratchet(context: ServiceRuleContext, hints: string[], rule: RuleId, problem: (s: Service) => string | null): Denied | null {
  const message = problem(context.service)
  if (message === null) return null
  if (context.live !== undefined && problem(context.live) !== null) {
    hints.push(`${message} (This was already so before this update, so nlb-guard allows it.)`)
    return null
  }
  return { allowed: false, rule, message, hints }
}

/** S1: more than one protocol on one LoadBalancer, which the cluster or the AWS controller may not build. */
export function mixedProtocols(context: ServiceRuleContext): ServiceRuleOutcome {
  const { input, service, subject } = context
  const hints: string[] = []
  const denial =
    ratchet(context, hints, 'S1', (s) => clusterMixedProtocolProblem(s, subject, input.cluster)) ??
    (input.policy.unbuildableMixedProtocol === 'deny' ? ratchet(context, hints, 'S1', (s) => unbuildableMixedProtocolProblem(s, subject)) : null)
  if (denial) return denial
  if (input.policy.unbuildableMixedProtocol === 'warn') {
    const problem = unbuildableMixedProtocolProblem(service, subject)
    if (problem !== null) hints.push(problem)
  }
  return allowedWith(hints)
}

/** S2: UDP needs a Network Load Balancer; a live load balancer's type never changes by accident. */
export function loadBalancerType(context: ServiceRuleContext): ServiceRuleOutcome {
  const { service, live, subject, annotations, ports } = context
  const hints: string[] = []
  const updates = new Map<string, string>()
  const changes: Change[] = []
  const lbClass = service.spec?.loadBalancerClass
  // Another controller decides the type of a Service with a load balancer class.
  if (lbClass != null && lbClass !== '') return allowedWith(hints)
  let type = annotations[A.AWS_LB_TYPE]
  const typeChangeAllowed = annotations[A.ALLOW_LB_TYPE_CHANGE] === 'true'
  const liveType = live === undefined ? undefined : annotationsOf(live)[A.AWS_LB_TYPE]
  if (live !== undefined && !typeChangeAllowed) {
    if (liveType !== undefined && type === undefined) {
      type = liveType
      updates.set(A.AWS_LB_TYPE, liveType)
      changes.push({
        rule: 'S2',
        required: true,
        message:
          `restored annotation ${A.AWS_LB_TYPE}: "${liveType}" that this update dropped: without it the cloud provider ` +
          `would replace the running load balancer and leave the old one orphaned in AWS. Set ` +
          `${A.ALLOW_LB_TYPE_CHANGE}: "true" to change the type on purpose.`,
      })
    } else if (type !== liveType) {
      return { allowed: false, rule: 'S2', message: typeChangeMessage(subject, liveType, type), hints }
    }
  }
  const udp = ports.filter((p) => portProtocol(p) === 'UDP')
  if (udp.length > 0) {
    if (type === undefined && live !== undefined && !typeChangeAllowed) {
      const denial = ratchet(context, hints, 'S2', (s) => (hasUdp(s) ? udpOnLiveClassicMessage(subject, udp) : null))
      if (denial) return denial
    } else if (type === undefined) {
      updates.set(A.AWS_LB_TYPE, 'nlb')
      changes.push({
        rule: 'S2',
        required: true,
        message:
          `added annotation ${A.AWS_LB_TYPE}: "nlb": the Service has UDP ports (${listPorts(udp)}) and the default ` +
          `Classic ELB cannot carry UDP, so no load balancer would ever be built.`,
      })
    } else if (!A.NLB_TYPES.has(type)) {
      const value = type
      const denial = ratchet(context, hints, 'S2', (s) =>
        // The object's type may be one restored above, which its own annotations still lack.
        hasUdp(s) && (s === service || annotationsOf(s)[A.AWS_LB_TYPE] === value) ? classicWithUdpMessage(subject, value, udp) : null,
      )
      if (denial) return denial
    }
  }
  return allowedWith(hints, updates, changes)
}

/** S3: cross-zone load balancing when only nodes with a ready pod pass the health check. */
export function crossZone(context: ServiceRuleContext): ServiceRuleOutcome {
  const { service, subject, annotations } = context
  const hints: string[] = []
  const controller = loadBalancerController(service, annotations[A.AWS_LB_TYPE])
  if (service.spec?.externalTrafficPolicy !== 'Local' || controller === 'other') return allowedWith(hints)
  const singleZoneAllowed = annotations[A.ALLOW_SINGLE_ZONE] === 'true'
  const denial =
    ratchet(context, hints, 'S3', (s) => crossZoneUnreadableProblem(s, subject)) ??
    (singleZoneAllowed ? null : ratchet(context, hints, 'S3', (s) => crossZoneOffProblem(s, subject)))
  if (denial) return denial
  if (crossZoneSettings(service, controller).some((s) => s.state === 'off' || s.state === 'unreadable')) return allowedWith(hints)
  const update = crossZoneUpdate(controller, annotations)
  if (update === null) return allowedWith(hints)
  const change: Change = {
    rule: 'S3',
    required: false,
    message:
      `set annotation ${update.key}: "${update.value}": with externalTrafficPolicy: Local only nodes with a ready ` +
      `pod pass the load balancer's health check, and without cross-zone load balancing its addresses in zones ` +
      `with no such node stay silent (the Service "works sometimes").`,
  }
  return allowedWith(hints, new Map([[update.key, update.value]]), [change])
}

/** S4: hints only. UDP behind instance targets with externalTrafficPolicy: Cluster has no working health check. */
export function healthCheckHints(context: ServiceRuleContext): ServiceRuleOutcome {
  const { service, subject, annotations, ports } = context
  const type = annotations[A.AWS_LB_TYPE]
  if (loadBalancerController(service, type) === 'other') return allowedWith([])
  const udp = ports.filter((p) => portProtocol(p) === 'UDP')
  const ipTargets = type === 'nlb-ip' || annotations[A.AWS_NLB_TARGET_TYPE] === 'ip'
  if (udp.length === 0 || ipTargets || (service.spec?.externalTrafficPolicy ?? 'Cluster') !== 'Cluster') return allowedWith([])
  return allowedWith([
    `${subject}: UDP ports (${listPorts(udp)}) with instance targets and externalTrafficPolicy: Cluster have no ` +
      `working health check: the NLB probes the UDP NodePort over TCP, where nothing answers. Set ` +
      `externalTrafficPolicy: Local (the NLB then checks kube-proxy's health-check node port over HTTP), or use ` +
      `IP targets (${A.AWS_NLB_TARGET_TYPE}: ip with the AWS Load Balancer Controller; nlb-guard adds a TCP ` +
      `health-check sidecar to the pods).`,
  ])
}

function isIgnored(service: Service): boolean {
  return annotationsOf(service)[A.IGNORE] === 'true'
}

/** Once deletion starts only finalizers are removed; blocking that would leave the Service stuck. */
function isBeingDeleted(service: Service): boolean {
  return service.metadata?.deletionTimestamp != null
}

function hasUdp(service: Service): boolean {
  return (service.spec?.ports ?? []).some((p) => portProtocol(p) === 'UDP')
}

/*
 * Messages quote what the caller wrote, before the apiserver has validated it: names, port names,
 * protocols, annotation values and port lists are bounded here so a denial for 10,000 ports is a
 * few hundred characters and still ends with the fix.
 */

/** Ports named in a message; the rest are counted. */
const MAX_LISTED_PORTS = 10

function describeService(service: Service, requestNamespace: string | undefined): string {
  return `Service ${objectName(service.metadata, service.metadata?.namespace ?? requestNamespace)}`
}

/** At most MAX_LISTED_PORTS items, then how many more. */
function listed(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED_PORTS).join(', ')
  return items.length > MAX_LISTED_PORTS ? `${shown} and ${items.length - MAX_LISTED_PORTS} more` : shown
}

function listPorts(ports: readonly ServicePort[]): string {
  const render = (p: ServicePort) => `${p.name ? `${bounded(p.name, 63)} ` : ''}${p.port}/${bounded(portProtocol(p), 16)}`
  const shown = ports.slice(0, MAX_LISTED_PORTS).map(render).join(', ')
  return ports.length > MAX_LISTED_PORTS ? `${shown} and ${ports.length - MAX_LISTED_PORTS} more` : shown
}

/** The distinct protocols, each bounded; at most four (only TCP, UDP and SCTP exist, validation rejects others). */
function protocolsOf(service: Service): string[] {
  const protocols = new Set<string>()
  for (const port of service.spec?.ports ?? []) {
    protocols.add(bounded(portProtocol(port), 16))
    if (protocols.size === 4) break
  }
  return [...protocols]
}

/** Why this cluster cannot create a mixed-protocol LoadBalancer Service, or null when it can. */
export function mixedProtocolUnsupportedReason(version: KubeVersion, gate: MixedProtocolGate): string | null {
  // The apiserver's own answer outranks the table: it is this cluster's validation, flags included.
  if (gate === 'accepted') return null
  // Sources: KEP-1435; apiserver ValidateService before 1.20; feature gate MixedProtocolLBService
  // alpha (off) 1.20–1.23, beta (on) 1.24–1.25, GA and locked on from 1.26.
  if (!atLeast(version, 1, 20)) {
    return 'mixed-protocol LoadBalancer Services need Kubernetes 1.26 or later (1.20–1.25 with the MixedProtocolLBService feature gate on)'
  }
  if (gate === 'refused') {
    return 'the MixedProtocolLBService feature gate is off on this cluster (its apiserver refused a dry-run of such a Service)'
  }
  if (atLeast(version, 1, 26)) return null
  if (atLeast(version, 1, 24)) {
    return gate === 'disabled' ? 'the MixedProtocolLBService feature gate is off on this cluster (nlb-guard config mixedProtocolLBService: disabled)' : null
  }
  return gate === 'enabled'
    ? null
    : 'the MixedProtocolLBService feature gate is off by default before Kubernetes 1.24 (if your cluster turns it on, set mixedProtocolLBService: enabled in nlb-guard config)'
}

function clusterMixedProtocolProblem(service: Service, subject: string, cluster: ServiceRuleInput['cluster']): string | null {
  const protocols = protocolsOf(service)
  if (protocols.length < 2) return null
  const reason = mixedProtocolUnsupportedReason(cluster.version, cluster.mixedProtocolGate)
  if (reason === null) return null
  const name = bounded(service.metadata?.name ?? 'service', 63)
  const split = protocols.map((p) => `"${name}-${p.toLowerCase()}" with the ${p} ports`).join(' and ')
  return (
    `${subject} is a LoadBalancer with more than one protocol (${protocols.join(' and ')}: ${listPorts(service.spec?.ports ?? [])}), ` +
    `which this cluster (Kubernetes ${cluster.version.text}) cannot create: ${reason}. ` +
    `Fix: split it into ${protocols.length} Services, ${split}, with the same selector. Each gets its own ` +
    `load balancer address; clients that find the server through DNS SRV records cope with that.`
  )
}

/**
 * A mixed-protocol Service the cluster accepts but the AWS controller in charge cannot build (it
 * stays pending), or null. Exported for the offline commands, which treat it as a finding.
 */
export function unbuildableMixedProtocolProblem(service: Service, subject: string): string | null {
  const protocols = protocolsOf(service)
  if (protocols.length < 2) return null
  const controller = loadBalancerController(service)
  if (controller === 'in-tree') {
    return (
      `${subject} mixes ${protocols.join(' and ')} on one LoadBalancer: the in-tree AWS cloud provider never builds ` +
      `a mixed-protocol load balancer, so it would stay pending. Split it into one Service per protocol, or let the ` +
      `AWS Load Balancer Controller build it (${A.AWS_LB_TYPE}: external).`
    )
  }
  if (controller === 'aws-load-balancer-controller' && annotationsOf(service)[A.AWS_TCP_UDP_LISTENER] !== 'true') {
    const ports = service.spec?.ports ?? []
    const tcp = new Set(ports.filter((p) => portProtocol(p) === 'TCP').map((p) => p.port))
    const shared = [...new Set(ports.filter((p) => portProtocol(p) === 'UDP' && tcp.has(p.port)).map((p) => p.port))]
    if (shared.length > 0) {
      return (
        `${subject} uses port ${listed(shared.map(String))} for both TCP and UDP: the AWS Load Balancer Controller builds ` +
        `that only as a TCP_UDP listener, with ${A.AWS_TCP_UDP_LISTENER}: "true".`
      )
    }
  }
  return null
}

function typeChangeMessage(subject: string, from: string | undefined, to: string | undefined): string {
  const show = (t: string | undefined): string => (t === undefined ? 'unset (a Classic ELB)' : `"${bounded(t, MAX_QUOTED)}"`)
  return (
    `${subject} already has a load balancer, and this update changes ${A.AWS_LB_TYPE} from ${show(from)} to ${show(to)}: ` +
    `the cloud provider would build a new load balancer and leave the old one orphaned in AWS (still running and ` +
    `billed, outside Kubernetes). Create a new Service with the new type, move traffic, then delete this one; or set ` +
    `${A.ALLOW_LB_TYPE_CHANGE}: "true" if you will delete the old load balancer yourself.`
  )
}

function udpOnLiveClassicMessage(subject: string, udp: readonly ServicePort[]): string {
  return (
    `${subject} runs a Classic ELB (no ${A.AWS_LB_TYPE} annotation), and a Classic ELB cannot carry its UDP ports ` +
    `(${listPorts(udp)}); switching this Service to a Network Load Balancer would orphan the Classic ELB in AWS. ` +
    `Create a new Service for the UDP ports (nlb-guard adds ${A.AWS_LB_TYPE}: "nlb" to it), or set ` +
    `${A.ALLOW_LB_TYPE_CHANGE}: "true" and delete the old load balancer yourself.`
  )
}

function classicWithUdpMessage(subject: string, type: string, udp: readonly ServicePort[]): string {
  return (
    `${subject} has UDP ports (${listPorts(udp)}) but ${A.AWS_LB_TYPE} is "${bounded(type, MAX_QUOTED)}", which asks for a Classic ELB: ` +
    `it cannot carry UDP, so the load balancer would never be built. Set it to "nlb" (or "external" with the AWS ` +
    `Load Balancer Controller).`
  )
}

/** What one annotation says about cross-zone load balancing, as the controller in charge reads it. */
type CrossZoneSetting =
  | { readonly state: 'absent' | 'on' }
  | { readonly state: 'off'; readonly key: string; readonly value: string }
  | { readonly state: 'unreadable'; readonly key: string; readonly problem: string }

/**
 * The legacy key. The in-tree provider (cloud-provider-aws, reconcileLBAttributes and the Classic ELB
 * path) treats an empty value as unset and otherwise applies strconv.ParseBool, failing the load
 * balancer's sync on anything else; the AWS Load Balancer Controller reads it with ParseBoolAnnotation
 * (pkg/annotations/parser.go), where a present but empty value is a parse error too.
 */
function legacyCrossZone(controller: LoadBalancerController, value: string | undefined): CrossZoneSetting {
  if (value === undefined || (value === '' && controller === 'in-tree')) return { state: 'absent' }
  const parsed = parseGoBool(value)
  if (parsed === undefined) {
    return { state: 'unreadable', key: A.AWS_CROSS_ZONE, problem: `"${bounded(value, MAX_QUOTED)}", which the AWS cloud provider and controller cannot read as a boolean (Go's strconv.ParseBool)` }
  }
  return parsed ? { state: 'on' } : { state: 'off', key: A.AWS_CROSS_ZONE, value }
}

function attributesCrossZone(value: string | undefined): CrossZoneSetting {
  const attribute = crossZoneAttribute(value)
  switch (attribute.state) {
    case 'absent':
    case 'on':
      return { state: attribute.state }
    case 'off':
      return { state: 'off', key: A.AWS_LB_ATTRIBUTES, value: `${A.CROSS_ZONE_ATTRIBUTE}=${attribute.value}` }
    case 'unreadable':
      return { state: 'unreadable', key: A.AWS_LB_ATTRIBUTES, problem: attribute.problem }
  }
}

function crossZoneSettings(service: Service, controller = loadBalancerController(service)): CrossZoneSetting[] {
  const annotations = annotationsOf(service)
  return [legacyCrossZone(controller, annotations[A.AWS_CROSS_ZONE]), attributesCrossZone(annotations[A.AWS_LB_ATTRIBUTES])]
}

/** A cross-zone value the controller cannot read: denied even with the single-zone opt-out, which only allows "off". */
function crossZoneUnreadableProblem(service: Service, subject: string): string | null {
  if (service.spec?.externalTrafficPolicy !== 'Local' || loadBalancerController(service) === 'other') return null
  for (const setting of crossZoneSettings(service)) {
    if (setting.state !== 'unreadable') continue
    return (
      `${subject}: ${setting.key}: ${setting.problem}. With externalTrafficPolicy: Local the load balancer needs ` +
      `cross-zone load balancing to be a value its controller reads; write ${setting.key === A.AWS_CROSS_ZONE ? '"true"' : `${A.CROSS_ZONE_ATTRIBUTE}=true`} ` +
      `(or false together with ${A.ALLOW_SINGLE_ZONE}: "true" if a pod runs in every zone).`
    )
  }
  return null
}

function crossZoneOffProblem(service: Service, subject: string): string | null {
  if (service.spec?.externalTrafficPolicy !== 'Local' || loadBalancerController(service) === 'other') return null
  const off = crossZoneSettings(service).find((s) => s.state === 'off')
  if (off === undefined || off.state !== 'off') return null
  return (
    `${subject} has externalTrafficPolicy: Local and turns cross-zone load balancing off (${off.key}: ` +
    `"${bounded(off.value, MAX_QUOTED)}"): the load balancer's addresses in zones with no ready pod would drop traffic, so ` +
    `the Service "works sometimes". Remove that setting, or, if a pod runs in every zone (a DaemonSet), set ` +
    `${A.ALLOW_SINGLE_ZONE}: "true".`
  )
}

/** The annotation to write so the controller in charge enables cross-zone load balancing, if it does not yet. */
function crossZoneUpdate(
  controller: LoadBalancerController,
  annotations: Readonly<Record<string, string>>,
): { key: string; value: string } | null {
  if (controller === 'in-tree') {
    // An empty value is unset to the in-tree provider: replaced, as a missing one is added.
    return legacyCrossZone(controller, annotations[A.AWS_CROSS_ZONE]).state === 'absent' ? { key: A.AWS_CROSS_ZONE, value: 'true' } : null
  }
  // The AWS Load Balancer Controller and EKS Auto Mode read only the attributes list (Auto Mode ignores the legacy key).
  const current = annotations[A.AWS_LB_ATTRIBUTES]
  if (crossZoneAttribute(current).state !== 'absent') return null
  return { key: A.AWS_LB_ATTRIBUTES, value: withCrossZoneAttribute(current) }
}
