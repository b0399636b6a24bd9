import type { Container, ObjectMeta, PodSpec, Service } from '../k8s/objects.js'
import { annotationsOf, isLoadBalancer, objectName, portProtocol } from '../k8s/objects.js'
import { isRecord } from '../../lib/record.js'
import * as A from './annotations.js'
import type { Change, Decision, JsonPatchOp } from './decision.js'
import { NO_CHANGE } from './decision.js'
import { bounded } from '../text/bounded.js'
import { loadBalancerController } from './controller.js'
import { healthCheckReach, type InjectionSettings } from './injection.js'
import { escapePointerToken, setAnnotations } from './patch.js'
import { atLeast, type KubeVersion } from './version.js'

export const SIDECAR_NAME = 'nlb-guard-healthcheck'

/**
 * What the Pod rule needs to know about the sidecar. The rule owns this shape; the `sidecar`
 * section of the configuration (config.ts) conforms to it.
 */
export interface SidecarSettings extends InjectionSettings {
  readonly image: string
  readonly intervalMs: number
  readonly resources: {
    readonly requests?: { readonly cpu?: string | undefined; readonly memory?: string | undefined } | undefined
    readonly limits?: { readonly cpu?: string | undefined; readonly memory?: string | undefined } | undefined
  }
}

/** A pod, or a workload's pod template, and where it sits in the object being patched. */
export interface PodTemplate {
  readonly metadata?: ObjectMeta | null | undefined
  readonly spec?: PodSpec | null | undefined
}

export interface PodRuleInput {
  readonly pod: PodTemplate
  /** JSON Pointer of the pod template in the admitted object: '' for a Pod, '/spec/template' for a Deployment. */
  readonly basePath: string
  /** For messages: `Pod demo/web-1`, `Deployment demo/web`. */
  readonly subject: string
  /** LoadBalancer Services with UDP ports in the pod's namespace (the cache holds no others). */
  readonly services: readonly Service[]
  readonly version: KubeVersion
  readonly sidecar: SidecarSettings
}

/**
 * The Pod rule (DESIGN §5): a pod behind a UDP LoadBalancer Service gets one small sidecar that
 * answers TCP on each UDP target port, because NLB health checks are TCP or HTTP and a UDP target
 * without one never becomes healthy.
 */
