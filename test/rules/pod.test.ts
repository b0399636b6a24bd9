import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { SidecarConfig } from '../../webhook/config.js'
import type { Pod, Service } from '../../webhook/k8s/objects.js'
import type { JsonPatchOp } from '../../webhook/rules/decision.js'
import { warningsOf } from '../../webhook/rules/decision.js'
import { indexPodPorts, mutatePod, podTemplateOf, resolveTargetPort, SIDECAR_NAME, sidecarContainer, templatePointer, workloadKind } from '../../webhook/rules/pod.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'
import { slimService } from '../../webhook/cluster/services.js'

// The mechanics of injection, under `injection: always`; where `auto` injects is tested below.
const sidecar = SidecarConfig.parse({ image: 'example/nlb-guard:test', injection: 'always' })
const auto = SidecarConfig.parse({ image: 'example/nlb-guard:test' })

function svc(name: string, selector: Record<string, string>, ports: Array<{ name?: string; port: number; protocol?: string; targetPort?: number | string }>, extra: { annotations?: Record<string, string>; lbClass?: string; type?: string; namespace?: string; local?: boolean } = {}): Service {
  return {
    metadata: { name, namespace: extra.namespace ?? 'demo', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { type: extra.type ?? 'LoadBalancer', selector, ports, ...(extra.lbClass ? { loadBalancerClass: extra.lbClass } : {}), ...(extra.local ? { externalTrafficPolicy: 'Local' } : {}) },
  } as Service
}

function pod(options: { labels?: Record<string, string>; annotations?: Record<string, string>; hostNetwork?: boolean; ports?: Array<{ name?: string; containerPort: number; protocol?: string }>; initContainers?: unknown[]; withSidecar?: boolean } = {}): Pod {
  const containers: unknown[] = [{ name: 'app', image: 'app', ports: options.ports ?? [{ name: 'sip', containerPort: 5060, protocol: 'UDP' }] }]
  if (options.withSidecar) containers.push({ name: SIDECAR_NAME, image: 'x' })
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'demo', labels: options.labels ?? { app: 'sip', tier: 'edge' }, ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: { containers, ...(options.hostNetwork ? { hostNetwork: true } : {}), ...(options.initContainers ? { initContainers: options.initContainers } : {}) },
  } as Pod
}

const sip = svc('sip', { app: 'sip' }, [{ port: 5060, protocol: 'UDP', targetPort: 'sip' }])
const rtp = svc('rtp', { app: 'sip', tier: 'edge' }, [{ port: 10000, protocol: 'UDP' }, { port: 443, protocol: 'TCP' }])

function run(p: Pod, services: Service[], version = '1.30.0', config = sidecar) {
  return mutatePod({ pod: p, basePath: '', subject: 'Pod demo/p', services, version: parseKubeVersion(version), sidecar: config })
}

function native(ports: number[], config = sidecar) {
  return sidecarContainer(ports, config, true)
}

interface Case {
  name: string
  pod: Pod
  services: Service[]
  version?: string
  config?: SidecarConfig
  ops: JsonPatchOp[]
  warnings?: RegExp[]
}

