// The installs for clusters older than 1.28 (manifests/overlays/legacy/*): each is the chart rendered
// for the oldest Kubernetes version of its range (charts/render-manifests.sh; test/helm/manifests.test.ts
// checks the files byte for byte), self-contained for the kustomize of kubectl 1.14-1.20, and free of
// every field and API version the oldest version of the range lacks. The real old apiservers accept
// it: test/e2e/legacy-*.test.ts, which therefore cover the chart's rendering too.
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { template } from '../fixtures/helm.js'
import { LEGACY_OVERLAYS } from '../fixtures/legacy-overlays.js'

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } }

const execFileAsync = promisify(execFile)

async function render(folder: string): Promise<Obj[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', folder], { maxBuffer: 16 << 20 })
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as Obj)
}

const byName = (objects: readonly Obj[]) => Object.fromEntries(objects.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]))

/** The minor versions that serve each kind in each API version the legacy installs use (Kubernetes' deprecation guide). */
const SERVED: Record<string, [number, number]> = {
  'v1/Namespace': [0, Infinity],
  'v1/ServiceAccount': [0, Infinity],
  'v1/Service': [0, Infinity],
  'v1/ConfigMap': [0, Infinity],
  'apps/v1/Deployment': [9, Infinity],
  'rbac.authorization.k8s.io/v1/Role': [8, Infinity],
  'rbac.authorization.k8s.io/v1/RoleBinding': [8, Infinity],
  'rbac.authorization.k8s.io/v1/ClusterRole': [8, Infinity],
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': [8, Infinity],
  'networking.k8s.io/v1/NetworkPolicy': [7, Infinity],
  'scheduling.k8s.io/v1/PriorityClass': [14, Infinity],
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': [16, Infinity],
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': [16, Infinity],
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': [30, Infinity],
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': [30, Infinity],
  'policy/v1beta1/PodDisruptionBudget': [5, 24],
  'policy/v1/PodDisruptionBudget': [21, Infinity],
}

/** What kustomize v2.0.3 (inside kubectl 1.14-1.20) reads in a kustomization. */
const KUSTOMIZE_2_0_3_FIELDS = new Set([
  'apiVersion', 'kind', 'namePrefix', 'nameSuffix', 'namespace', 'commonLabels', 'commonAnnotations', 'resources', 'bases',
  'patchesStrategicMerge', 'patchesJson6902', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'vars', 'images', 'crds',
])

