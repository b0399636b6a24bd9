// Renders the install for clusters older than 1.28 (manifests/overlays/legacy/*) from the default
// overlay, so there is one source of the manifests: `npm run --silent manifests:legacy` rewrites
// the generated files, and test/manifests/legacy.test.ts fails while they differ from this output.
//
// Why generated files and not a kustomize overlay on ../../base: the kustomize inside kubectl
// 1.14-1.20 (v2.0.3) reads only files below the kustomization (no ../../base directory), and the
// one inside kubectl 1.21 (v4.0.5) has no `labels:`, which the base uses. Each legacy
// kustomization therefore uses only fields kustomize v2.0.3 knows, over a self-contained file.
//
// Why two: no PodDisruptionBudget API version is served by both 1.20 (policy/v1beta1 only) and
// 1.25 (policy/v1 only), and 1.16-1.18 refuse the seccompProfile field that 1.19+ read.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments, stringify } from 'yaml'

export interface LegacyVariant {
  /** The folder under manifests/overlays/legacy, named by the Kubernetes versions it serves. */
  readonly folder: string
  readonly oldest: string
  readonly newest: string
  /** policy/v1 is served from 1.21, policy/v1beta1 until 1.24. */
  readonly pdbApiVersion: 'policy/v1' | 'policy/v1beta1'
  /** seccompProfile is a field from 1.19; 1.16-1.18 know only the annotation. */
  readonly seccompAsAnnotation: boolean
  /** 1.16 admits system-*-critical pods only in kube-system; 1.17 lifted that. */
  readonly ownPriorityClass: boolean
}

export const LEGACY_VARIANTS: readonly LegacyVariant[] = [
  { folder: '1.16-1.20', oldest: '1.16', newest: '1.20', pdbApiVersion: 'policy/v1beta1', seccompAsAnnotation: true, ownPriorityClass: true },
  { folder: '1.21-1.27', oldest: '1.21', newest: '1.27', pdbApiVersion: 'policy/v1', seccompAsAnnotation: false, ownPriorityClass: false },
]

/** The generated file of each variant; its kustomization.yaml (hand-written) lists it. */
export const GENERATED_FILE = 'nlb-guard.yaml'
/** The default overlay's config.yaml (rendered from the chart): kustomize v2.0.3 reads no file outside the kustomization's folder. */
export const CONFIG_FILE = 'config.yaml'
export const PRIORITY_CLASS = 'nlb-guard-critical'

type Obj = Record<string, unknown>

const root = fileURLToPath(new URL('..', import.meta.url))

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function child(parent: Obj | undefined, key: string): Obj | undefined {
  const value = parent?.[key]
  return isObj(value) ? value : undefined
}

function children(parent: Obj | undefined, key: string): Obj[] {
  const value = parent?.[key]
  return Array.isArray(value) ? value.filter(isObj) : []
}

/** The default overlay as kubectl renders it. */
export function renderDefault(kubectl = 'kubectl'): Obj[] {
  const out = execFileSync(kubectl, ['kustomize', join(root, 'manifests/overlays/default')], { encoding: 'utf8', maxBuffer: 16 << 20 })
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as unknown)
    .filter(isObj)
}

/**
 * The default overlay's objects made acceptable to every version of `variant`: pure, so the test
 * can check each change on its own.
 */
export function legacyObjects(defaults: readonly Obj[], variant: LegacyVariant): Obj[] {
  const objects: Obj[] = []
  for (const original of defaults) {
    const object = structuredClone(original)
    switch (object['kind']) {
      // The legacy kustomization generates it again, so its hash follows config.yaml.
      case 'ConfigMap':
        continue
      // GA in 1.30 (beta from 1.28, off by default): no legacy version serves it. Without it the
      // ServiceAccount's patch on its two webhook configurations is limited by RBAC's resourceNames
      // only, as before the policy existed.
      case 'ValidatingAdmissionPolicy':
      case 'ValidatingAdmissionPolicyBinding':
        continue
      case 'Deployment':
        legacyDeployment(object, variant)
        break
      case 'PodDisruptionBudget':
        object['apiVersion'] = variant.pdbApiVersion
        // Alpha in 1.26, beta in 1.27: an unknown field before, refused by 1.25's strict decoding.
        delete child(object, 'spec')?.['unhealthyPodEvictionPolicy']
        break
      case 'MutatingWebhookConfiguration':
      case 'ValidatingWebhookConfiguration':
        for (const webhook of children(object, 'webhooks')) legacyWebhook(webhook)
        break
    }
    objects.push(object)
  }
  if (variant.ownPriorityClass) {
    objects.push({
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: PRIORITY_CLASS, labels: { 'app.kubernetes.io/name': 'nlb-guard', 'app.kubernetes.io/part-of': 'nlb-guard' } },
      // The highest a cluster lets a PriorityClass of its own have; system-cluster-critical is above.
      value: 1_000_000_000,
      globalDefault: false,
      description: 'nlb-guard, an admission webhook: scheduled before, and evicted after, ordinary workloads.',
    })
  }
  return objects
}

