// The chart's own renderings for old clusters, on the real old kube-apiservers 1.19.16 and 1.25.16:
// `helm template --kube-version` of each version (and of the oldest of its legacy range), with the
// defaults and with the values that change the shape there, applied by that release's own kubectl
// with `kubectl apply --dry-run=server` (1.25: strict about unknown fields); then `helm install`,
// `upgrade` and `uninstall` against each. The legacy overlays are the chart rendered for 1.16.0 and
// 1.21.0 (test/manifests/legacy.test.ts, test/helm/manifests.test.ts), so
// test/e2e/legacy-*.test.ts run those renderings for real; this file covers the rest of the chart.
import { join } from 'node:path'
import t from 'tap'
import { waitFor } from '../fixtures/cli.js'
import { CHART, helmTools, run, template, type K8sObject } from '../fixtures/helm.js'
import { startControlPlane, type KubectlResult } from './harness.js'
import { eraKubectl } from './legacy.js'

t.setTimeout(30 * 60_000)

const NAMESPACE = 'nlb-guard-system'
const list = (items: readonly object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items })
const warnings = (result: KubectlResult) => result.stderr.split('\n').filter((line) => /^Warning/i.test(line))

/** Values that change what is rendered on an old cluster, beside the defaults. */
const VALUES: Record<string, string[]> = {
  defaults: [],
  'files mode, a PriorityClass of the user, PDB minAvailable 2, spread with 1.25+ fields, selectors and extras': [
    '--set', 'certificates.mode=files', '--set', 'certificates.files.secretName=mine', '--set', `certificates.files.caBundle=${Buffer.from('not checked by the apiserver').toString('base64')}`,
    '--set', 'priorityClassName=platform-critical',
    '--set', 'podDisruptionBudget.enabled=true', '--set', 'podDisruptionBudget.minAvailable=2',
    '--set', 'networkPolicy.enabled=true', '--set-json', 'networkPolicy.apiserverPorts=[443,6443,8443]',
    '--set-json', 'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule","matchLabelKeys":["pod-template-hash"],"nodeTaintsPolicy":"Honor","nodeAffinityPolicy":"Honor"}]',
    '--set-json', 'tolerations=[{"key":"CriticalAddonsOnly","operator":"Exists"}]',
    '--set-json', 'nodeSelector={"kubernetes.io/os":"linux"}',
    '--set-json', 'imagePullSecrets=[{"name":"registry"}]',
    '--set-json', 'serviceAccount.annotations={"eks.amazonaws.com/role-arn":"arn:aws:iam::123456789012:role/nlb-guard"}',
    '--set-json', 'podAnnotations={"example.com/owner":"platform"}', '--set-json', 'podLabels={"team":"platform"}',
    '--set-json', 'webhook.namespaceSelector.matchExpressions=[{"key":"team","operator":"In","values":["a","b"]}]',
    '--set', 'webhook.timeoutSeconds=7',
    '--set-json', 'extraVolumes=[{"name":"client-ca","configMap":{"name":"client-ca"}}]',
    '--set-json', 'extraVolumeMounts=[{"name":"client-ca","mountPath":"/etc/nlb-guard-client-ca","readOnly":true}]',
  ],
  'no PDB, no NetworkPolicy, no priorityClassName, affinity given': [
    '--set', 'podDisruptionBudget.enabled=false', '--set', 'networkPolicy.enabled=false', '--set', 'priorityClassName=',
    '--set-json', 'affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64","arm64"]}]}]}}}',
  ],
  // Its objects are checked without cert-manager's (no CRDs here): the webhook configurations' annotation, no Secret RBAC.
  'cert-manager mode': ['--set', 'certificates.mode=cert-manager'],
}

