// Every rule of DESIGN §4 and §5 the way users meet it: a real kube-apiserver calling the real
// `nlb-guard serve` through webhook configurations rendered from manifests/, driven by kubectl.
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { ROOT } from '../fixtures/cli.js'
import { eventually, startControlPlane, type ControlPlane } from './harness.js'
import { pointAt, renderManifests, startNlbGuard, toYaml, type NlbGuard } from './nlb-guard.js'

t.setTimeout(30 * 60_000)

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const CROSS = 'service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled'

function service(name: string, options: { ports?: Array<[number, string]>; annotations?: Record<string, string>; local?: boolean; selector?: Record<string, string> } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      selector: options.selector ?? { app: name },
      ports: (options.ports ?? [[5060, 'UDP']]).map(([port, protocol]) => ({ name: `${protocol.toLowerCase()}-${port}`, port, protocol })),
      ...(options.local ? { externalTrafficPolicy: 'Local' } : {}),
    },
  })
}


t.test('nlb-guard on a real kube-apiserver', async (t) => {
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())
  const kubectl = cp.kubectl.bind(cp)
  const guard: NlbGuard = await startNlbGuard(['--kubeconfig', cp.kubeconfig])
  t.teardown(() => guard.stop())
  const manifests = await renderManifests(cp)

  // The whole default overlay (Namespace, RBAC, Deployment, …) is stored for real, with the webhook
  // configurations pointed at the local server instead of the in-cluster Service.
  const webhooks = pointAt(manifests, guard)
  const rest = manifests.filter((m) => m.kind !== 'MutatingWebhookConfiguration' && m.kind !== 'ValidatingWebhookConfiguration')
  const applied = await kubectl(['apply', '-f', '-'], { input: toYaml([...rest, ...webhooks]), allowFail: true })
  t.equal(applied.code, 0, `manifests/overlays/default applied: ${applied.stderr}`)
  await kubectl(['create', 'namespace', 'e2e'])
  const ns = ['-n', 'e2e']

  // The apiserver picks up webhook configurations and ServiceCIDRs asynchronously.
  await eventually('the mutating webhook answers dry-runs', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...ns, '-f', '-'], { input: service('probe'), allowFail: true })
    return r.code === 0 && JSON.parse(r.stdout).metadata.annotations?.[TYPE] === 'nlb' ? true : undefined
  }, 60_000)

  t.test('S2: dry-run shows the corrected Service, prints our warning, stores nothing', async (t) => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'yaml', ...ns, '-f', '-'], { input: service('echo-udp') })
    t.equal(parse(r.stdout).metadata.annotations[TYPE], 'nlb')
    t.match(r.stderr, /Warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb": the Service has UDP ports/)
    const get = await kubectl(['get', 'service', 'echo-udp', ...ns], { allowFail: true })
    t.not(get.code, 0, 'nothing stored')
    t.match(get.stderr, /NotFound/)
  })

  t.test("the README's demo prints exactly what the README says", async (t) => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const command = /<!-- demo:command -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1]
    const expected = /<!-- demo:output -->\n```\n([\s\S]*?)```/.exec(readme)?.[1]
    t.ok(command && expected, 'the README has the demo command and its output')
    const run = spawnSync('bash', ['-c', command ?? 'false'], { env: { ...process.env, KUBECONFIG: cp.kubeconfig }, encoding: 'utf8' })
    t.equal(run.status, 0, run.stderr)
    t.equal(`${run.stderr}${run.stdout}`, expected, 'warnings (stderr) then the annotations (stdout), as in the README')
  })

  t.test('S2 and S3: kubectl apply stores the corrected Service', async (t) => {
    const r = await eventually('ServiceCIDR ready', async () => {
      const attempt = await kubectl(['apply', ...ns, '-f', '-'], { input: service('sip', { local: true }), allowFail: true })
      return attempt.code === 0 ? attempt : undefined
    })
    t.match(r.stderr, /Warning: added annotation .*aws-load-balancer-type: "nlb"/)
    t.match(r.stderr, /Warning: set annotation .*cross-zone-load-balancing-enabled: "true"/)
    const stored = JSON.parse((await kubectl(['get', 'service', 'sip', '-o', 'json', ...ns])).stdout)
    t.equal(stored.metadata.annotations[TYPE], 'nlb')
    t.equal(stored.metadata.annotations[CROSS], 'true')
    const reapplied = await kubectl(['apply', ...ns, '-f', '-'], { input: service('sip', { local: true }) })
    t.notMatch(reapplied.stderr, /Warning:/, 're-applying the same manifest changes nothing and warns nothing')
  })

  t.test('S2 UPDATE: a dropped load balancer type is restored; a changed one is denied', async (t) => {
    const drop = await kubectl(['annotate', 'service', 'sip', `${TYPE}-`, ...ns])
    t.match(drop.stderr, /Warning: restored annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)
    const stored = JSON.parse((await kubectl(['get', 'service', 'sip', '-o', 'json', ...ns])).stdout)
    t.equal(stored.metadata.annotations[TYPE], 'nlb', 'still an NLB')
    const change = await kubectl(['annotate', '--overwrite', 'service', 'sip', `${TYPE}=external`, ...ns], { allowFail: true })
    t.not(change.code, 0)
    t.match(change.stderr, /denied the request: Service e2e\/sip already has a load balancer, and this update changes .* from "nlb" to "external": .*orphaned/)
    const allowed = await kubectl(['annotate', '--overwrite', 'service', 'sip', `${TYPE}=external`, 'nlb-guard.io/allow-lb-type-change=true', ...ns], { allowFail: true })
    t.equal(allowed.code, 0, `the opt-out lets it through: ${allowed.stderr}`)
  })

  t.test('S2 and S3 denials print our message', async (t) => {
    const classic = await kubectl(['apply', ...ns, '-f', '-'], { input: service('classic', { annotations: { [TYPE]: 'clb' } }), allowFail: true })
    t.not(classic.code, 0)
    t.match(classic.stderr, /admission webhook "services\.nlb-guard\.io" denied the request: Service e2e\/classic has UDP ports .* "clb", which asks for a Classic ELB/)
    const single = await kubectl(['apply', ...ns, '-f', '-'], { input: service('single', { local: true, annotations: { [CROSS]: 'false' } }), allowFail: true })
    t.not(single.code, 0)
    t.match(single.stderr, /turns cross-zone load balancing off .* nlb-guard\.io\/allow-single-zone/)
  })

  t.test('S3: the cross-zone attribute as the AWS Load Balancer Controller reads it (the last value of a repeated key)', async (t) => {
    const ATTRS = 'service.beta.kubernetes.io/aws-load-balancer-attributes'
    const repeated = await kubectl(['apply', ...ns, '-f', '-'], {
      input: service('repeated', { local: true, annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled=true,load_balancing.cross_zone.enabled=false' } }),
      allowFail: true,
    })
    t.not(repeated.code, 0, 'true then false: the controller applies false, so it is denied')
    t.match(repeated.stderr, /denied the request: Service e2e\/repeated has externalTrafficPolicy: Local and turns cross-zone load balancing off \(service\.beta\.kubernetes\.io\/aws-load-balancer-attributes: "load_balancing\.cross_zone\.enabled=false"\)/)
    const unreadable = await kubectl(['apply', ...ns, '-f', '-'], {
      input: service('unreadable', { local: true, annotations: { [TYPE]: 'external', 'nlb-guard.io/allow-single-zone': 'true', [ATTRS]: 'load_balancing.cross_zone.enabled= false' } }),
      allowFail: true,
    })
    t.not(unreadable.code, 0, 'a value the controller cannot read is denied, even with the single-zone opt-out')
    t.match(unreadable.stderr, /load_balancing\.cross_zone\.enabled is " false" .* neither true nor false/)
    const last = await kubectl(['apply', '--dry-run=server', ...ns, '-f', '-'], {
      input: service('last-true', { local: true, annotations: { [TYPE]: 'external', [ATTRS]: 'load_balancing.cross_zone.enabled=false,load_balancing.cross_zone.enabled=true' } }),
      allowFail: true,
    })
    t.equal(last.code, 0, `false then true: the controller applies true, so it is allowed ${last.stderr}`)
  })

  t.test('S1 on a cluster that supports mixed protocols: allowed, with the AWS warning', async (t) => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...ns, '-f', '-'], { input: service('echo', { ports: [[12345, 'TCP'], [12345, 'UDP']] }) })
    t.match(r.stderr, /Warning: .*in-tree AWS cloud provider never builds a mixed-protocol load balancer/)
  })

  t.test('S4: the health-check hint reaches kubectl', async (t) => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...ns, '-f', '-'], { input: service('hint') })
    t.match(r.stderr, /Warning: .*NLB probes the UDP NodePort over TCP/)
  })

  t.test('ignored Services and excluded namespaces are untouched', async (t) => {
    const ignored = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...ns, '-f', '-'], { input: service('ignored', { annotations: { 'nlb-guard.io/ignore': 'true' } }) })
    t.equal(JSON.parse(ignored.stdout).metadata.annotations[TYPE], undefined)
    await kubectl(['create', 'namespace', 'skipped'])
    await kubectl(['label', 'namespace', 'skipped', 'nlb-guard.io/ignore=true'])
    const skipped = await eventually('label seen', async () => {
      const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'skipped', '-f', '-'], { input: service('x') })
      return JSON.parse(r.stdout).metadata.annotations?.[TYPE] === undefined ? r : undefined
    })
    t.notMatch(skipped.stderr, /Warning/)
  })

  t.test('Pods: the sidecar appears in the dry-run of a pod a real UDP LoadBalancer Service selects', async (t) => {
    await kubectl(['create', 'namespace', 'voip'])
    await kubectl(['label', 'namespace', 'voip', 'pod-security.kubernetes.io/enforce=restricted'])
    // A UDP LoadBalancer Service in voip selecting app, on the pods' named port sip-udp.
    const udpService = (name: string, app: string, port: number, annotations: Record<string, string>, spec: Record<string, unknown> = {}) =>
      eventually(`Service ${name} created`, async () => {
        const r = await kubectl(['apply', '-n', 'voip', '-f', '-'], {
          input: JSON.stringify({
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name, annotations },
            spec: { type: 'LoadBalancer', ...spec, selector: { app }, ports: [{ name, port, protocol: 'UDP', targetPort: 'sip-udp' }] },
          }),
          allowFail: true,
        })
        return r.code === 0 ? r : undefined
      })
    await udpService('sip', 'sip', 5060, { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' })
    const pod = (name: string, app: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app } },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'server',
            image: 'example/sip',
            ports: [{ name: 'sip-udp', containerPort: 15060, protocol: 'UDP' }],
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          }],
        },
      })
    // The informer sees the new Service through its watch; poll until the cache has it.
    const injected = await eventually('the sidecar in the dry-run', async () => {
      const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'voip', '-f', '-'], { input: pod('sip-0', 'sip'), allowFail: true })
      if (r.code !== 0) throw new Error(`a restricted namespace refused the pod with the sidecar: ${r.stderr}`)
      const object = JSON.parse(r.stdout)
      return object.spec.initContainers?.length ? { object, stderr: r.stderr } : undefined
    })
    const sidecar = injected.object.spec.initContainers[0]
    t.equal(sidecar.name, 'nlb-guard-healthcheck')
    t.equal(sidecar.image, 'ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0', "the sidecar's own image (the Dockerfile's sidecar target)")
    t.same(sidecar.args, ['--port', '15060', '--mode', 'tcp', '--interval-ms', '1000'], "the binary's own flags")
    t.same(sidecar.env, [{ name: 'GOMAXPROCS', value: '1' }, { name: 'GOGC', value: '50' }, { name: 'GOMEMLIMIT', value: '6MiB' }])
    t.same(sidecar.resources, { requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '20m', memory: '32Mi' } }, 'as the apiserver stores them')
    t.equal(sidecar.restartPolicy, 'Always', 'a native sidecar on Kubernetes ≥ 1.29')
    t.same(sidecar.ports, [{ name: 'hc-15060', containerPort: 15060, protocol: 'TCP' }], 'on the resolved named targetPort')
    t.equal(injected.object.metadata.annotations['nlb-guard.io/healthcheck-ports'], '15060')
    t.match(injected.stderr, /Warning: added native sidecar .*for Service voip\/sip \(IP targets: the NLB health-checks this pod's own UDP port over TCP\)/, 'the warning says why')
    t.notMatch(injected.stderr, /violate PodSecurity/)
    t.pass('the restricted Pod Security Standard (enforced on the namespace) accepted the pod with the sidecar')
    const other = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'voip', '-f', '-'], { input: pod('web-0', 'web') })
    t.same(JSON.parse(other.stdout).spec.initContainers, undefined, 'a pod no Service selects is untouched')

    // injection: auto: behind instance targets with Local the NLB asks kube-proxy, never the pod.
    await udpService('dns', 'dns', 53, {}, { externalTrafficPolicy: 'Local' })
    // The informer sees each new Service through its watch: poll until the Pod's warning names it.
    const refused = (name: string, app: string) =>
      eventually(`the reason for ${name} in the dry-run`, async () => {
        const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'voip', '-f', '-'], { input: pod(name, app) })
        return /no health-check sidecar/.test(r.stderr) ? { object: JSON.parse(r.stdout), stderr: r.stderr } : undefined
      })
    const instance = await refused('dns-0', 'dns')
    t.same(instance.object.spec.initContainers, undefined, 'behind instance targets with Local: no sidecar')
    t.equal(instance.object.metadata.annotations?.['nlb-guard.io/healthcheck-ports'], undefined)
    t.match(instance.stderr, /Warning: Pod voip\/dns-0: no health-check sidecar for Service voip\/dns: instance targets with externalTrafficPolicy: Local: the NLB health-checks kube-proxy's health-check node port over HTTP/, 'and the Pod is told why')

    // IP targets checked over HTTP: the tcp-mode sidecar would accept and say nothing, so none, and why.
    await udpService('rtp', 'rtp', 10000, {
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'HTTP',
    })
    const http = await refused('rtp-0', 'rtp')
    t.same(http.object.spec.initContainers, undefined, 'an HTTP health check: no tcp-mode sidecar')
    t.match(
      http.stderr,
      /Warning: Pod voip\/rtp-0: no health-check sidecar for Service voip\/rtp: the NLB health-checks over HTTP \(service\.beta\.kubernetes\.io\/aws-load-balancer-healthcheck-protocol\), and the sidecar \(sidecar\.mode: tcp\) only accepts connections/,
      'the Pod is told why, and what to set',
    )
  })

  t.test("the webhook's own Deployment runs in a restricted namespace", async (t) => {
    const deployment = manifests.find((m) => m.kind === 'Deployment')
    t.ok(deployment)
    await kubectl(['create', 'namespace', 'restricted'])
    await kubectl(['label', 'namespace', 'restricted', 'pod-security.kubernetes.io/enforce=restricted'])
    const r = await kubectl(['apply', '--dry-run=server', '-n', 'restricted', '-f', '-'], {
      input: JSON.stringify({ ...deployment, metadata: { ...(deployment?.metadata ?? {}), namespace: 'restricted' } }),
      allowFail: true,
    })
    t.equal(r.code, 0, r.stderr)
    t.notMatch(r.stderr, /violate PodSecurity/)
  })

  t.test('RBAC: the ServiceAccount can do what nlb-guard needs, and no more', async (t) => {
    const as = '--as=system:serviceaccount:nlb-guard-system:nlb-guard'
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', as, ...args], { allowFail: true })).stdout.trim()
    t.equal(await can('list', 'services', '--all-namespaces'), 'yes')
    t.equal(await can('watch', 'services', '--all-namespaces'), 'yes')
    t.equal(await can('get', 'mutatingwebhookconfigurations/nlb-guard'), 'yes')
    t.equal(await can('patch', 'validatingwebhookconfigurations/nlb-guard'), 'yes')
    t.equal(await can('patch', 'mutatingwebhookconfigurations/other-webhook'), 'no', 'not other webhook configurations')
    t.equal(await can('get', 'secrets/nlb-guard-tls', '-n', 'nlb-guard-system'), 'yes')
    t.equal(await can('get', 'secrets', '-n', 'default'), 'no', 'no secrets outside its namespace')
    t.equal(await can('update', 'services', '-n', 'e2e'), 'no', 'it never writes Services')
    t.equal(await can('create', 'pods', '-n', 'e2e'), 'no')
  })

  t.test('v1beta1: a webhook configuration that offers only v1beta1', async (t) => {
    await kubectl(['create', 'namespace', 'beta'])
    const [mutating] = pointAt(manifests, guard, (w) => ({
      ...w,
      name: 'beta.nlb-guard.io',
      admissionReviewVersions: ['v1beta1'],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'beta' } },
    })).filter((m) => m.kind === 'MutatingWebhookConfiguration')
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ ...mutating, metadata: { name: 'nlb-guard-v1beta1' }, webhooks: mutating?.webhooks?.slice(0, 1) }) })
    // Excluded from the main configurations so only the v1beta1 one answers there.
    await kubectl(['label', 'namespace', 'beta', 'nlb-guard.io/ignore=true'])
    const r = await eventually('the v1beta1 webhook answers', async () => {
      const attempt = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'beta', '-f', '-'], { input: service('beta') })
      return JSON.parse(attempt.stdout).metadata.annotations?.[TYPE] === 'nlb' ? attempt : undefined
    })
    t.match(r.stderr, /Warning: added annotation/)
    t.ok(guard.admissions().some((a) => a['namespace'] === 'beta' && a['reviewVersion'] === 'admission.k8s.io/v1beta1'), 'the review came in v1beta1')
  })

  t.test('S1 on an old cluster: the mutating webhook denies first, with our message', async (t) => {
    // A second server that believes the cluster is 1.19.16 stands in for an old cluster.
    const old = await startNlbGuard(['--kube-version', '1.19.16'])
    t.teardown(() => old.stop())
    await kubectl(['apply', '-f', '-'], { input: toYaml(pointAt(manifests, old)) })
    const r = await eventually('the old-cluster server answers', async () => {
      const attempt = await kubectl(['apply', ...ns, '-f', '-'], { input: service('echo', { ports: [[12345, 'TCP'], [12345, 'UDP']] }), allowFail: true })
      return attempt.code !== 0 && /Kubernetes 1\.19\.16/.test(attempt.stderr) ? attempt : undefined
    })
    t.match(r.stderr, /admission webhook "services\.nlb-guard\.io" denied the request: Service e2e\/echo is a LoadBalancer with more than one protocol \(TCP and UDP/)
    t.match(r.stderr, /"echo-tcp" with the TCP ports and "echo-udp" with the UDP ports/)
    t.notMatch(r.stderr, /may not contain more than 1 protocol|cannot create an external load balancer with mix protocols/, "not the apiserver's own message")
    const denials = old.admissions().filter((a) => a['name'] === 'echo' && a['decision'] === 'denied')
    t.ok(denials.length > 0 && denials.every((a) => a['webhook'] === 'mutate'), 'denied by the mutating webhook')
    t.notOk(old.admissions().some((a) => a['name'] === 'echo' && a['webhook'] === 'validate'), 'validation never saw it')
    await kubectl(['apply', '-f', '-'], { input: toYaml(pointAt(manifests, guard)) })
  })

  t.test("the apiserver's view of nlb-guard's latency", async (t) => {
    const metrics = (await kubectl(['get', '--raw', '/metrics'])).stdout
    const bucket = (le: string) =>
      metrics
        .split('\n')
        .filter((l) => l.startsWith('apiserver_admission_webhook_admission_duration_seconds_bucket{') && /name="(services|pods)\.nlb-guard\.io"/.test(l) && l.includes(`le="${le}"`))
        .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
    const fast = bucket('0.005')
    const all = bucket('+Inf')
    t.ok(all > 0, `${all} webhook calls observed by the apiserver`)
    t.comment(`apiserver_admission_webhook_admission_duration_seconds for nlb-guard: ${fast}/${all} calls (${((100 * fast) / all).toFixed(1)}%) in the ≤ 5 ms bucket`)
  })
})
