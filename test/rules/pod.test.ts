import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { SidecarConfig } from '../../webhook/config.js'
import type { Pod, Service } from '../../webhook/k8s/objects.js'
import type { JsonPatchOp } from '../../webhook/rules/decision.js'
import { warningsOf } from '../../webhook/rules/decision.js'
import { indexPodPorts, mutatePod, resolveTargetPort, SIDECAR_NAME, sidecarContainer } from '../../webhook/rules/pod.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'
import { slimService } from '../../webhook/cluster/services.js'

const sidecar = SidecarConfig.parse({ image: 'example/nlb-guard:test' })

function svc(name: string, selector: Record<string, string>, ports: Array<{ port: number; protocol?: string; targetPort?: number | string }>, extra: { annotations?: Record<string, string>; lbClass?: string; type?: string; namespace?: string } = {}): Service {
  return {
    metadata: { name, namespace: extra.namespace ?? 'demo', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { type: extra.type ?? 'LoadBalancer', selector, ports, ...(extra.lbClass ? { loadBalancerClass: extra.lbClass } : {}) },
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

function native(ports: number[]) {
  return sidecarContainer(ports, sidecar, true)
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
    warnings: [/added native sidecar .*nlb-guard-healthcheck answering TCP on ports 5060, 10000 .*Services demo\/rtp, demo\/sip/],
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
  { name: 'policy ip-targets skips instance targets', pod: pod(), services: [sip], config: { ...sidecar, injection: 'ip-targets' }, ops: [] },
  {
    name: 'policy ip-targets injects for nlb-target-type ip',
    pod: pod(),
    services: [svc('sip', { app: 'sip' }, [{ port: 5060, protocol: 'UDP' }], { annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } })],
    config: { ...sidecar, injection: 'ip-targets' },
    ops: [
      { op: 'add', path: '/spec/initContainers', value: [native([5060])] },
      { op: 'add', path: '/metadata/annotations', value: { 'nlb-guard.io/healthcheck-ports': '5060' } },
    ],
    warnings: [/native sidecar/],
  },
]

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
  t.same(container.resources.limits, { cpu: '50m', memory: '64Mi' })
  t.equal(container.restartPolicy, 'Always')
  t.same(container.args, ['healthcheck', '--port', '53', '--mode', 'tcp', '--interval-ms', '1000'])
  const http = sidecarContainer([53, 54], { ...sidecar, mode: 'http', httpPort: 10254 }, false) as { args: string[]; ports: unknown[] }
  t.same(http.args, ['healthcheck', '--port', '53', '--port', '54', '--mode', 'http', '--http-port', '10254', '--interval-ms', '1000'])
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
})

/**
 * The shape: one pod with 5,000 containers × 2 ports against a cached Service with 10,000 UDP
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
  // The Service: 10,000 UDP ports, none served by the pod.
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
