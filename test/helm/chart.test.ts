// charts/nlb-guard with `helm lint` and `helm template`: every value reaches the object it names,
// the schema refuses what nlb-guard would refuse, and each Kubernetes version gets the shape its
// apiserver accepts (test/helm/apply.test.ts has real apiservers accept it).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { Config, parseConfig } from '../../webhook/config.js'
import { CHART, helmTools, only, parseObjects, run, template, type K8sObject } from '../fixtures/helm.js'
import { schemaKeys } from '../fixtures/config-keys.js'

t.setTimeout(60 * 60_000)

interface Webhook {
  name: string
  failurePolicy: string
  timeoutSeconds: number
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string }
  namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values?: string[] }> }
  matchConditions?: Array<{ name: string; expression: string }>
}
type WebhookConfiguration = K8sObject & { webhooks: Webhook[] }
interface Container {
  name: string
  image: string
  args: string[]
  resources: unknown
  securityContext: Record<string, unknown>
  volumeMounts: Array<{ name: string; mountPath: string }>
  startupProbe?: unknown
}
interface PodSpec {
  priorityClassName?: string
  nodeSelector?: Record<string, string>
  tolerations?: unknown[]
  affinity?: Record<string, unknown>
  securityContext: Record<string, unknown>
  topologySpreadConstraints?: Array<Record<string, unknown> & { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }>
  containers: Container[]
  volumes: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }>
}
type Deployment = K8sObject & { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: PodSpec } } }

const webhooks = (objects: K8sObject[]) => [
  ...only<WebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks.map((w) => ({ ...w, configuration: 'mutating' })),
  ...only<WebhookConfiguration>(objects, 'ValidatingWebhookConfiguration').webhooks.map((w) => ({ ...w, configuration: 'validating' })),
]
const podSpec = (objects: K8sObject[]) => only<Deployment>(objects, 'Deployment').spec.template.spec
const mainContainer = (objects: K8sObject[]) => podSpec(objects).containers[0] as Container
const configOf = (objects: K8sObject[]) => parseYaml((only(objects, 'ConfigMap', 'nlb-guard-config') as K8sObject & { data: Record<string, string> }).data['config.yaml'] ?? '') as Record<string, unknown>

const { helms } = await helmTools()

t.test('helm lint passes in every certificate mode, with every helm', async (t) => {
  const modes = [
    ['--set', 'certificates.mode=bootstrap'],
    ['--set', 'certificates.mode=cert-manager', '--set', 'serviceMonitor.enabled=true', '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true'],
    ['--set', 'certificates.mode=files', '--set', 'certificates.files.secretName=mine', '--set', 'certificates.files.caBundle=Q0E='],
  ]
  for (const { name, bin } of helms) {
    for (const values of modes) {
      const lint = await run(bin, ['lint', '--strict', CHART, ...values])
      t.equal(lint.code, 0, `${name} lint ${values.join(' ')}: ${lint.stdout}${lint.stderr}`)
      t.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
    }
  }
})

t.test('the schema refuses bad values, naming the key', async (t) => {
  const table: Array<[string[], RegExp]> = [
    [['--set', 'replicaCount=0'], /replicaCount/],
    [['--set', 'webhook.failurePolicy.services=Sometimes'], /failurePolicy/],
    [['--set', 'webhook.timeoutSeconds.pods=31'], /timeoutSeconds/],
    [['--set', 'certificates.mode=vault'], /mode/],
    [['--set', 'config.logLevel=loud'], /logLevel/],
    [['--set', 'config.sidecar.injection=ip-targets'], /injection/],
    [['--set', 'config.certSyncSeconds=600'], /certSyncSeconds/],
    [['--set', 'tolerance=1'], /tolerance/],
    [['--set', 'config.portt=1'], /portt/],
  ]
  for (const { name, bin } of helms) {
    for (const [args, message] of table) {
      const result = await run(bin, ['template', 'nlb-guard', CHART, ...args])
      t.not(result.code, 0, `${name} ${args.join(' ')} is refused`)
      t.match(result.stderr, message, `${name}: the error names it: ${result.stderr.trim().split('\n').at(-1)}`)
    }
  }
  const files = await run(helms[0]?.bin ?? 'helm', ['template', 'nlb-guard', CHART, '--set', 'certificates.mode=files'])
  t.not(files.code, 0)
  t.match(files.stderr, /certificates\.files\.(secretName|caBundle) .*is required/, 'files mode without its Secret says what is missing')
})

