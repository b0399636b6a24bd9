// The install for clusters older than 1.28 (manifests/overlays/legacy/*): generated from the
// default overlay and kept in step with it, and free of every field and API version the oldest
// version of each range lacks. The real old apiservers accept it: test/e2e/legacy-*.test.ts.
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { CONFIG_FILE, GENERATED_FILE, LEGACY_VARIANTS, PRIORITY_CLASS, baseConfig, legacyFolder, renderDefault, renderLegacy } from '../../manifests/legacy.js'

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } }

const execFileAsync = promisify(execFile)

async function render(folder: string): Promise<Obj[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', folder], { maxBuffer: 16 << 20 })
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as Obj)
}

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

const defaults = renderDefault()

t.test('the generated files are what manifests/legacy.ts renders today (run `npm run --silent manifests:legacy`)', async (t) => {
  for (const variant of LEGACY_VARIANTS) {
    const folder = legacyFolder(variant)
    t.equal(await readFile(join(folder, GENERATED_FILE), 'utf8'), renderLegacy(defaults, variant), `${variant.folder}/${GENERATED_FILE}`)
    t.equal(await readFile(join(folder, CONFIG_FILE), 'utf8'), baseConfig(), `${variant.folder}/${CONFIG_FILE} is base/config.yaml`)
  }
})

for (const variant of LEGACY_VARIANTS) {
  const oldest = Number(variant.oldest.split('.')[1])
  const newest = Number(variant.newest.split('.')[1])

  t.test(`legacy/${variant.folder}`, async (t) => {
    const folder = legacyFolder(variant)
    const objects = await render(folder)
    const ofKind = (kind: string) => objects.filter((o) => o.kind === kind)
    const [deployment] = ofKind('Deployment') as Array<Obj & { spec: { template: { metadata: { annotations?: Record<string, string> }; spec: Record<string, unknown> & { topologySpreadConstraints: Array<Record<string, unknown>>; containers: Array<{ securityContext: Record<string, unknown> }>; volumes: Array<{ configMap?: { name: string } }> } } } }>
    const pod = deployment?.spec.template.spec

    t.test('its kustomization uses only fields kustomize v2.0.3 knows', async (t) => {
      const kustomization = parseYaml(await readFile(join(folder, 'kustomization.yaml'), 'utf8')) as Record<string, unknown>
      for (const key of Object.keys(kustomization)) t.ok(KUSTOMIZE_2_0_3_FIELDS.has(key), key)
      t.same(kustomization['resources'], [GENERATED_FILE], 'files in its own folder only')
    })

    t.test(`every API version is served from ${variant.oldest} to ${variant.newest}`, async (t) => {
      for (const o of objects) {
        const [from, to] = SERVED[`${o.apiVersion}/${o.kind}`] ?? [Infinity, -Infinity]
        t.ok(from <= oldest && newest <= to, `${o.kind} ${o.metadata.name}: ${o.apiVersion}`)
      }
      t.equal(ofKind('PodDisruptionBudget').length, 1, 'a PodDisruptionBudget')
    })

    t.test('no field those versions lack', async (t) => {
      const text = JSON.stringify(objects)
      for (const field of ['matchConditions', 'unhealthyPodEvictionPolicy', 'matchLabelKeys', 'nodeTaintsPolicy']) t.notOk(text.includes(`"${field}"`), field)
      if (variant.seccompAsAnnotation) {
        t.notOk(text.includes('"seccompProfile"'), 'seccompProfile: 1.16-1.18 refuse the field')
        t.equal(deployment?.spec.template.metadata.annotations?.['seccomp.security.alpha.kubernetes.io/pod'], 'runtime/default', 'seccomp by annotation')
        t.equal(pod?.['priorityClassName'], PRIORITY_CLASS, "1.16 admits system-cluster-critical only in kube-system: a class of nlb-guard's own")
        t.equal(ofKind('PriorityClass').length, 1)
      } else {
        t.match(pod?.['securityContext'], { seccompProfile: { type: 'RuntimeDefault' } })
        t.equal(pod?.['priorityClassName'], 'system-cluster-critical')
      }
      t.equal(pod?.topologySpreadConstraints.length, 2, 'the spread itself stays')
    })

    t.test('while nlb-guard is down, nothing is blocked', async (t) => {
      const webhooks = [...ofKind('MutatingWebhookConfiguration'), ...ofKind('ValidatingWebhookConfiguration')].flatMap((c) => c['webhooks'] as Array<Record<string, unknown>>)
      t.equal(webhooks.length, 3)
      for (const webhook of webhooks) t.equal(webhook['failurePolicy'], 'Ignore', `${String(webhook['name'])}: without matchConditions Fail would block ClusterIP Services too`)
    })

    t.test("nlb-guard's own namespace is excluded by a label it carries, on versions without kubernetes.io/metadata.name", async (t) => {
      const namespace = ofKind('Namespace')[0]
      t.equal(namespace?.metadata.labels?.['nlb-guard.io/ignore'], 'true')
      for (const configuration of [...ofKind('MutatingWebhookConfiguration'), ...ofKind('ValidatingWebhookConfiguration')]) {
        for (const webhook of configuration['webhooks'] as Array<{ namespaceSelector: { matchExpressions: Array<{ key: string; operator: string; values: string[] }> } }>) {
          t.match(webhook.namespaceSelector.matchExpressions, [{}, { key: 'nlb-guard.io/ignore', operator: 'NotIn', values: ['true'] }])
        }
      }
    })

    t.test('the ConfigMap is generated from config.yaml and mounted', async (t) => {
      const [configMap] = ofKind('ConfigMap') as Array<Obj & { data: Record<string, string> }>
      t.match(configMap?.metadata.name, /^nlb-guard-config-[a-z0-9]+$/, 'with a content hash')
      t.equal(configMap?.metadata.namespace, 'nlb-guard-system')
      t.equal(configMap?.data['config.yaml'], baseConfig())
      t.ok(pod?.volumes.some((v) => v.configMap?.name === configMap?.metadata.name), 'the Deployment mounts it by its hashed name')
      const defaultConfigMap = defaults.find((o) => o['kind'] === 'ConfigMap') as Obj | undefined
      // The default overlay (rendered from the chart) names it without a hash and rolls the pods by a
      // checksum annotation; here kustomize v2 generates it again with the hash of the same content.
      t.match(configMap?.metadata.name, new RegExp(`^${String((defaultConfigMap?.['metadata'] as { name?: string } | undefined)?.name)}-[a-z0-9]+$`), 'the default overlay\'s name with the content hash')
    })
  })
}