const cases: Case[] = [
  {
    name: 'two Services, named and numeric targetPorts: one native sidecar on both ports (1.29+)',
    pod: pod(),
    services: [sip, rtp],
    ops: [
      { op: 'add', path: '/spec/initContainers', value: [native([5060, 10000])] },
      { op: 'add', path: '/metadata/annotations', value: { 'nlb-guard.io/healthcheck-ports': '5060,10000' } },
    ],
    warnings: [/added native sidecar .*nlb-guard-healthcheck answering TCP on ports 5060, 10000 .*Services demo\/rtp \(injection: always\), demo\/sip \(injection: always\)/],
  },
  {
    name: 'Kubernetes 1.28: a regular container appended',
    pod: pod({ annotations: { keep: 'me' } }),
    services: [sip],
    version: '1.28.9',
    ops: [
      { op: 'add', path: '/spec/containers/-', value: sidecarContainer([5060], sidecar, false) },
      { op: 'add', path: '/metadata/annotations/nlb-guard.io~1healthcheck-ports', value: '5060' },
    ],
    warnings: [/added sidecar container nlb-guard-healthcheck answering TCP on port 5060 /],
  },
  {
    name: 'existing init containers: the sidecar is appended',
    pod: pod({ initContainers: [{ name: 'init', image: 'busybox' }] }),
    services: [sip],
    ops: [
      { op: 'add', path: '/spec/initContainers/-', value: native([5060]) },
      { op: 'add', path: '/metadata/annotations', value: { 'nlb-guard.io/healthcheck-ports': '5060' } },
    ],
    warnings: [/native sidecar/],
  },
  { name: 'Services in other namespaces are not in the lookup: nothing', pod: pod(), services: [], ops: [] },
  { name: 'an empty selector selects nothing', pod: pod(), services: [svc('all', {}, [{ port: 53, protocol: 'UDP' }])], ops: [] },
  { name: 'a selector that does not match: nothing', pod: pod(), services: [svc('other', { app: 'dns' }, [{ port: 53, protocol: 'UDP' }])], ops: [] },
  {
    name: 'an unresolvable named targetPort: warning, skipped',
    pod: pod(),
    services: [svc('bad', { app: 'sip' }, [{ port: 53, protocol: 'UDP', targetPort: 'dns' }])],
    ops: [],
    warnings: [/targets "dns", which names no UDP containerPort of this pod/],
  },
  {
    name: 'a port the app already serves on TCP is skipped (seed 002)',
    pod: pod({ ports: [{ containerPort: 5060, protocol: 'UDP', name: 'sip' }, { containerPort: 5060, protocol: 'TCP', name: 'sip-tcp' }] }),
    services: [sip],
    ops: [],
  },
  { name: 'hostNetwork pods are skipped', pod: pod({ hostNetwork: true }), services: [sip], ops: [] },
  {
    name: 'hostNetwork pods opted in get it',
    pod: pod({ hostNetwork: true, annotations: { 'nlb-guard.io/inject': 'true' } }),
    services: [sip],
    ops: [
      { op: 'add', path: '/spec/initContainers', value: [native([5060])] },
      { op: 'add', path: '/metadata/annotations/nlb-guard.io~1healthcheck-ports', value: '5060' },
    ],
    warnings: [/native sidecar/],
  },
  { name: 'opt-out annotation', pod: pod({ annotations: { 'nlb-guard.io/inject': 'false' } }), services: [sip], ops: [] },
  { name: 'reinvocation: the sidecar is already there', pod: pod({ withSidecar: true }), services: [sip, rtp], ops: [] },
  { name: 'TCP-only and non-LoadBalancer Services: nothing', pod: pod(), services: [svc('web', { app: 'sip' }, [{ port: 443 }]), svc('cip', { app: 'sip' }, [{ port: 53, protocol: 'UDP' }], { type: 'ClusterIP' })], ops: [] },
  { name: 'a Service of an unknown load balancer class: nothing', pod: pod(), services: [svc('x', { app: 'sip' }, [{ port: 53, protocol: 'UDP' }], { lbClass: 'example.com/lb' })], ops: [] },
  { name: 'policy never', pod: pod(), services: [sip], config: { ...sidecar, injection: 'never' }, ops: [] },
]