interface Shape {
  version: string
  matchConditions: boolean
  pdb: string
  unhealthyPodEvictionPolicy: boolean
  spread: boolean
  spreadNewFields: boolean
  namespaceByName: boolean
  seccompField: boolean
  startupProbe: boolean
}
const SHAPES: Shape[] = [
  { version: '1.16.15', matchConditions: false, pdb: 'policy/v1beta1', unhealthyPodEvictionPolicy: false, spread: false, spreadNewFields: false, namespaceByName: false, seccompField: false, startupProbe: false },
  { version: '1.19.16', matchConditions: false, pdb: 'policy/v1beta1', unhealthyPodEvictionPolicy: false, spread: true, spreadNewFields: false, namespaceByName: false, seccompField: true, startupProbe: true },
  { version: '1.21.0', matchConditions: false, pdb: 'policy/v1', unhealthyPodEvictionPolicy: false, spread: true, spreadNewFields: false, namespaceByName: true, seccompField: true, startupProbe: true },
  { version: '1.25.16', matchConditions: false, pdb: 'policy/v1', unhealthyPodEvictionPolicy: false, spread: true, spreadNewFields: false, namespaceByName: true, seccompField: true, startupProbe: true },
  { version: '1.27.16', matchConditions: false, pdb: 'policy/v1', unhealthyPodEvictionPolicy: false, spread: true, spreadNewFields: false, namespaceByName: true, seccompField: true, startupProbe: true },
  { version: '1.28.0', matchConditions: true, pdb: 'policy/v1', unhealthyPodEvictionPolicy: true, spread: true, spreadNewFields: true, namespaceByName: true, seccompField: true, startupProbe: true },
  // A vendor's version string: the pre-release suffix must not push it below 1.28.
  { version: '1.29.3-eks-adc7111', matchConditions: true, pdb: 'policy/v1', unhealthyPodEvictionPolicy: true, spread: true, spreadNewFields: true, namespaceByName: true, seccompField: true, startupProbe: true },
  { version: '1.37.2', matchConditions: true, pdb: 'policy/v1', unhealthyPodEvictionPolicy: true, spread: true, spreadNewFields: true, namespaceByName: true, seccompField: true, startupProbe: true },
]

t.test('each Kubernetes version gets the shape its apiserver accepts (.Capabilities.KubeVersion)', async (t) => {
  for (const { name, bin } of helms) {
    for (const shape of SHAPES) {
      const objects = await template(['--kube-version', shape.version], bin)
      const at = `${name} --kube-version ${shape.version}`
      const pdb = only(objects, 'PodDisruptionBudget') as K8sObject & { spec: Record<string, unknown> }
      const pod = podSpec(objects)
      const spread = pod.topologySpreadConstraints ?? []
      const actual: Shape = {
        version: shape.version,
        matchConditions: webhooks(objects).some((w) => w.matchConditions !== undefined),
        pdb: pdb.apiVersion,
        unhealthyPodEvictionPolicy: 'unhealthyPodEvictionPolicy' in pdb.spec,
        spread: spread.length > 0,
        spreadNewFields: spread.some((c) => 'matchLabelKeys' in c || 'nodeTaintsPolicy' in c),
        namespaceByName: webhooks(objects).every((w) => w.namespaceSelector.matchExpressions.some((e) => e.key === 'kubernetes.io/metadata.name')),
        seccompField: 'seccompProfile' in pod.securityContext && 'seccompProfile' in mainContainer(objects).securityContext,
        startupProbe: mainContainer(objects).startupProbe !== undefined,
      }
      t.same(actual, shape, at)
      for (const w of webhooks(objects)) {
        // Every namespace the webhooks skip by name before 1.21 they skip by label; nlb-guard's own
        // namespace carries the label when the chart creates it.
        t.same(w.namespaceSelector.matchExpressions.find((e) => e.key === 'nlb-guard.io/ignore'), { key: 'nlb-guard.io/ignore', operator: 'NotIn', values: ['true'] }, `${at} ${w.name}: the opt-out label`)
      }
      t.equal(only(objects, 'MutatingWebhookConfiguration').apiVersion, 'admissionregistration.k8s.io/v1', `${at}: webhooks v1`)
      // Without matchConditions every Service write is sent: Fail would block ClusterIP Services in an outage.
      t.same(webhooks(objects).map((w) => w.failurePolicy), shape.matchConditions ? ['Fail', 'Ignore', 'Fail'] : ['Ignore', 'Ignore', 'Ignore'], `${at}: failurePolicy`)
      if (!shape.spread) t.ok(pod.affinity?.['podAntiAffinity'], `${at}: a per-node anti-affinity instead of the spread`)
      if (!shape.seccompField) t.equal(only<Deployment>(objects, 'Deployment').spec.template.metadata.annotations['seccomp.security.alpha.kubernetes.io/pod'], 'runtime/default', `${at}: seccomp by annotation`)
      // system-cluster-critical outside kube-system is refused before 1.17: a class of the release's own there.
      t.equal(pod.priorityClassName, shape.version.startsWith('1.16.') ? 'nlb-guard-critical' : 'system-cluster-critical', `${at}: priorityClassName`)
      t.equal(objects.filter((o) => o.kind === 'PriorityClass').length, shape.version.startsWith('1.16.') ? 1 : 0, `${at}: a PriorityClass of its own on 1.16 only`)
      // kube-score reads the seccomp field, not the annotation: its finding is left on purpose where there is no field.
      const ignored = only<Deployment>(objects, 'Deployment').metadata.annotations?.['kube-score/ignore']?.split(',') ?? []
      t.equal(ignored.includes('container-seccomp-profile'), !shape.seccompField, `${at}: kube-score container-seccomp-profile ignored only without the field`)
    }
  }
})

