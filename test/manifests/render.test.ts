// What `kubectl apply -k manifests/overlays/<name>` installs (rendered from charts/nlb-guard by
// charts/render-manifests.sh), checked against what nlb-guard expects of it: the config file, the
// ports, the probes, the webhook policies, least privilege.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { parseConfig } from '../../webhook/config.js'
import { ROOT } from '../fixtures/cli.js'

interface Meta {
  name: string
  namespace?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface K8sObject {
  apiVersion: string
  kind: string
  metadata: Meta
  [field: string]: unknown
}
interface Probe {
  httpGet: { path: string; port: string | number }
  periodSeconds?: number
}
interface Container {
  name: string
  image: string
  args?: string[]
  ports: Array<{ name: string; containerPort: number; protocol: string }>
  startupProbe?: Probe
  readinessProbe?: Probe
  livenessProbe?: Probe
  resources: { requests: Record<string, string>; limits: Record<string, string> }
  securityContext: Record<string, unknown>
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>
}
interface PodSpec {
  serviceAccountName: string
  priorityClassName?: string
  terminationGracePeriodSeconds: number
  securityContext: Record<string, unknown>
  topologySpreadConstraints: Array<{ topologyKey: string; whenUnsatisfiable: string; labelSelector: { matchLabels: Record<string, string> } }>
  containers: Container[]
  volumes: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string }; emptyDir?: object }>
}
interface Deployment extends K8sObject {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }
}
interface Webhook {
  name: string
  failurePolicy: string
  reinvocationPolicy?: string
  sideEffects: string
  timeoutSeconds: number
  matchPolicy: string
  admissionReviewVersions: string[]
  clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string }
  rules: Array<{ apiGroups: string[]; apiVersions: string[]; resources: string[]; operations: string[]; scope: string }>
  namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> }
  matchConditions?: Array<{ name: string; expression: string }>
}
interface WebhookConfiguration extends K8sObject {
  webhooks: Webhook[]
}
interface PolicyRule {
  apiGroups: string[]
  resources: string[]
  resourceNames?: string[]
  verbs: string[]
}

const execFileAsync = promisify(execFile)
const NAMESPACE = 'nlb-guard-system'
const OVERLAYS = ['default', 'cert-manager'] as const

async function render(overlay: string): Promise<K8sObject[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', `${ROOT}manifests/overlays/${overlay}`], { maxBuffer: 16 << 20 })
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as K8sObject)
}