// injection: auto (the default): a sidecar only where the NLB's health check reaches the pod's own port.
const TARGET_TYPE = 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type'
const LB_TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const HC_PORT = 'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port'
const HC_PROTOCOL = 'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol'
const udp5060 = [{ name: 'sip', port: 5060, protocol: 'UDP', targetPort: 'sip' }]
const injected = (ports: number[], config = auto) => [
  { op: 'add', path: '/spec/initContainers', value: [native(ports, config)] },
  { op: 'add', path: '/metadata/annotations', value: { 'nlb-guard.io/healthcheck-ports': ports.join(',') } },
] as JsonPatchOp[]
const http = SidecarConfig.parse({ image: 'example/nlb-guard:test', mode: 'http' })
cases.push(
  {
    name: 'auto, IP targets (nlb-target-type: ip): the NLB probes the pod, so a sidecar, and the warning says why',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip' } })],
    config: auto,
    ops: injected([5060]),
    warnings: [/added native sidecar .* for Service demo\/sip \(IP targets: the NLB health-checks this pod's own UDP port over TCP\)/],
  },
  { name: 'auto, type nlb-ip (IP targets): a sidecar', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [LB_TYPE]: 'nlb-ip' } })], config: auto, ops: injected([5060]), warnings: [/IP targets/] },
  { name: 'auto, EKS Auto Mode (IP targets by default): a sidecar', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { lbClass: 'eks.amazonaws.com/nlb' })], config: auto, ops: injected([5060]), warnings: [/IP targets/] },
  {
    name: 'auto, EKS Auto Mode told to use instance targets, Local: none, and the Pod is told why',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { lbClass: 'eks.amazonaws.com/nlb', local: true, annotations: { [TARGET_TYPE]: 'instance' } })],
    config: auto,
    ops: [],
    warnings: [/^Pod demo\/p: no health-check sidecar for Service demo\/sip: instance targets with externalTrafficPolicy: Local: the NLB health-checks kube-proxy's health-check node port over HTTP, which answers for the node, so a sidecar in the pod is never asked\.$/],
  },
  {
    name: 'auto, instance targets (in-tree nlb) with Local: none, kube-proxy answers',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { local: true, annotations: { [LB_TYPE]: 'nlb' } })],
    config: auto,
    ops: [],
    warnings: [/no health-check sidecar for Service demo\/sip: instance targets with externalTrafficPolicy: Local: .*kube-proxy/],
  },
  {
    name: 'auto, instance targets with Cluster: none, a pod sidecar cannot help (S4)',
    pod: pod(),
    services: [sip],
    config: auto,
    ops: [],
    warnings: [/no health-check sidecar for Service demo\/sip: instance targets with externalTrafficPolicy: Cluster: the NLB probes the Service's UDP NodePort over TCP/],
  },
  { name: 'auto, AWS Load Balancer Controller without a target type (instance): none', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { lbClass: 'service.k8s.aws/nlb' })], config: auto, ops: [], warnings: [/instance targets/] },
  { name: 'auto, IP targets, healthcheck-port: traffic-port: a sidecar', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: 'traffic-port' } })], config: auto, ops: injected([5060]), warnings: [/IP targets/] },
  {
    name: 'auto, IP targets, healthcheck-port names one of two UDP target ports: a sidecar on that port only',
    pod: pod({ ports: [{ name: 'sip', containerPort: 5060, protocol: 'UDP' }, { containerPort: 10000, protocol: 'UDP' }] }),
    services: [svc('media', { app: 'sip' }, [{ port: 5060, protocol: 'UDP', targetPort: 'sip' }, { port: 10000, protocol: 'UDP' }], { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '10000' } })],
    config: auto,
    ops: injected([10000]),
    warnings: [/answering TCP on port 10000 .*Service demo\/media \(IP targets: the NLB health-checks port 10000 of this pod \(service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-port\) over TCP\)/],
  },
  {
    name: 'auto, IP targets, healthcheck-port elsewhere (the app\'s own check on 8080): honoured, no sidecar',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '8080' } })],
    config: auto,
    ops: [],
    warnings: [/^Pod demo\/p: no health-check sidecar for Service demo\/sip: the NLB health-checks port 8080 \(service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-port\), which is none of its UDP target ports on this pod: whatever listens on 8080 answers it\.$/],
  },
  {
    name: 'auto, healthcheck-port names a Service port with a numeric targetPort: that port',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, [{ name: 'sip', port: 53, protocol: 'UDP', targetPort: 5060 }], { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: 'sip' } })],
    config: auto,
    ops: injected([5060]),
    warnings: [/port 5060 of this pod/],
  },
  {
    name: 'auto, healthcheck-port names a port whose targetPort is a name: the controller refuses it, nlb-guard adds none',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: 'sip' } })],
    config: auto,
    ops: [],
    warnings: [/healthcheck-port: "sip" names no Service port with a numeric targetPort/],
  },
  {
    name: 'auto, http mode, healthcheck-port is the sidecar\'s HTTP port: an HTTP sidecar',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '10254' } })],
    config: http,
    ops: injected([5060], http),
    warnings: [
      /added native sidecar .*Service demo\/sip \(IP targets: the NLB health-checks port 10254 of this pod, where the sidecar answers HTTP \(over TCP, which sees only that the sidecar listens: set service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-protocol: HTTP on the Service for the check to follow the UDP ports\)\)/,
    ],
  },
  {
    name: 'auto, http mode, healthcheck-protocol: HTTP on the sidecar\'s port: an HTTP sidecar, and no advice',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '10254', [HC_PROTOCOL]: 'HTTP' } })],
    config: http,
    ops: injected([5060], http),
    warnings: [/added native sidecar .*Service demo\/sip \(IP targets: the NLB health-checks port 10254 of this pod, where the sidecar answers HTTP\)/],
  },
  {
    name: 'auto, tcp mode, healthcheck-protocol: HTTP (any case, as the controller upper-cases it): none, a TCP listener never answers HTTP',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PROTOCOL]: 'http' } })],
    config: auto,
    ops: [],
    warnings: [
      /^Pod demo\/p: no health-check sidecar for Service demo\/sip: the NLB health-checks over HTTP \(service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-protocol\), and the sidecar \(sidecar\.mode: tcp\) only accepts connections, so that check would never pass: set service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-protocol: TCP on the Service, or run the sidecar with sidecar\.mode: http and point service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-port at its port 10254\.$/,
    ],
  },
  {
    name: 'auto, tcp mode, healthcheck-protocol: TCP said out loud: a sidecar',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PROTOCOL]: 'TCP' } })],
    config: auto,
    ops: injected([5060]),
    warnings: [/IP targets: the NLB health-checks this pod's own UDP port over TCP/],
  },
  {
    name: 'auto, healthcheck-protocol: HTTPS: none in either mode, the sidecar has no certificate',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '10254', [HC_PROTOCOL]: 'HTTPS' } })],
    config: http,
    ops: [],
    warnings: [/no health-check sidecar for Service demo\/sip: the NLB health-checks over HTTPS .*cannot answer \(it has no certificate\): set it to HTTP on the Service\.$/],
  },
  {
    name: 'auto, a healthcheck-protocol the controller refuses: none, and the Pod is told the Service has no load balancer',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PROTOCOL]: 'UDP' } })],
    config: auto,
    ops: [],
    warnings: [/aws-load-balancer-healthcheck-protocol: "UDP" is none of TCP, HTTP, HTTPS: the AWS Load Balancer Controller refuses the Service/],
  },
  {
    name: 'auto, HTTP on the app\'s own port (8080): the port decides first, no advice about the protocol',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip', [HC_PORT]: '8080', [HC_PROTOCOL]: 'HTTP' } })],
    config: auto,
    ops: [],
    warnings: [/^Pod demo\/p: no health-check sidecar for Service demo\/sip: the NLB health-checks port 8080 \(service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-port\), which is none of its UDP target ports on this pod: whatever listens on 8080 answers it\.$/],
  },
  {
    name: 'auto, http mode, the NLB probes the traffic port: none, and the warning says which annotation to set',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip' } })],
    config: http,
    ops: [],
    warnings: [/sidecar \(sidecar\.mode: http\) answers on port 10254: set service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-port: "10254"/],
  },
  {
    name: 'auto, one IP-target and one instance-target Service: a sidecar for the first, a reason for the second',
    pod: pod({ ports: [{ name: 'sip', containerPort: 5060, protocol: 'UDP' }, { containerPort: 10000, protocol: 'UDP' }] }),
    services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip' } }), svc('rtp', { app: 'sip' }, [{ port: 10000, protocol: 'UDP' }], { local: true })],
    config: auto,
    ops: injected([5060]),
    warnings: [/added native sidecar .*port 5060 .*Service demo\/sip \(IP targets/, /no health-check sidecar for Service demo\/rtp: instance targets with externalTrafficPolicy: Local/],
  },
  { name: 'always keeps injecting behind instance targets', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { local: true })], config: sidecar, ops: injected([5060], sidecar), warnings: [/injection: always/] },
  { name: 'never: nothing, and no reason either', pod: pod(), services: [svc('sip', { app: 'sip' }, udp5060, { annotations: { [TARGET_TYPE]: 'ip' } })], config: { ...auto, injection: 'never' }, ops: [] },
)