export function mutatePod(input: PodRuleInput): Decision {
  const { pod, sidecar } = input
  const annotations = annotationsOf(pod)
  const spec = pod.spec
  if (spec == null || sidecar.injection === 'never' || annotations[A.INJECT] === 'false') return NO_CHANGE
  // hostNetwork pods share the node's ports: a listener there is the node's, so only on request.
  if (spec.hostNetwork === true && annotations[A.INJECT] !== 'true') return NO_CHANGE
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? [])]
  if (containers.some((c) => c.name === SIDECAR_NAME)) return NO_CHANGE

  const labels = pod.metadata?.labels ?? {}
  const hints: string[] = []
  const ports = new Map<number, Set<string>>()
  // The pod's ports indexed once: each Service port is then looked up in constant time, so the rule
  // is linear in the pod's ports plus the matching Services' ports (it was their product: 5,000
  // containers × 2 ports against 10,000 UDP Service ports took 1.3 s on the shared event loop).
  const podPorts = indexPodPorts(containers)
  // Why each Service's pods get a sidecar (its warning says so), and the hint for those that do not.
  const reasons = new Map<string, string>()
  for (const service of input.services) {
    if (!selects(service, labels) || !wantsSidecar(service)) continue
    const serviceName = objectName(service.metadata)
    const reach = healthCheckReach(service, sidecar)
    if (!reach.inject) {
      hints.push(`${input.subject}: no health-check sidecar for Service ${serviceName}: ${reach.why}.`)
      continue
    }
    let probed = false
    const targets: number[] = []
    const unresolved: string[] = []
    for (const port of service.spec?.ports ?? []) {
      if (portProtocol(port) !== 'UDP') continue
      const target = resolveTargetPort(port.targetPort, port.port, podPorts)
      if (target === undefined) {
        unresolved.push(`port ${port.port}/UDP targets "${bounded(String(port.targetPort), 63)}"`)
        continue
      }
      if (reach.port !== undefined && target !== reach.port) continue
      probed = true
      if (!podPorts.tcp.has(target)) targets.push(target)
    }
    if (!probed && reach.port !== undefined) {
      hints.push(
        `${input.subject}: no health-check sidecar for Service ${serviceName}: the NLB health-checks port ${reach.port} ` +
          `(${A.AWS_HEALTHCHECK_PORT}), which is none of its UDP target ports on this pod: whatever listens on ${reach.port} answers it.`,
      )
    } else if (targets.length > 0 && reach.unanswerable !== undefined) {
      hints.push(`${input.subject}: no health-check sidecar for Service ${serviceName}: ${reach.unanswerable}.`)
    } else {
      for (const target of targets) {
        const services = ports.get(target) ?? new Set<string>()
        services.add(serviceName)
        ports.set(target, services)
        reasons.set(serviceName, reach.why)
        if (ports.size > MAX_HEALTHCHECK_PORTS) return tooManyPorts(input.subject, hints)
      }
    }
    if (unresolved.length > 0) {
      const many = unresolved.length > 1
      const shown = `${unresolved.slice(0, 10).join(', ')}${unresolved.length > 10 ? ` and ${unresolved.length - 10} more` : ''}`
      hints.push(
        `${input.subject}: Service ${serviceName} ${shown}, ${many ? 'names that name' : 'which names'} no UDP containerPort ` +
          `of this pod, so nlb-guard cannot tell which port to health-check; it added none for ${many ? 'them' : 'it'}.`,
      )
    }
  }
  if (ports.size === 0) return hints.length === 0 ? NO_CHANGE : { allowed: true, ops: [], changes: [], hints }

  const sorted = [...ports.keys()].sort((a, b) => a - b)
  const native = atLeast(input.version, 1, 29)
  const container = sidecarContainer(sorted, sidecar, native)
  const base = input.basePath
  const ops: JsonPatchOp[] = []
  if (native) {
    ops.push(spec.initContainers == null
      ? { op: 'add', path: `${base}/spec/initContainers`, value: [container] }
      : { op: 'add', path: `${base}/spec/initContainers/-`, value: container })
  } else {
    ops.push(spec.containers == null
      ? { op: 'add', path: `${base}/spec/containers`, value: [container] }
      : { op: 'add', path: `${base}/spec/containers/-`, value: container })
  }
  const portList = sorted.join(',')
  ops.push(...setAnnotations(pod.metadata, new Map([[A.HEALTHCHECK_PORTS, portList]]), base))
  const services = [...new Set([...ports.values()].flatMap((s) => [...s]))].sort()
  const change: Change = {
    rule: 'P1',
    required: false,
    message:
      `added ${native ? 'native sidecar (init container with restartPolicy: Always)' : 'sidecar container'} ${SIDECAR_NAME} ` +
      `answering TCP on port${sorted.length > 1 ? 's' : ''} ${sorted.join(', ')} while the app's UDP socket is bound, for ` +
      `Service${services.length > 1 ? 's' : ''} ${services.map((s) => `${s} (${reasons.get(s) ?? ''})`).join(', ')}: NLB health checks cannot be UDP, so without it ` +
      `the targets never become healthy. Annotation ${A.HEALTHCHECK_PORTS}: "${portList}" records the ports; ` +
      `${A.INJECT}: "false" opts out.`,
  }
  return { allowed: true, ops, changes: [change], hints }
}

/** A Service selects a pod when its selector is non-empty and a subset of the pod's labels. */
export function selects(service: Service, labels: Readonly<Record<string, string>>): boolean {
  const selector = service.spec?.selector ?? {}
  const entries = Object.entries(selector)
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value)
}

/** Whether nlb-guard looks at this Service's pods at all: a LoadBalancer an AWS controller builds. */
function wantsSidecar(service: Service): boolean {
  if (!isLoadBalancer(service) || annotationsOf(service)[A.IGNORE] === 'true') return false
  return loadBalancerController(service) !== 'other'
}

/** The pod's ports by what the rule asks of them: UDP ports by name (the first wins), TCP port numbers. */
export interface PodPorts {
  readonly udpByName: ReadonlyMap<string, number>
  readonly tcp: ReadonlySet<number>
}

export function indexPodPorts(containers: readonly Container[]): PodPorts {
  const udpByName = new Map<string, number>()
  const tcp = new Set<number>()
  for (const container of containers) {
    for (const containerPort of container.ports ?? []) {
      const protocol = portProtocol(containerPort)
      if (protocol === 'TCP') tcp.add(containerPort.containerPort)
      else if (protocol === 'UDP' && containerPort.name !== undefined && !udpByName.has(containerPort.name)) {
        udpByName.set(containerPort.name, containerPort.containerPort)
      }
    }
  }
  return { udpByName, tcp }
}

/**
 * The pod port a Service port sends to: a number as is; a name is the pod's UDP containerPort of
 * that name; absent means the Service port itself (Kubernetes defaults targetPort to port).
 */
export function resolveTargetPort(targetPort: number | string | undefined, port: number, podPorts: PodPorts): number | undefined {
  if (targetPort === undefined) return port
  if (typeof targetPort === 'number') return targetPort
  if (/^\d+$/.test(targetPort)) return Number(targetPort)
  return podPorts.udpByName.get(targetPort)
}

