import { portProtocol, type Service, type ServicePort } from '../k8s/objects.js'
import * as A from './annotations.js'
import { crossZoneAttributeValue, parseGoBool, withCrossZoneAttribute } from './attributes.js'
import type { Allowed, Change, Decision, Denied, RuleId } from './decision.js'
import { NO_CHANGE } from './decision.js'
import { setAnnotations } from './patch.js'
import { atLeast, type KubeVersion } from './version.js'

/**
 * How nlb-guard should assume the cluster's MixedProtocolLBService feature gate is set. `auto` means
 * the Kubernetes default for the cluster's version: off before 1.24, on from 1.24, GA (always on) from 1.26.
 */
export type MixedProtocolGate = 'auto' | 'enabled' | 'disabled'

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

/** Which controller builds the load balancer: it decides which annotations are read. */
export type LoadBalancerController = 'in-tree' | 'aws-load-balancer-controller' | 'eks-auto-mode' | 'other'

export function loadBalancerController(service: Service, type = annotationsOf(service)[A.AWS_LB_TYPE]): LoadBalancerController {
  const lbClass = service.spec?.loadBalancerClass
  if (lbClass == null || lbClass === '') {
    return type !== undefined && A.LBC_TYPES.has(type) ? 'aws-load-balancer-controller' : 'in-tree'
  }
  if (lbClass === A.LBC_CLASS) return 'aws-load-balancer-controller'
  if (lbClass === A.EKS_AUTO_CLASS) return 'eks-auto-mode'
  return 'other'
}

/**
 * The Service rules S1–S4 (DESIGN §4) for CREATE and UPDATE of a v1 Service.
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
  const annotations = annotationsOf(service)
  const ports = service.spec?.ports ?? []
  const updates = new Map<string, string>()
  const changes: Change[] = []
  const hints: string[] = []

  const ratchet = (rule: RuleId, problem: (s: Service) => string | null): Denied | null => {
    const message = problem(service)
    if (message === null) return null
    if (live !== undefined && problem(live) !== null) {
      hints.push(`${message} (This was already so before this update, so nlb-guard allows it.)`)
      return null
    }
    return { allowed: false, rule, message, hints }
  }

  // S1: mixed protocols.
  const mixedDenial =
    ratchet('S1', (s) => clusterMixedProtocolProblem(s, subject, input.cluster)) ??
    (input.policy.unbuildableMixedProtocol === 'deny' ? ratchet('S1', (s) => unbuildableMixedProtocolProblem(s, subject)) : null)
  if (mixedDenial) return mixedDenial
  if (input.policy.unbuildableMixedProtocol === 'warn') {
    const problem = unbuildableMixedProtocolProblem(service, subject)
    if (problem !== null) hints.push(problem)
  }

  // S2: UDP needs a Network Load Balancer; a live load balancer's type never changes by accident.
  const lbClass = service.spec?.loadBalancerClass
  let type = annotations[A.AWS_LB_TYPE]
  if (lbClass == null || lbClass === '') {
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
        const denial = ratchet('S2', (s) => (hasUdp(s) ? udpOnLiveClassicMessage(subject, udp) : null))
        if (denial) return denial
      } else if (type === undefined) {
        type = 'nlb'
        updates.set(A.AWS_LB_TYPE, type)
        changes.push({
          rule: 'S2',
          required: true,
          message:
            `added annotation ${A.AWS_LB_TYPE}: "nlb": the Service has UDP ports (${listPorts(udp)}) and the default ` +
            `Classic ELB cannot carry UDP, so no load balancer would ever be built.`,
        })
      } else if (!A.NLB_TYPES.has(type)) {
        const value = type
        const denial = ratchet('S2', (s) =>
          // The object's type may be one restored above, which its own annotations still lack.
          hasUdp(s) && (s === service || annotationsOf(s)[A.AWS_LB_TYPE] === value) ? classicWithUdpMessage(subject, value, udp) : null,
        )
        if (denial) return denial
      }
    }
  }

  // S3: cross-zone load balancing when only nodes with a ready pod pass the health check.
  const controller = loadBalancerController(service, type)
  if (service.spec?.externalTrafficPolicy === 'Local' && controller !== 'other') {
    const singleZoneAllowed = annotations[A.ALLOW_SINGLE_ZONE] === 'true'
    const denial = singleZoneAllowed ? null : ratchet('S3', (s) => crossZoneProblem(s, subject))
    if (denial) return denial
    if (crossZoneDisabledKey(service) === null) {
      const update = crossZoneUpdate(controller, annotations)
      if (update) {
        updates.set(update.key, update.value)
        changes.push({
          rule: 'S3',
          required: false,
          message:
            `set annotation ${update.key}: "${update.value}": with externalTrafficPolicy: Local only nodes with a ready ` +
            `pod pass the load balancer's health check, and without cross-zone load balancing its addresses in zones ` +
            `with no such node stay silent (the Service "works sometimes").`,
        })
      }
    }
  }

  // S4: hints only.
  if (controller !== 'other') {
    const udp = ports.filter((p) => portProtocol(p) === 'UDP')
    const ipTargets = type === 'nlb-ip' || annotations[A.AWS_NLB_TARGET_TYPE] === 'ip'
    if (udp.length > 0 && !ipTargets && (service.spec?.externalTrafficPolicy ?? 'Cluster') === 'Cluster') {
      hints.push(
        `${subject}: UDP ports (${listPorts(udp)}) with instance targets and externalTrafficPolicy: Cluster have no ` +
          `working health check: the NLB probes the UDP NodePort over TCP, where nothing answers. Set ` +
          `externalTrafficPolicy: Local (the NLB then checks kube-proxy's health-check node port over HTTP), or use ` +
          `IP targets (${A.AWS_NLB_TARGET_TYPE}: ip with the AWS Load Balancer Controller; nlb-guard adds a TCP ` +
          `health-check sidecar to the pods).`,
      )
    }
  }

  const allowed: Allowed = { allowed: true, ops: setAnnotations(service.metadata, updates), changes, hints }
  return allowed
}

export function isLoadBalancer(service: Service): boolean {
  return service.spec?.type === 'LoadBalancer'
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

export function annotationsOf(object: { metadata?: { annotations?: Record<string, string> | null | undefined } | null | undefined }): Readonly<Record<string, string>> {
  return object.metadata?.annotations ?? {}
}

function describeService(service: Service, requestNamespace: string | undefined): string {
  const namespace = service.metadata?.namespace ?? requestNamespace
  const name = service.metadata?.name ?? `${service.metadata?.generateName ?? ''}*`
  return namespace ? `Service ${namespace}/${name}` : `Service ${name}`
}

function listPorts(ports: readonly ServicePort[]): string {
  return ports.map((p) => `${p.name ? `${p.name} ` : ''}${p.port}/${portProtocol(p)}`).join(', ')
}

function protocolsOf(service: Service): string[] {
  return [...new Set((service.spec?.ports ?? []).map(portProtocol))]
}

/** Why this cluster cannot create a mixed-protocol LoadBalancer Service, or null when it can. */
export function mixedProtocolUnsupportedReason(version: KubeVersion, gate: MixedProtocolGate): string | null {
  // Sources: KEP-1435; apiserver ValidateService before 1.20; feature gate MixedProtocolLBService
  // alpha (off) 1.20–1.23, beta (on) 1.24–1.25, GA and locked on from 1.26.
  if (atLeast(version, 1, 26)) return null
  if (!atLeast(version, 1, 20)) {
    return 'mixed-protocol LoadBalancer Services need Kubernetes 1.26 or later (1.20–1.25 with the MixedProtocolLBService feature gate on)'
  }
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
  const name = service.metadata?.name ?? 'service'
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
        `${subject} uses port ${shared.join(', ')} for both TCP and UDP: the AWS Load Balancer Controller builds ` +
        `that only as a TCP_UDP listener, with ${A.AWS_TCP_UDP_LISTENER}: "true".`
      )
    }
  }
  return null
}