t.test('Kubernetes 1.16: priorityClassName system-*-critical outside kube-system becomes a PriorityClass of the release', async (t) => {
  for (const { name, bin } of helms) {
    const objects = await template(['--kube-version', '1.16.15'], bin)
    const priorityClass = only(objects, 'PriorityClass') as K8sObject & { value: number; globalDefault: boolean }
    t.same({ name: priorityClass.metadata.name, value: priorityClass.value, globalDefault: priorityClass.globalDefault }, { name: 'nlb-guard-critical', value: 1_000_000_000, globalDefault: false }, `${name}: the highest value a user-defined class may have`)
    t.equal(podSpec(objects).priorityClassName, priorityClass.metadata.name, `${name}: the pods use it`)
    const named = parseObjects((await run(bin, ['template', 'guard', CHART, '--namespace', 'x', '--kube-version', '1.16.15', '--set', 'priorityClassName=system-node-critical'])).stdout)
    t.equal(podSpec(named).priorityClassName, 'guard-nlb-guard-critical', `${name}: named after the release; any system-* class`)
    const inKubeSystem = parseObjects((await run(bin, ['template', 'nlb-guard', CHART, '--namespace', 'kube-system', '--kube-version', '1.16.15'])).stdout)
    t.equal(podSpec(inKubeSystem).priorityClassName, 'system-cluster-critical', `${name}: kube-system may use system-cluster-critical on 1.16`)
    t.notOk(inKubeSystem.some((o) => o.kind === 'PriorityClass'), `${name}: no class of its own there`)
    const own = await template(['--kube-version', '1.16.15', '--set', 'priorityClassName=platform-critical'], bin)
    t.equal(podSpec(own).priorityClassName, 'platform-critical', `${name}: a class of the user's is used as given`)
    t.notOk(own.some((o) => o.kind === 'PriorityClass'), `${name}: and none is rendered`)
    const none = await template(['--kube-version', '1.16.15', '--set', 'priorityClassName='], bin)
    t.equal(podSpec(none).priorityClassName, undefined, `${name}: "" renders none`)
    t.notOk(none.some((o) => o.kind === 'PriorityClass'), `${name}: and no class`)
  }
})