for (const c of cases) {
  t.test(c.name, async (t) => {
    const decision = run(c.pod, c.services, c.version, c.config)
    t.equal(decision.allowed, true)
    if (!decision.allowed) return
    t.same(decision.ops, c.ops, 'exact JSON Patch operations')
    const warnings = warningsOf(decision)
    t.equal(warnings.length, (c.warnings ?? []).length, JSON.stringify(warnings))
    for (const pattern of c.warnings ?? []) t.ok(warnings.some((w) => pattern.test(w)), `warning matches ${pattern}`)
    const patched = fastJsonPatch.applyPatch(structuredClone(c.pod), decision.ops as fastJsonPatch.Operation[], true, false).newDocument
    const again = run(patched, c.services, c.version, c.config)
    t.same(again.allowed && again.ops, [], 'reinvoked on its own output: no second sidecar')
  })
}

t.test('the sidecar passes the restricted Pod Security Standard and is small', async (t) => {
  const container = native([53]) as { securityContext: Record<string, unknown>; resources: { limits: Record<string, string> }; restartPolicy: string; args: string[] }
  t.match(container.securityContext, {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  })
  t.same(container.resources, { requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '20m', memory: '32Mi' } }, 'from the bench: 1.9 MiB resident, room for the runtime\'s start')
  t.equal(container.restartPolicy, 'Always')
  t.equal((native([53]) as { image: string }).image, 'example/nlb-guard:test')
  t.equal(SidecarConfig.parse({}).image, 'ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0', 'the sidecar image by default')
  t.same(container.args, ['--port', '53', '--mode', 'tcp', '--interval-ms', '1000'], "the binary's own flags: it is the image's entry point")
  t.same((container as unknown as { env: unknown }).env, [{ name: 'GOMAXPROCS', value: '1' }, { name: 'GOGC', value: '50' }, { name: 'GOMEMLIMIT', value: '6MiB' }])
  const http = sidecarContainer([53, 54], { ...sidecar, mode: 'http', httpPort: 10254 }, false) as { args: string[]; ports: unknown[] }
  t.same(http.args, ['--port', '53', '--port', '54', '--mode', 'http', '--http-port', '10254', '--interval-ms', '1000'])
  t.same(http.ports, [{ name: 'hc-http', containerPort: 10254, protocol: 'TCP' }])
})