function legacyDeployment(deployment: Obj, variant: LegacyVariant): void {
  const template = child(child(deployment, 'spec'), 'template')
  const pod = child(template, 'spec')
  if (template === undefined || pod === undefined) throw new Error('the Deployment has no pod template')
  for (const constraint of children(pod, 'topologySpreadConstraints')) {
    // Both alpha in 1.25 and beta in 1.26/1.27: unknown before, and kubectl's client-side
    // validation of those versions refuses the whole Deployment.
    delete constraint['matchLabelKeys']
    delete constraint['nodeTaintsPolicy']
  }
  if (variant.seccompAsAnnotation) {
    delete child(pod, 'securityContext')?.['seccompProfile']
    for (const container of children(pod, 'containers')) delete child(container, 'securityContext')?.['seccompProfile']
    const metadata = child(template, 'metadata') ?? {}
    // 1.19 and 1.20 copy it into the field; 1.16-1.18 read only this.
    metadata['annotations'] = { ...child(metadata, 'annotations'), 'seccomp.security.alpha.kubernetes.io/pod': 'runtime/default' }
    template['metadata'] = metadata
    // kube-score's container-seccomp-profile reads the field, or PodSecurityPolicy's
    // defaultProfileName annotation, but not this pod annotation (test/lint/manifests.sh).
    const deploymentMeta = child(deployment, 'metadata') ?? {}
    const annotations = child(deploymentMeta, 'annotations') ?? {}
    const ignored = typeof annotations['kube-score/ignore'] === 'string' ? annotations['kube-score/ignore'].split(',') : []
    deploymentMeta['annotations'] = { ...annotations, 'kube-score/ignore': [...ignored, 'container-seccomp-profile'].join(',') }
    deployment['metadata'] = deploymentMeta
  }
  if (variant.ownPriorityClass) pod['priorityClassName'] = PRIORITY_CLASS
  for (const volume of children(pod, 'volumes')) {
    const configMap = child(volume, 'configMap')
    if (typeof configMap?.['name'] === 'string' && configMap['name'].startsWith('nlb-guard-config-')) configMap['name'] = 'nlb-guard-config'
  }
}

function legacyWebhook(webhook: Obj): void {
  // CEL matchConditions: alpha in 1.27, on by default from 1.28. Without them every Service (and
  // Pod) in a selected namespace is sent; nlb-guard answers the ones its rules do not look at
  // with an unconditional allow.
  delete webhook['matchConditions']
  const sendsServices = children(webhook, 'rules').some((rule) => Array.isArray(rule['resources']) && rule['resources'].includes('services'))
  // Fail would block every Service write, ClusterIP ones too, while nlb-guard is unreachable: a
  // cluster-wide outage of Service changes for a policy about LoadBalancers. Ignore instead lets a
  // LoadBalancer Service through unchecked during an outage; the old apiserver itself still
  // refuses a mixed-protocol one (with its own message), but a UDP one gets a Classic ELB.
  if (sendsServices) webhook['failurePolicy'] = 'Ignore'
}

function header(variant: LegacyVariant): string {
  return [
    `# GENERATED by \`npm run --silent manifests:legacy\` (manifests/legacy.ts) from manifests/overlays/default:`,
    `# do not edit; change the chart (charts/render-manifests.sh) or manifests/legacy.ts and run it again.`,
    `#`,
    `# nlb-guard for Kubernetes ${variant.oldest}-${variant.newest}; what differs from the default overlay and why is in`,
    `# manifests/legacy.ts and manifests/README.md. In short: no matchConditions, so the Service webhooks`,
    `# have failurePolicy Ignore (a ClusterIP Service must never wait on nlb-guard); PodDisruptionBudget`,
    `# ${variant.pdbApiVersion}; no topologySpreadConstraints matchLabelKeys/nodeTaintsPolicy` +
      (variant.seccompAsAnnotation ? `; seccomp by annotation; PriorityClass ${PRIORITY_CLASS}.` : '.'),
    ...(Number(variant.oldest.split('.')[1]) < 21
      ? [
          `# Before 1.21 namespaces carry no kubernetes.io/metadata.name label, so kube-system is excluded only once`,
          `# labelled: kubectl label namespace kube-system nlb-guard.io/ignore=true`,
        ]
      : []),
    '',
  ].join('\n')
}

export function renderLegacy(defaults: readonly Obj[], variant: LegacyVariant): string {
  return header(variant) + legacyObjects(defaults, variant).map((o) => `---\n${stringify(o)}`).join('')
}

/** The default overlay's config.yaml, as the chart rendered it into its ConfigMap. */
export function baseConfig(defaults: readonly Obj[] = renderDefault()): string {
  const configMap = defaults.find((o) => o['kind'] === 'ConfigMap' && typeof child(o, 'metadata')?.['name'] === 'string' && String(child(o, 'metadata')?.['name']).startsWith('nlb-guard-config'))
  const text = child(configMap, 'data')?.['config.yaml']
  if (typeof text !== 'string') throw new Error('the default overlay has no nlb-guard-config ConfigMap with config.yaml')
  return text
}

export function legacyFolder(variant: LegacyVariant): string {
  return join(root, 'manifests/overlays/legacy', variant.folder)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const defaults = renderDefault()
  for (const variant of LEGACY_VARIANTS) {
    writeFileSync(join(legacyFolder(variant), GENERATED_FILE), renderLegacy(defaults, variant))
    writeFileSync(join(legacyFolder(variant), CONFIG_FILE), baseConfig(defaults))
  }
}