t.test('the caBundle-only ValidatingAdmissionPolicy: bootstrap mode on 1.30+, for the release\'s ServiceAccount', async (t) => {
  t.notOk((await template(['--kube-version', '1.29.5'])).some((o) => o.kind === 'ValidatingAdmissionPolicy'), 'not on 1.29 (beta, off by default)')
  t.notOk((await template(['--set', 'certificates.mode=cert-manager'])).some((o) => o.kind === 'ValidatingAdmissionPolicy'), 'not in cert-manager mode (nlb-guard writes no caBundle)')
  const result = await run(helms[0]?.bin ?? 'helm', ['template', 'guard', CHART, '--namespace', 'x', '--kube-version', '1.30.0'])
  const objects = parseObjects(result.stdout)
  const policy = only(objects, 'ValidatingAdmissionPolicy') as K8sObject & { spec: { matchConstraints: { resourceRules: Array<{ resourceNames: string[] }> }; matchConditions: Array<{ expression: string }> } }
  t.same(policy.spec.matchConstraints.resourceRules[0]?.resourceNames, ['guard-nlb-guard'])
  t.match(policy.spec.matchConditions[0]?.expression, "'system:serviceaccount:x:guard-nlb-guard'")
  t.match(only(objects, 'ValidatingAdmissionPolicyBinding'), { spec: { policyName: policy.metadata.name, validationActions: ['Deny'] } })
})

t.test('the values reach the objects they name', async (t) => {
  const objects = await template([
    '--set', 'replicaCount=3',
    '--set', 'image.repository=registry.example/team/nlb-guard',
    '--set', 'image.tag=9.9.9',
    '--set', 'image.pullPolicy=Always',
    '--set-json', 'nodeSelector={"node-role.kubernetes.io/system":"true"}',
    '--set-json', 'tolerations=[{"key":"CriticalAddonsOnly","operator":"Exists"}]',
    '--set-json', 'affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["arm64"]}]}]}}}',
    '--set-json', 'topologySpreadConstraints=[{"maxSkew":2,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]',
    '--set', 'priorityClassName=platform-critical',
    '--set-json', 'podAnnotations={"example.com/owner":"platform"}',
    '--set-json', 'podLabels={"team":"platform"}',
    '--set-json', 'resources={"requests":{"cpu":"100m","memory":"256Mi"},"limits":{"memory":"512Mi"}}',
    '--set', 'podDisruptionBudget.minAvailable=2',
    '--set', 'webhook.failurePolicy.pods=Fail',
    '--set', 'webhook.failurePolicy.services=Ignore',
    '--set', 'webhook.timeoutSeconds=7',
    '--set-json', 'webhook.namespaceSelector.matchExpressions=[{"key":"team","operator":"In","values":["a","b"]}]',
    '--set', 'config.logLevel=debug',
    '--set', 'config.sidecar.mode=http',
  ])
  const deployment = only<Deployment>(objects, 'Deployment')
  const pod = deployment.spec.template.spec
  const main = mainContainer(objects)
  t.equal(deployment.spec.replicas, 3)
  t.equal(main.image, 'registry.example/team/nlb-guard:9.9.9')
  t.match(main, { imagePullPolicy: 'Always' })
  t.same(pod.nodeSelector, { 'node-role.kubernetes.io/system': 'true' })
  t.same(pod.tolerations, [{ key: 'CriticalAddonsOnly', operator: 'Exists' }])
  t.match(pod.affinity, { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } })
  t.same(pod.topologySpreadConstraints, [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: deployment.spec.selector.matchLabels } }], 'a given spread gets the pods as its labelSelector')
  t.equal(pod.priorityClassName, 'platform-critical')
  t.equal(deployment.spec.template.metadata.annotations['example.com/owner'], 'platform')
  t.equal(deployment.spec.template.metadata.labels['team'], 'platform')
  // Helm merges maps: keys not given keep the chart's values (set one to null to drop it).
  t.same(main.resources, { requests: { cpu: '100m', memory: '256Mi', 'ephemeral-storage': '16Mi' }, limits: { cpu: '1', memory: '512Mi', 'ephemeral-storage': '64Mi' } })
  t.match(only(objects, 'PodDisruptionBudget'), { spec: { minAvailable: 2 } })
  t.same(webhooks(objects).map((w) => [w.configuration, w.name, w.failurePolicy, w.timeoutSeconds]), [
    ['mutating', 'services.nlb-guard.io', 'Ignore', 7],
    ['mutating', 'pods.nlb-guard.io', 'Fail', 7],
    ['validating', 'services.nlb-guard.io', 'Fail', 7],
  ])
  for (const w of webhooks(objects)) {
    t.same(w.namespaceSelector.matchExpressions.at(-1), { key: 'team', operator: 'In', values: ['a', 'b'] }, `${w.name}: the added selector`)
    t.equal(w.namespaceSelector.matchExpressions.length, 3, `${w.name}: added to the chart's two`)
  }
  const config = configOf(objects)
  t.equal(config['logLevel'], 'debug')
  t.match(config['sidecar'], { mode: 'http', image: 'ghcr.io/nlb-guard/nlb-guard-healthcheck:9.9.9' }, 'the sidecar image follows image.tag')

  const own = configOf(await template(['--set', 'image.tag=9.9.9', '--set', 'sidecar.image.repository=registry.example/nlb-guard-healthcheck']))
  t.match(own['sidecar'], { image: 'registry.example/nlb-guard-healthcheck:9.9.9' }, 'a sidecar image of its own keeps the main tag')
  const pinned = configOf(await template(['--set', 'image.tag=9.9.9', '--set', 'sidecar.image.tag=1.0.0']))
  t.match(pinned['sidecar'], { image: 'ghcr.io/nlb-guard/nlb-guard-healthcheck:1.0.0' })

  const rolled = only<Deployment>(await template(['--set', 'config.logLevel=warn']), 'Deployment').spec.template.metadata.annotations['checksum/config']
  t.not(rolled, deployment.spec.template.metadata.annotations['checksum/config'], 'a config change changes the pod template, so the pods roll')
})