t.test('targetPort resolution', async (t) => {
  const containers = [{ name: 'a', ports: [{ name: 'dns', containerPort: 5353, protocol: 'UDP' }, { name: 'web', containerPort: 80 }] }]
  t.equal(resolveTargetPort(undefined, 53, indexPodPorts(containers)), 53, 'absent → port')
  t.equal(resolveTargetPort(5300, 53, indexPodPorts(containers)), 5300, 'number')
  t.equal(resolveTargetPort('5301', 53, indexPodPorts(containers)), 5301, 'a number written as a string')
  t.equal(resolveTargetPort('dns', 53, indexPodPorts(containers)), 5353, 'a name → the UDP containerPort')
  t.equal(resolveTargetPort('web', 53, indexPodPorts(containers)), undefined, 'a TCP port of that name does not count')
})

t.test('the cache keeps only UDP LoadBalancer Services, slimmed', async (t) => {
  t.equal(slimService({ metadata: { name: 'a' }, spec: { type: 'ClusterIP', ports: [{ port: 53, protocol: 'UDP' }] } }), null)
  t.equal(slimService({ metadata: { name: 'a' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } }), null)
  t.same(
    slimService({
      metadata: { name: 'a', namespace: 'n', resourceVersion: '7', labels: { big: 'x' }, annotations: { 'nlb-guard.io/ignore': 'false', other: 'dropped' } },
      spec: { type: 'LoadBalancer', selector: { app: 'a' }, ports: [{ port: 80 }, { port: 53, protocol: 'UDP', targetPort: 'dns', nodePort: 30000 }], clusterIP: '10.0.0.1' },
    }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'a', namespace: 'n', resourceVersion: '7', annotations: { 'nlb-guard.io/ignore': 'false' } },
      spec: { type: 'LoadBalancer', selector: { app: 'a' }, ports: [{ port: 53, protocol: 'UDP', targetPort: 'dns' }] },
    },
  )
  t.match(
    slimService({
      metadata: { name: 'a', annotations: { [HC_PORT]: 'dns', [HC_PROTOCOL]: 'HTTP', [TARGET_TYPE]: 'ip' } },
      spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 31000, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
    }),
    { metadata: { annotations: { [HC_PORT]: 'dns', [HC_PROTOCOL]: 'HTTP', [TARGET_TYPE]: 'ip' } }, spec: { externalTrafficPolicy: 'Local', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } },
    'what decides where and how the NLB health-checks is kept: the traffic policy, the health-check port and protocol, the port names it may use',
  )
})