function typeChangeMessage(subject: string, from: string | undefined, to: string | undefined): string {
  const show = (t: string | undefined): string => (t === undefined ? 'unset (a Classic ELB)' : `"${t}"`)
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
    `${subject} has UDP ports (${listPorts(udp)}) but ${A.AWS_LB_TYPE} is "${type}", which asks for a Classic ELB: ` +
    `it cannot carry UDP, so the load balancer would never be built. Set it to "nlb" (or "external" with the AWS ` +
    `Load Balancer Controller).`
  )
}

/** The annotation that explicitly turns cross-zone load balancing off, if any. */
function crossZoneDisabledKey(service: Service): string | null {
  const annotations = annotationsOf(service)
  const legacy = annotations[A.AWS_CROSS_ZONE]
  if (legacy !== undefined && parseGoBool(legacy) === false) return A.AWS_CROSS_ZONE
  const attribute = crossZoneAttributeValue(annotations[A.AWS_LB_ATTRIBUTES])
  if (attribute !== undefined && parseGoBool(attribute) === false) return A.AWS_LB_ATTRIBUTES
  return null
}

function crossZoneProblem(service: Service, subject: string): string | null {
  if (service.spec?.externalTrafficPolicy !== 'Local' || loadBalancerController(service) === 'other') return null
  const annotations = annotationsOf(service)
  const key = crossZoneDisabledKey(service)
  if (key !== null) {
    return (
      `${subject} has externalTrafficPolicy: Local and turns cross-zone load balancing off (${key}: ` +
      `"${annotations[key] ?? ''}"): the load balancer's addresses in zones with no ready pod would drop traffic, so ` +
      `the Service "works sometimes". Remove that setting, or, if a pod runs in every zone (a DaemonSet), set ` +
      `${A.ALLOW_SINGLE_ZONE}: "true".`
    )
  }
  const legacy = annotations[A.AWS_CROSS_ZONE]
  if (legacy !== undefined && parseGoBool(legacy) === undefined) {
    return `${subject}: ${A.AWS_CROSS_ZONE} is "${legacy}", which the AWS cloud provider cannot read as a boolean. Use "true".`
  }
  const attribute = crossZoneAttributeValue(annotations[A.AWS_LB_ATTRIBUTES])
  if (attribute !== undefined && parseGoBool(attribute) === undefined) {
    return `${subject}: ${A.AWS_LB_ATTRIBUTES} sets ${A.CROSS_ZONE_ATTRIBUTE}=${attribute}, which is not a boolean. Use true.`
  }
  return null
}

/** The annotation to write so the controller in charge enables cross-zone load balancing, if it does not yet. */
function crossZoneUpdate(
  controller: LoadBalancerController,
  annotations: Readonly<Record<string, string>>,
): { key: string; value: string } | null {
  if (controller === 'in-tree') {
    return annotations[A.AWS_CROSS_ZONE] === undefined ? { key: A.AWS_CROSS_ZONE, value: 'true' } : null
  }
  // The AWS Load Balancer Controller and EKS Auto Mode read only the attributes list (Auto Mode ignores the legacy key).
  const current = annotations[A.AWS_LB_ATTRIBUTES]
  if (crossZoneAttributeValue(current) !== undefined) return null
  return { key: A.AWS_LB_ATTRIBUTES, value: withCrossZoneAttribute(current) }
}