t.test("the ConfigMap is nlb-guard's config: every key, defaults except what the release decides", async (t) => {
  const objects = await template(['--namespace', 'platform', '--kube-version', '1.30.0'])
  const config = configOf(objects)
  t.same(parseConfig(config), parseConfig({
    certMode: 'bootstrap',
    certSecret: 'nlb-guard-tls',
    namespace: 'platform',
    serviceName: 'nlb-guard',
    webhookConfigurationName: 'nlb-guard',
    excludedNamespaces: ['kube-system', 'platform'],
    sidecar: { image: 'ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0' },
  }), 'nlb-guard loads it; everything else is the default')
  const values = await readFile(join(CHART, 'values.yaml'), 'utf8')
  const configBlock = values.slice(values.indexOf('\nconfig:'))
  for (const key of schemaKeys(Config)) {
    const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config)
    const leaf = key.split('.').at(-1) ?? key
    // Optional keys without a default are shown in values.yaml commented out, with an example.
    t.ok(value !== undefined || new RegExp(`^\\s*#\\s+${leaf}:`, 'm').test(configBlock), `${key} is in the config or documented in values.yaml`)
  }
  // The Service, the webhooks' clientConfig and the config agree on names.
  const service = only(objects, 'Service')
  for (const w of webhooks(objects)) t.match(w.clientConfig.service, { name: service.metadata.name, namespace: 'platform', port: 443 })
  t.equal(config['serviceName'], service.metadata.name)
  t.equal(config['webhookConfigurationName'], only(objects, 'MutatingWebhookConfiguration').metadata.name)
  // The release's own namespace is skipped by name and nlb-guard's own list alike.
  for (const w of webhooks(objects)) t.same(w.namespaceSelector.matchExpressions[0], { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'platform'] })
})

t.test('another release name names every object, and cluster-scoped grants follow', async (t) => {
  const result = await run(helms[0]?.bin ?? 'helm', ['template', 'guard', CHART, '--namespace', 'x'])
  t.equal(result.code, 0, result.stderr)
  const objects = parseObjects(result.stdout)
  const names = new Set(objects.map((o) => o.metadata.name))
  t.ok(names.has('guard-nlb-guard') && names.has('guard-nlb-guard-webhook-ca') && names.has('guard-nlb-guard-tls'), [...names].join(' '))
  const grant = only(objects, 'ClusterRole', 'guard-nlb-guard-webhook-ca') as K8sObject & { rules: Array<{ resourceNames: string[] }> }
  t.same(grant.rules[0]?.resourceNames, ['guard-nlb-guard'], 'the bootstrap grant names the configurations this release installs')
  const data = (only(objects, 'ConfigMap', 'guard-nlb-guard-config') as K8sObject & { data: Record<string, string> }).data['config.yaml'] ?? ''
  t.match(parseYaml(data), { webhookConfigurationName: 'guard-nlb-guard', certSecret: 'guard-nlb-guard-tls', serviceName: 'guard-nlb-guard', namespace: 'x' })
})