/**
 * The issue's shape: one pod with 5,000 containers × 2 ports against a cached Service with 10,000 UDP
 * ports. Work is counted, not timed: every read of a container's `ports` goes through a Proxy, and a
 * rule that looked at every container for every Service port (10,000 × 5,000) would read them tens
 * of millions of times; past a million reads the counter throws.
 */
function largePod(count: { reads: number }): Pod {
  const counted = <T extends object>(container: T): T =>
    new Proxy(container, {
      get(target, key, receiver) {
        if (key === 'ports' && ++count.reads > 1_000_000) throw new Error(`over a million reads of container ports: the rule is quadratic`)
        return Reflect.get(target, key, receiver) as unknown
      },
    })
  const containers = Array.from({ length: 5000 }, (_, i) =>
    counted({ name: `c${i}`, image: 'app', ports: [{ name: `t${i}`, containerPort: 20_000 + 2 * i, protocol: 'TCP' }, { name: `u${i}`, containerPort: 20_001 + 2 * i, protocol: 'UDP' }] }),
  )
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big', namespace: 'demo', labels: { app: 'big' } }, spec: { containers } } as Pod
}

t.test('the Pod rule reads each container once, whatever the Service (5,000 containers × 2 ports vs 10,000 UDP ports)', async (t) => {
  // Half the Service's ports target the pod's TCP ports (served already), half name no UDP port.
  const ports = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? { port: 1 + i, protocol: 'UDP', targetPort: 20_000 + 2 * ((i / 2) % 5000) } : { port: 1 + i, protocol: 'UDP', targetPort: `missing-${i}` }))
  const count = { reads: 0 }
  const decision = run(largePod(count), [svc('wide', { app: 'big' }, ports)])
  t.ok(count.reads <= 5000, `${count.reads} reads of container ports for 5,000 containers`)
  t.same(decision.allowed && decision.ops, [], 'every numeric target is served by TCP already: nothing added')
  const warnings = warningsOf(decision)
  t.equal(warnings.length, 1, 'the 5,000 unresolvable names make one warning')
  t.match(warnings[0], /port 2\/UDP targets "missing-1", .* and 4990 more, names that name no UDP containerPort/)
  t.ok((warnings[0] ?? '').length < 1000, `that warning is ${(warnings[0] ?? '').length} characters`)
})

t.test(`past ${64} health-check ports the pod is admitted unchanged with a warning, and the rule stops looking`, async (t) => {
  // The issue's Service: 10,000 UDP ports, none served by the pod.
  const ports = Array.from({ length: 10_000 }, (_, i) => ({ port: 30_000 + i, protocol: 'UDP' }))
  const count = { reads: 0 }
  const decision = run(largePod(count), [svc('wide', { app: 'big' }, ports)])
  t.ok(count.reads <= 5000, `${count.reads} reads of container ports`)
  t.same(decision.allowed && decision.ops, [], 'no sidecar')
  t.match(warningsOf(decision), [/target more than 64 of its ports without a TCP listener.*added none.*nlb-guard\.io\/inject: "false"/])
  const limit = Array.from({ length: 64 }, (_, i) => ({ port: 30_000 + i, protocol: 'UDP' }))
  const fits = run(largePod({ reads: 0 }), [svc('wide', { app: 'big' }, limit)])
  t.equal(fits.allowed && fits.ops.length, 2, 'exactly 64 ports still get their sidecar')
})

t.test('the workload kinds table: matched by apiVersion and kind, with the template path', async (t) => {
  const cronJob = workloadKind('batch/v1', 'CronJob')
  t.same(cronJob?.templatePath, ['spec', 'jobTemplate', 'spec', 'template'])
  t.equal(workloadKind('apps/v1beta2', 'Deployment'), undefined, 'another version of a kind is not the kind the table names')
  t.equal(workloadKind('v1', 'Service'), undefined)
  t.equal(templatePointer('CronJob'), '/spec/jobTemplate/spec/template')
  t.equal(templatePointer('Pod'), '')
  t.equal(templatePointer('Service'), undefined)
  const template = { metadata: { labels: { app: 'a' } } }
  if (cronJob === undefined) return
  t.equal(podTemplateOf({ spec: { jobTemplate: { spec: { template } } } }, cronJob), template)
  t.equal(podTemplateOf({ spec: { jobTemplate: 'oops' } }, cronJob), undefined, 'a path that breaks off is undefined')
})