function only<T extends K8sObject>(objects: K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`)
  return found[0] as T
}

function all<T extends K8sObject>(objects: K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[]
}

function container(deployment: Deployment): Container {
  const [first, ...rest] = deployment.spec.template.spec.containers
  if (first === undefined || rest.length > 0) throw new Error('expected one container')
  return first
}

function isSubset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value)
}

const rendered = new Map(await Promise.all(OVERLAYS.map(async (overlay) => [overlay, await render(overlay)] as const)))
const get = (overlay: (typeof OVERLAYS)[number]): K8sObject[] => rendered.get(overlay) ?? []

for (const overlay of OVERLAYS) {
  t.test(`overlay ${overlay}`, async (t) => {
    const objects = get(overlay)
    const deployment = only<Deployment>(objects, 'Deployment', 'nlb-guard')
    const pod = deployment.spec.template.spec
    const podLabels = deployment.spec.template.metadata.labels
    const main = container(deployment)
    const args = main.args ?? []
    const configFile = args.find((a) => a.startsWith('--config='))?.slice('--config='.length) ?? ''
    const configMount = main.volumeMounts.find((m) => configFile.startsWith(`${m.mountPath}/`))
    const configMap = only<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap', pod.volumes.find((v) => v.name === configMount?.name)?.configMap?.name)
    const configText = configMap.data[configFile.split('/').at(-1) ?? ''] ?? ''
    const config = parseConfig(parseYaml(configText))
    const portNamed = (name: string) => main.ports.find((p) => p.name === name)?.containerPort

    t.test('everything namespaced lives in nlb-guard-system, which nlb-guard ignores and runs restricted', async (t) => {
      const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'])
      for (const o of objects.filter((o) => !clusterScoped.has(o.kind))) t.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name}`)
      t.match(only(objects, 'Namespace', NAMESPACE).metadata.labels, { 'nlb-guard.io/ignore': 'true', 'pod-security.kubernetes.io/enforce': 'restricted' })
    })

    t.test('serve reads the mounted config.yaml, which holds every setting', async (t) => {
      t.same(args, ['serve', '--config=/etc/nlb-guard/config.yaml'], 'no flag beside the file: one place for every setting')
      t.ok(configMount, `${configFile} is on a mounted volume`)
      t.match(config, { namespace: NAMESPACE, serviceName: 'nlb-guard', webhookConfigurationName: 'nlb-guard', excludedNamespaces: ['kube-system', NAMESPACE] })
      t.equal(config.sidecar.image.split(':').at(-1), main.image.split(':').at(-1), 'the sidecar image has the Deployment image\'s tag (one place: image.tag of the chart)')
    })

    t.test('ports, probes and Service agree with the config', async (t) => {
      t.equal(portNamed('https'), config.port, 'container port https is config.port')
      t.equal(portNamed('metrics'), config.metricsPort, 'container port metrics is config.metricsPort')
      // The kubelet has no client certificate: probes go to the plain-HTTP port.
      t.match(main.readinessProbe, { httpGet: { path: '/readyz', port: 'metrics' } })
      t.match(main.livenessProbe, { httpGet: { path: '/healthz', port: 'metrics' } })
      t.match(main.startupProbe, { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 1 })
      const service = only<K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string }> } }>(objects, 'Service', 'nlb-guard')
      t.ok(isSubset(service.spec.selector, podLabels), 'the Service selects the pods')
      t.match(service.spec.ports, [
        { name: 'https', port: 443, targetPort: 'https' },
        { name: 'metrics', port: 9090, targetPort: 'metrics' },
      ])
      const policy = only<K8sObject & { spec: { podSelector: { matchLabels: Record<string, string> }; ingress: Array<{ ports: Array<{ port: number; protocol: string }> }> } }>(objects, 'NetworkPolicy', 'nlb-guard')
      t.ok(isSubset(policy.spec.podSelector.matchLabels, podLabels), 'the NetworkPolicy selects the pods')
      t.same(policy.spec.ingress.flatMap((rule) => rule.ports).map((p) => `${p.protocol}/${p.port}`).sort(), [`TCP/${config.port}`, `TCP/${config.metricsPort}`].sort())
      // Egress: the apiserver's ports only (TCP 443 and 6443); no DNS, no UDP, nothing else.
      const egress = (policy.spec as unknown as { egress: Array<{ to?: unknown; ports: Array<{ port: number; protocol: string }> }> }).egress
      t.same(egress.flatMap((rule) => rule.ports).map((p) => `${p.protocol}/${p.port}`).sort(), ['TCP/443', 'TCP/6443'])
    })

    t.test('two replicas that survive a drain and shut down cleanly', async (t) => {
      t.equal(deployment.spec.replicas, 2)
      const pdb = only<K8sObject & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>(objects, 'PodDisruptionBudget', 'nlb-guard')
      t.equal(pdb.spec.minAvailable, 1)
      t.ok(isSubset(pdb.spec.selector.matchLabels, podLabels), 'the PodDisruptionBudget selects the pods')
      const spread = Object.fromEntries(pod.topologySpreadConstraints.map((c) => [c.topologyKey, c]))
      t.equal(spread['kubernetes.io/hostname']?.whenUnsatisfiable, 'DoNotSchedule', 'never two replicas on one node')
      t.equal(spread['topology.kubernetes.io/zone']?.whenUnsatisfiable, 'ScheduleAnyway', 'zones best effort')
      for (const c of pod.topologySpreadConstraints) t.ok(isSubset(c.labelSelector.matchLabels, podLabels), `${c.topologyKey} spread counts these pods`)
      const longestAdmission = Math.max(...all<WebhookConfiguration>(objects, 'MutatingWebhookConfiguration').concat(all(objects, 'ValidatingWebhookConfiguration')).flatMap((c) => c.webhooks.map((w) => w.timeoutSeconds)))
      t.ok(pod.terminationGracePeriodSeconds > config.shutdownDelaySeconds + longestAdmission, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} outlasts the shutdown delay and an admission`)
      t.equal(pod.priorityClassName, 'system-cluster-critical')
    })

    t.test('the restricted Pod Security Standard, read-only root, writable /tmp', async (t) => {
      t.match(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } })
      t.match(main.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } })
      const tmp = main.volumeMounts.find((m) => m.mountPath === '/tmp')
      t.ok(tmp && pod.volumes.find((v) => v.name === tmp.name)?.emptyDir, '/tmp is an emptyDir')
      t.ok(main.resources.requests['cpu'] && main.resources.requests['memory'] && main.resources.limits['memory'], 'requests and a memory limit')
      t.match(main.image, /^ghcr\.io\/nlb-guard\/nlb-guard:\d+\.\d+\.\d+$/)
    })

    t.test('webhooks: where they send, what, and what happens when nlb-guard is down', async (t) => {
      const service = only(objects, 'Service', 'nlb-guard')
      const mutating = only<WebhookConfiguration>(objects, 'MutatingWebhookConfiguration', 'nlb-guard')
      const validating = only<WebhookConfiguration>(objects, 'ValidatingWebhookConfiguration', 'nlb-guard')
      const table = [
        ...mutating.webhooks.map((w) => ({ w, configuration: 'mutating' })),
        ...validating.webhooks.map((w) => ({ w, configuration: 'validating' })),
      ].map(({ w, configuration }) => ({
        configuration,
        name: w.name,
        path: w.clientConfig.service.path,
        resources: w.rules.flatMap((r) => r.resources),
        operations: w.rules.flatMap((r) => r.operations),
        failurePolicy: w.failurePolicy,
        reinvocationPolicy: w.reinvocationPolicy,
      }))
      t.same(table, [
        { configuration: 'mutating', name: 'services.nlb-guard.io', path: '/mutate', resources: ['services'], operations: ['CREATE', 'UPDATE'], failurePolicy: 'Fail', reinvocationPolicy: 'IfNeeded' },
        { configuration: 'mutating', name: 'pods.nlb-guard.io', path: '/mutate', resources: ['pods'], operations: ['CREATE'], failurePolicy: 'Ignore', reinvocationPolicy: 'IfNeeded' },
        { configuration: 'validating', name: 'services.nlb-guard.io', path: '/validate', resources: ['services'], operations: ['CREATE', 'UPDATE'], failurePolicy: 'Fail', reinvocationPolicy: undefined },
      ])
      for (const w of [...mutating.webhooks, ...validating.webhooks]) {
        t.match(w, { sideEffects: 'None', matchPolicy: 'Equivalent', admissionReviewVersions: ['v1', 'v1beta1'] }, w.name)
        t.ok(w.timeoutSeconds <= 5, `${w.name}: timeoutSeconds ${w.timeoutSeconds}`)
        t.same(w.clientConfig.service, { name: service.metadata.name, namespace: service.metadata.namespace, path: w.clientConfig.service.path, port: 443 }, `${w.name} calls the Service on 443`)
        t.notOk(w.clientConfig.caBundle, `${w.name}: caBundle is injected, not shipped`)
        t.same(w.rules.map((r) => [r.apiGroups, r.apiVersions, r.scope]), [[[''], ['v1'], 'Namespaced']])
        const notIn = Object.fromEntries(w.namespaceSelector.matchExpressions.filter((e) => e.operator === 'NotIn').map((e) => [e.key, e.values]))
        t.same(notIn['kubernetes.io/metadata.name'], ['kube-system', NAMESPACE], `${w.name} skips kube-system and nlb-guard's namespace`)
        t.same(notIn['nlb-guard.io/ignore'], ['true'], `${w.name} skips namespaces labelled nlb-guard.io/ignore=true`)
        t.equal(w.namespaceSelector.matchExpressions.length, 2, 'and nothing else')
        for (const excluded of config.excludedNamespaces) t.ok(notIn['kubernetes.io/metadata.name']?.includes(excluded), `config.excludedNamespaces ${excluded} is never sent`)
        if (w.rules.some((r) => r.resources.includes('services'))) {
          t.same(w.matchConditions?.map((c) => c.name), ['load-balancer', 'not-ignored'], `${w.name}: only LoadBalancer Services without nlb-guard.io/ignore`)
        }
      }
    })

    t.test('least privilege', async (t) => {
      const rules = (kind: string) => all<K8sObject & { rules: PolicyRule[] }>(objects, kind).flatMap((r) => r.rules)
      const grants = [...rules('ClusterRole'), ...rules('Role')]
      for (const rule of grants) {
        t.notOk([...rule.apiGroups, ...rule.resources, ...rule.verbs].includes('*'), `no wildcard in ${JSON.stringify(rule)}`)
        t.notOk(rule.verbs.includes('delete') || rule.verbs.includes('deletecollection'), 'never deletes')
      }
      t.same(rules('ClusterRole').filter((r) => r.resources.includes('services')), [{ apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'] }], 'Services: list and watch, for the informer')
      t.notOk(rules('ClusterRole').some((r) => r.resources.includes('secrets')), 'no Secret cluster-wide')
      t.same(rules('ClusterRole').filter((r) => r.resources.includes('events')), [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }], 'Events: create and patch (its count), nothing more')
      t.same(rules('ClusterRole').filter((r) => r.resources.includes('replicasets')), [{ apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get'] }], "ReplicaSets: get, for a pod's Event to reach its Deployment")
      t.notOk(rules('ClusterRole').some((r) => r.resources.includes('jobs') || r.resources.includes('deployments')), 'no Jobs or Deployments')
      t.same(rules('ClusterRole').filter((r) => r.resources.includes('namespaces')), [{ apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] }], 'Namespaces: list and watch, for the warn-only label')
      // The mixed-protocol probe's dry-run create is authorized as a create; in every certificate mode.
      t.same(rules('Role').filter((r) => r.resources.includes('services')), [{ apiGroups: [''], resources: ['services'], verbs: ['create'] }], 'Services: create in its own namespace only, for the dry-run probe')
      const probeRole = all<K8sObject & { rules: PolicyRule[] }>(objects, 'Role').find((r) => r.rules.some((rule) => rule.resources.includes('services')))
      const probeBinding = all<K8sObject & { roleRef: { kind: string; name: string } }>(objects, 'RoleBinding').find((b) => b.roleRef.kind === 'Role' && b.roleRef.name === probeRole?.metadata.name)
      t.ok(probeBinding, 'and a RoleBinding grants it')
      for (const binding of [...all<K8sObject & { subjects: Array<{ kind: string; name: string; namespace: string }> }>(objects, 'ClusterRoleBinding'), ...all<K8sObject & { subjects: Array<{ kind: string; name: string; namespace: string }> }>(objects, 'RoleBinding')]) {
        t.same(binding.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: NAMESPACE }], `${binding.kind} ${binding.metadata.name} binds nlb-guard's ServiceAccount`)
      }
      const webhookConfigRules = rules('ClusterRole').filter((r) => r.apiGroups.includes('admissionregistration.k8s.io'))
      const secretRules = rules('Role').filter((r) => r.resources.includes('secrets'))
      if (overlay === 'default') {
        t.equal(config.certMode, 'bootstrap')
        const secret = config.certSecret
        t.equal(secret, 'nlb-guard-tls')
        t.same(webhookConfigRules, [{ apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], resourceNames: [config.webhookConfigurationName], verbs: ['get', 'patch'] }], 'only its own webhook configurations, get and patch')
        // create cannot be limited by name, so it is granted in nlb-guard's namespace only.
        t.same(secretRules, [
          { apiGroups: [''], resources: ['secrets'], resourceNames: [secret], verbs: ['get', 'update', 'patch'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        ], 'only its own Secret, plus create in its namespace')
      } else {
        t.same(webhookConfigRules, [], 'cainjector writes the caBundle: no access to webhook configurations')
        t.same(secretRules, [], 'cert-manager writes the Secret: no access to Secrets')
      }
    })

    if (overlay === 'cert-manager') {
      t.test('cert-manager: the mounted Secret is the serving Certificate, and its CA is injected', async (t) => {
        interface Certificate extends K8sObject {
          spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; issuerRef: { kind: string; name: string } }
        }
        interface Issuer extends K8sObject {
          spec: { selfSigned?: object; ca?: { secretName: string } }
        }
        t.equal(config.tls.certFile, '/tls/tls.crt')
        t.equal(config.tls.keyFile, '/tls/tls.key')
        t.equal(config.certMode, 'files')
        const mount = main.volumeMounts.find((m) => m.mountPath === '/tls')
        const secretName = pod.volumes.find((v) => v.name === mount?.name)?.secret?.secretName
        const serving = all<Certificate>(objects, 'Certificate').find((c) => c.spec.secretName === secretName)
        if (serving === undefined) throw new Error(`no Certificate writes ${secretName}`)
        t.ok(serving.spec.dnsNames?.includes(`nlb-guard.${NAMESPACE}.svc`), 'the name the apiserver dials')
        for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
          t.equal(only(objects, kind, 'nlb-guard').metadata.annotations?.['cert-manager.io/inject-ca-from'], `${serving.metadata.namespace}/${serving.metadata.name}`, `${kind} gets the serving Certificate's CA`)
        }
        // A CA between the two keeps the caBundle fixed when the serving certificate renews.
        const caIssuer = only<Issuer>(objects, 'Issuer', serving.spec.issuerRef.name)
        const ca = all<Certificate>(objects, 'Certificate').find((c) => c.spec.secretName === caIssuer.spec.ca?.secretName)
        t.equal(ca?.spec.isCA, true, 'the serving certificate is signed by a CA Certificate')
        t.ok(only<Issuer>(objects, 'Issuer', ca?.spec.issuerRef.name).spec.selfSigned, 'which is self-signed')
      })
    }
  })
}