t.test('certificate modes', async (t) => {
  t.test('bootstrap: grants for its Secret and caBundle, nothing mounted', async (t) => {
    // Every mode: the mixed-protocol probe's dry-run create, in the release namespace only.
    t.match(only(await template(), 'Role', 'nlb-guard-mixed-protocol-probe'), { rules: [{ apiGroups: [''], resources: ['services'], verbs: ['create'] }] })
    const objects = await template()
    t.ok(objects.some((o) => o.kind === 'Role' && o.metadata.name === 'nlb-guard-tls'))
    t.ok(objects.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'nlb-guard-webhook-ca'))
    t.notOk(mainContainer(objects).volumeMounts.some((m) => m.mountPath === '/tls'))
    for (const w of webhooks(objects)) t.notOk(w.clientConfig.caBundle, `${w.name}: caBundle injected, not shipped`)
  })
  t.test('cert-manager: Certificates, cainjector, the Secret mounted, no bootstrap grants', async (t) => {
    const objects = await template(['--set', 'certificates.mode=cert-manager'])
    t.notOk(objects.some((o) => o.metadata.name === 'nlb-guard-tls' || o.metadata.name === 'nlb-guard-webhook-ca'), 'no grant on Secrets or webhook configurations')
    const serving = only(objects, 'Certificate', 'nlb-guard-serving') as K8sObject & { spec: { secretName: string; dnsNames: string[] } }
    t.same(serving.spec.dnsNames, ['nlb-guard.nlb-guard-system.svc', 'nlb-guard.nlb-guard-system.svc.cluster.local'])
    const tls = podSpec(objects).volumes.find((v) => v.name === 'tls')
    t.equal(tls?.secret?.secretName, serving.spec.secretName)
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      t.equal(only(objects, kind).metadata.annotations?.['cert-manager.io/inject-ca-from'], 'nlb-guard-system/nlb-guard-serving')
    }
    t.match(configOf(objects), { certMode: 'files', tls: { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' } })
  })
  t.test('files: your Secret mounted, your CA in every webhook', async (t) => {
    const objects = await template(['--set', 'certificates.mode=files', '--set', 'certificates.files.secretName=my-tls', '--set', 'certificates.files.caBundle=Q0E='])
    t.equal(podSpec(objects).volumes.find((v) => v.name === 'tls')?.secret?.secretName, 'my-tls')
    for (const w of webhooks(objects)) t.equal(w.clientConfig.caBundle, 'Q0E=', w.name)
    t.notOk(objects.some((o) => o.metadata.name === 'nlb-guard-tls' || o.metadata.name === 'nlb-guard-webhook-ca' || o.kind === 'Certificate'))
  })
})

t.test('monitoring objects render when enabled, and only then', async (t) => {
  const off = await template()
  t.notOk(off.some((o) => ['ServiceMonitor', 'PrometheusRule'].includes(o.kind) || o.metadata.name === 'nlb-guard-dashboard'))
  const on = await template(['--set', 'serviceMonitor.enabled=true', '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true', '--set-json', 'serviceMonitor.labels={"release":"kube-prometheus-stack"}'])
  const monitor = only(on, 'ServiceMonitor') as K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> } }
  const service = only(on, 'Service')
  t.equal(monitor.metadata.labels?.['release'], 'kube-prometheus-stack')
  t.ok(Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => service.metadata.labels?.[k] === v), 'it selects the Service')
  t.same(monitor.spec.endpoints.map((e) => e.port), ['metrics'])
  const dashboard = only(on, 'ConfigMap', 'nlb-guard-dashboard') as K8sObject & { data: Record<string, string> }
  t.equal(dashboard.metadata.labels?.['grafana_dashboard'], '1')
  t.same(JSON.parse(dashboard.data['nlb-guard.json'] ?? ''), JSON.parse(await readFile(join(CHART, 'files/dashboard.json'), 'utf8')), 'the importable JSON, unchanged')
  const rule = only(on, 'PrometheusRule') as K8sObject & { spec: { groups: Array<{ rules: Array<{ alert: string }> }> } }
  t.same(rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort(), [
    'NlbGuardAdmissionErrors', 'NlbGuardAdmissionSlow', 'NlbGuardCaBundleDrift', 'NlbGuardCertificateExpiringSoon', 'NlbGuardNotReady', 'NlbGuardServiceCacheNotSynced',
  ])
})