for (const [version, legacyOldest] of [['1.19.16', '1.16.0'], ['1.25.16', '1.21.0']] as const) {
  t.test(`the chart on a real kube-apiserver ${version}`, async (t) => {
    const { helms } = await helmTools()
    const cp = await startControlPlane({ version, startTimeoutMs: 180_000 })
    t.teardown(() => cp.stop())
    const kubectl = eraKubectl(cp)
    // kubectl 1.25 validates on the server, strict about unknown and duplicate fields; 1.19's
    // validates against the server's OpenAPI before sending, which refuses unknown fields too.
    const validate = cp.version.minor >= 25 ? ['--validate=strict'] : []

    await t.test('helm template for this version and for the oldest of its legacy range, in every variant: accepted, no warning', async (t) => {
      // A dry-run of namespaced objects needs their namespace to exist for real.
      await kubectl(['create', 'namespace', NAMESPACE])
      for (const kubeVersion of [version, legacyOldest]) {
        for (const [variant, values] of Object.entries(VALUES)) {
          const objects = (await template(['--kube-version', kubeVersion, ...values])).filter((o) => !o.apiVersion.startsWith('cert-manager.io/'))
          const result = await kubectl(['apply', '--dry-run=server', ...validate, '-f', '-'], { input: list(objects), allowFail: true })
          const at = `--kube-version ${kubeVersion}, ${variant}`
          t.equal(result.code, 0, `${at}: ${result.stderr}`)
          t.equal((result.stdout.match(/ created \(server dry run\)/g) ?? []).length, objects.length, `${at}: every object (${objects.length})`)
          t.same(warnings(result), [], `${at}: no warning`)
        }
      }
      // The same check refuses the 1.28 shape here, so it can fail: fields this version does not know.
      const newer = await template(['--kube-version', '1.28.0'])
      const refused = await kubectl(['apply', '--dry-run=server', ...validate, '-f', '-'], { input: list(newer), allowFail: true })
      t.not(refused.code, 0, '--kube-version 1.28.0 is refused')
      t.match(refused.stderr, /unknown field "?(matchConditions|unhealthyPodEvictionPolicy|matchLabelKeys|nodeTaintsPolicy)/, `for a field of 1.28: ${refused.stderr}`)
      await kubectl(['delete', 'namespace', NAMESPACE, '--wait=false'])
    })

    for (const { name, bin } of helms) {
      await t.test(`${name}: helm install, upgrade, uninstall`, async (t) => {
        const namespace = `nlb-guard-${name}`
        const helmEnv = { KUBECONFIG: cp.kubeconfig, HELM_CACHE_HOME: join(cp.dir, `${name}-cache`), HELM_CONFIG_HOME: join(cp.dir, `${name}-config`), HELM_DATA_HOME: join(cp.dir, `${name}-data`) }
        const helm = (args: string[]) => run(bin, args, { env: helmEnv })
        const get = async <T>(args: string[]): Promise<T> => JSON.parse((await kubectl(['get', '-o', 'json', ...args])).stdout) as T

        const install = await helm(['install', 'nlb-guard', CHART, '--namespace', namespace, '--create-namespace'])
        t.equal(install.code, 0, `install: ${install.stderr}`)
        t.match(install.stdout, /STATUS: deployed/)
        t.same(warnings(install), [], 'no deprecation warning from the apiserver')

        // Rendered for the apiserver's own version, read by helm from /version.
        const manifest = (await helm(['get', 'manifest', 'nlb-guard', '--namespace', namespace])).stdout
        t.match(manifest, cp.version.minor >= 21 ? /apiVersion: policy\/v1\nkind: PodDisruptionBudget/ : /apiVersion: policy\/v1beta1\nkind: PodDisruptionBudget/, 'the PodDisruptionBudget API this version serves')
        const mutating = await get<K8sObject & { webhooks: Array<Record<string, unknown> & { namespaceSelector: { matchExpressions: Array<{ key: string }> } }> }>(['mutatingwebhookconfiguration', 'nlb-guard'])
        t.same(mutating.webhooks.map((w) => [w['name'], w['failurePolicy'], 'matchConditions' in w]), [['services.nlb-guard.io', 'Ignore', false], ['pods.nlb-guard.io', 'Ignore', false]], 'the legacy webhooks: no matchConditions, Service webhook Ignore')
        const byName = mutating.webhooks.every((w) => w.namespaceSelector.matchExpressions.some((e) => e.key === 'kubernetes.io/metadata.name'))
        t.equal(byName, cp.version.minor >= 21, 'namespaces excluded by kubernetes.io/metadata.name only where the apiserver sets it (1.21+)')
        const pdb = await get<K8sObject>(['poddisruptionbudget', 'nlb-guard', '-n', namespace])
        t.equal(pdb.metadata.name, 'nlb-guard', 'a PodDisruptionBudget')
        const pod = (await get<K8sObject & { spec: { template: { spec: Record<string, unknown> } } }>(['deployment', 'nlb-guard', '-n', namespace])).spec.template.spec
        t.equal(pod['priorityClassName'], 'system-cluster-critical')
        t.match(pod['securityContext'], { seccompProfile: { type: 'RuntimeDefault' } }, 'the seccomp field (1.19+)')
        t.equal((pod['topologySpreadConstraints'] as unknown[] | undefined)?.length, 2, 'the spread (1.19+)')
        const policies = await kubectl(['api-resources', '--api-group=admissionregistration.k8s.io', '-o', 'name'])
        t.notMatch(policies.stdout, /validatingadmissionpolicies/, 'this apiserver serves no ValidatingAdmissionPolicy (and the chart renders none)')

        const upgrade = await helm(['upgrade', 'nlb-guard', CHART, '--namespace', namespace, '--reuse-values', '--set', 'replicaCount=3', '--set', 'webhook.timeoutSeconds.services=9'])
        t.equal(upgrade.code, 0, `upgrade: ${upgrade.stderr}`)
        t.match(upgrade.stdout, /REVISION: 2/)
        t.equal((await get<K8sObject & { spec: { replicas: number } }>(['deployment', 'nlb-guard', '-n', namespace])).spec.replicas, 3)
        t.equal((await get<K8sObject & { webhooks: Array<{ timeoutSeconds: number }> }>(['mutatingwebhookconfiguration', 'nlb-guard'])).webhooks[0]?.timeoutSeconds, 9)

        const uninstall = await helm(['uninstall', 'nlb-guard', '--namespace', namespace])
        t.equal(uninstall.code, 0, `uninstall: ${uninstall.stderr}`)
        for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration', 'clusterrole', 'clusterrolebinding']) {
          const left = await kubectl(['get', kind, '-l', 'app.kubernetes.io/instance=nlb-guard', '-o', 'name'])
          t.equal(left.stdout.trim(), '', `no ${kind} left`)
        }
        await waitFor('the namespaced objects gone', async () => (await kubectl(['get', 'deployment,service,configmap,poddisruptionbudget,role,rolebinding,serviceaccount', '-n', namespace, '-l', 'app.kubernetes.io/instance=nlb-guard', '-o', 'name'])).stdout.trim() === '', 30_000)
        t.equal((await helm(['list', '--namespace', namespace, '-q'])).stdout.trim(), '', 'no release left')
      })
    }
  })
}