/**
 * The most ports one sidecar answers on. An NLB has at most 50 listeners (the ELB quota), so a pod
 * behind more UDP ports than this is not one any load balancer serves; past it the pod is admitted
 * unchanged with a warning (never denied: with failurePolicy Fail a denial would stop the workload),
 * and the rule stops looking, which bounds its work per request.
 */
export const MAX_HEALTHCHECK_PORTS = 64

function tooManyPorts(subject: string, hints: readonly string[]): Decision {
  return {
    allowed: true,
    ops: [],
    changes: [],
    hints: [
      ...hints,
      `${subject}: the UDP LoadBalancer Services that select this pod target more than ${MAX_HEALTHCHECK_PORTS} of its ports ` +
        `without a TCP listener; nlb-guard adds a health-check sidecar for at most ${MAX_HEALTHCHECK_PORTS} ports (an NLB has ` +
        `at most 50 listeners), so it added none. Split the Services, or add ${A.INJECT}: "false" to silence this.`,
    ],
  }
}

/**
 * The Go runtime's settings in the injected container, measured with them in the bench
 * (bench/sidecar.ts keeps a copy, test/bench/sidecar.test.ts keeps the two equal): one thread
 * runs Go code (the sidecar is idle between polls), and the heap is collected early and kept
 * under a soft limit well inside the container's memory limit.
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { GOMAXPROCS: '1', GOGC: '50', GOMEMLIMIT: '6MiB' }

/** The injected container: passes the `restricted` Pod Security Standard, small and fixed in size. */
export function sidecarContainer(ports: readonly number[], sidecar: SidecarSettings, native: boolean): Record<string, unknown> {
  const tcp = sidecar.mode === 'tcp'
  return {
    name: SIDECAR_NAME,
    image: sidecar.image,
    // The image's entry point is the binary (Dockerfile, target `sidecar`): these are its flags.
    args: [
      ...ports.flatMap((p) => ['--port', String(p)]),
      '--mode',
      sidecar.mode,
      ...(tcp ? [] : ['--http-port', String(sidecar.httpPort)]),
      '--interval-ms',
      String(sidecar.intervalMs),
    ],
    ...(native ? { restartPolicy: 'Always' } : {}),
    env: Object.entries(SIDECAR_ENV).map(([name, value]) => ({ name, value })),
    ports: tcp
      ? ports.map((p) => ({ name: `hc-${p}`, containerPort: p, protocol: 'TCP' }))
      : [{ name: 'hc-http', containerPort: sidecar.httpPort, protocol: 'TCP' }],
    resources: sidecar.resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  }
}

/** A kind whose pods the Pod rule looks at: its apiVersion, and where the pod template sits in it. */
export interface WorkloadKind {
  readonly apiVersion: string
  readonly kind: string
  /** Keys down to the pod template: none for a Pod. */
  readonly templatePath: readonly string[]
}

/**
 * The kinds whose pods (or pod templates) the Pod rule looks at: at admission (Pods, and the
 * workloads with `sidecar.mutateWorkloads`) and offline in `fix`/`check`. Matched by apiVersion and
 * kind: a webhook registered for apps/v1 gets apps/v1 objects (matchPolicy Equivalent converts).
 */
export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { apiVersion: 'v1', kind: 'Pod', templatePath: [] },
  { apiVersion: 'apps/v1', kind: 'Deployment', templatePath: ['spec', 'template'] },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', templatePath: ['spec', 'template'] },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', templatePath: ['spec', 'template'] },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet', templatePath: ['spec', 'template'] },
  { apiVersion: 'batch/v1', kind: 'Job', templatePath: ['spec', 'template'] },
  { apiVersion: 'batch/v1', kind: 'CronJob', templatePath: ['spec', 'jobTemplate', 'spec', 'template'] },
]

/** The workload kind of an object with this apiVersion and kind, if the Pod rule looks at it. */
export function workloadKind(apiVersion: unknown, kind: unknown): WorkloadKind | undefined {
  return WORKLOAD_KINDS.find((w) => w.apiVersion === apiVersion && w.kind === kind)
}

/** The JSON Pointer of the pod template in an object of this kind: '' for a Pod, '/spec/template' for a Deployment. */
export function templatePointer(kind: string): string | undefined {
  const workload = WORKLOAD_KINDS.find((w) => w.kind === kind)
  return workload?.templatePath.map((p) => `/${escapePointerToken(p)}`).join('')
}

/** What sits at the workload's template path in `object`; undefined where the path breaks off. */
export function podTemplateOf(object: unknown, workload: WorkloadKind): unknown {
  return workload.templatePath.reduce<unknown>((node, key) => (isRecord(node) ? node[key] : undefined), object)
}