for (const overlay of LEGACY_OVERLAYS) {
  const { oldest, newest } = overlay

  t.test(`legacy/${overlay.folder}`, async (t) => {
    const objects = await render(overlay.path)
    const ofKind = (kind: string) => objects.filter((o) => o.kind === kind)
    const [deployment] = ofKind('Deployment') as Array<Obj & { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: Record<string, unknown> & { topologySpreadConstraints?: unknown[]; affinity?: Record<string, unknown> } } } }>
    const pod = deployment?.spec.template.spec

    t.test(`it is the chart rendered for Kubernetes 1.${oldest}, the oldest it serves`, async (t) => {
      const chart = await template(['--kube-version', `1.${oldest}.0`, '--set', 'namespace.create=true'])
      t.same(byName(objects), byName(chart as Obj[]))
      t.equal(objects.length, chart.length, 'no object added or dropped')
    })

    t.test('its kustomization is self-contained and uses only fields kustomize v2.0.3 knows', async (t) => {
      const kustomization = parseYaml(await readFile(join(overlay.path, 'kustomization.yaml'), 'utf8')) as Record<string, unknown>
      for (const key of Object.keys(kustomization)) t.ok(KUSTOMIZE_2_0_3_FIELDS.has(key), key)
      t.same(kustomization['resources'], ['nlb-guard.yaml'], 'files in its own folder only')
      t.same((await readdir(overlay.path)).sort(), ['kustomization.yaml', 'nlb-guard.yaml'], 'nothing else in the folder')
    })

    t.test(`every API version is served from 1.${oldest} to 1.${newest}`, async (t) => {
      for (const o of objects) {
        const [from, to] = SERVED[`${o.apiVersion}/${o.kind}`] ?? [Infinity, -Infinity]
        t.ok(from <= oldest && newest <= to, `${o.kind} ${o.metadata.name}: ${o.apiVersion}`)
      }
      t.equal(ofKind('PodDisruptionBudget').length, 1, 'a PodDisruptionBudget')
    })

    t.test(`no field 1.${oldest} lacks`, async (t) => {
      const text = JSON.stringify(objects)
      for (const field of ['matchConditions', 'unhealthyPodEvictionPolicy', 'matchLabelKeys', 'nodeTaintsPolicy']) t.notOk(text.includes(`"${field}"`), field)
      if (oldest < 19) {
        t.notOk(text.includes('"seccompProfile"'), 'seccompProfile: 1.16-1.18 refuse the field')
        t.equal(deployment?.spec.template.metadata.annotations?.['seccomp.security.alpha.kubernetes.io/pod'], 'runtime/default', 'seccomp by annotation (1.19 and 1.20 copy it into the field)')
        t.equal(pod?.topologySpreadConstraints, undefined, 'no topologySpreadConstraints (GA in 1.19) ...')
        t.ok(pod?.affinity?.['podAntiAffinity'], '... a preferred per-node anti-affinity instead')
      } else {
        t.match(pod?.['securityContext'], { seccompProfile: { type: 'RuntimeDefault' } })
        t.equal(pod?.topologySpreadConstraints?.length, 2, 'the spread')
      }
      if (oldest < 17) {
        t.equal(pod?.['priorityClassName'], 'nlb-guard-critical', "1.16 admits system-cluster-critical only in kube-system: a class of nlb-guard's own")
        t.match(ofKind('PriorityClass'), [{ metadata: { name: 'nlb-guard-critical' }, value: 1_000_000_000 }])
      } else {
        t.equal(pod?.['priorityClassName'], 'system-cluster-critical')
        t.equal(ofKind('PriorityClass').length, 0)
      }
    })

    t.test('while nlb-guard is down, nothing is blocked', async (t) => {
      const webhooks = [...ofKind('MutatingWebhookConfiguration'), ...ofKind('ValidatingWebhookConfiguration')].flatMap((c) => c['webhooks'] as Array<Record<string, unknown>>)
      t.equal(webhooks.length, 3)
      for (const webhook of webhooks) t.equal(webhook['failurePolicy'], 'Ignore', `${String(webhook['name'])}: without matchConditions Fail would block ClusterIP Services too`)
    })

    t.test("nlb-guard's own namespace is excluded by a label it carries; by name only where the apiserver sets kubernetes.io/metadata.name", async (t) => {
      const namespace = ofKind('Namespace')[0]
      t.equal(namespace?.metadata.labels?.['nlb-guard.io/ignore'], 'true')
      for (const configuration of [...ofKind('MutatingWebhookConfiguration'), ...ofKind('ValidatingWebhookConfiguration')]) {
        for (const webhook of configuration['webhooks'] as Array<{ name: string; namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> } }>) {
          const expressions = webhook.namespaceSelector.matchExpressions
          t.same(expressions.find((e) => e.key === 'nlb-guard.io/ignore'), { key: 'nlb-guard.io/ignore', operator: 'NotIn', values: ['true'] }, webhook.name)
          const byMetadataName = expressions.find((e) => e.key === 'kubernetes.io/metadata.name')
          if (oldest < 21) t.equal(byMetadataName, undefined, `${webhook.name}: set from 1.21 only`)
          else t.same(byMetadataName, { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'nlb-guard-system'] }, webhook.name)
        }
      }
    })

    t.test('the ConfigMap is mounted, and the pods roll when it changes', async (t) => {
      const [configMap] = ofKind('ConfigMap') as Array<Obj & { data: Record<string, string> }>
      t.equal(configMap?.metadata.name, 'nlb-guard-config')
      t.equal(configMap?.metadata.namespace, 'nlb-guard-system')
      t.match(parseYaml(configMap?.data['config.yaml'] ?? ''), { certMode: 'bootstrap', namespace: 'nlb-guard-system', excludedNamespaces: ['kube-system', 'nlb-guard-system'] })
      t.ok((pod?.['volumes'] as Array<{ configMap?: { name: string } }>).some((v) => v.configMap?.name === 'nlb-guard-config'), 'the Deployment mounts it')
      t.match(deployment?.spec.template.metadata.annotations?.['checksum/config'], /^[0-9a-f]{64}$/, 'a checksum of config.yaml on the pod template')
    })
  })
}
