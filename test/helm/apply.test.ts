// The chart on a real kube-apiserver (test/e2e/harness.ts): what `helm template` renders passes
// the apiserver's strict validation in every certificate mode; `helm install`, `upgrade` and
// `uninstall` work with every helm built (3 and 4); and a release's own ServiceAccount, RBAC and
// config.yaml run a working webhook — nlb-guard started from source as that ServiceAccount, with the
// release's webhook configurations pointed at it (no nodes here to run the Deployment).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { startControlPlane, type ControlPlane, type KubectlResult } from '../e2e/harness.js'
import { startNlbGuard } from '../e2e/nlb-guard.js'
import { waitFor } from '../fixtures/cli.js'
import { CHART, helmTools, run, template, type K8sObject } from '../fixtures/helm.js'

// The first run may build kube-apiserver, etcd and helm (tens of minutes on 2 cores), then cached.
t.setTimeout(60 * 60_000)

const list = (items: readonly object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items })
const warnings = (result: KubectlResult) => result.stderr.split('\n').filter((line) => /^Warning/i.test(line))
const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'

interface Webhook {
  name: string
  timeoutSeconds: number
  failurePolicy: string
  clientConfig: { caBundle?: string; url?: string; service?: object }
}
type WebhookConfiguration = K8sObject & { webhooks: Webhook[] }

t.test('the chart on a real kube-apiserver', async (t) => {
  const { helms } = await helmTools()
  // The audit log records Service writes with their annotations (auditAnnotations land there).
  const auditDir = await mkdtemp(join(tmpdir(), 'nlb-guard-audit-'))
  t.teardown(() => rm(auditDir, { recursive: true, force: true }))
  await writeFile(join(auditDir, 'policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n    resources: [{group: "", resources: [services]}]\n  - level: None\n')
  const auditLog = join(auditDir, 'audit.log')
  const cp: ControlPlane = await startControlPlane({ apiserverArgs: [`--audit-policy-file=${join(auditDir, 'policy.yaml')}`, `--audit-log-path=${auditLog}`] })
  t.teardown(() => cp.stop())
  const helmEnv = { KUBECONFIG: cp.kubeconfig, HELM_CACHE_HOME: join(cp.dir, 'helm-cache'), HELM_CONFIG_HOME: join(cp.dir, 'helm-config'), HELM_DATA_HOME: join(cp.dir, 'helm-data') }
  const helm = (bin: string, args: string[]) => run(bin, args, { env: helmEnv })
  const getJson = async <T>(args: string[]): Promise<T> => JSON.parse((await cp.kubectl(['get', '-o', 'json', ...args])).stdout) as T

  // The ServiceCIDR that allocates ClusterIPs is bootstrapped after /readyz (helm creates a Service).
  const probe = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'probe', namespace: 'default' }, spec: { ports: [{ port: 80 }] } }
  await waitFor('Services can be created', async () => (await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(probe), allowFail: true })).code === 0, 60_000)

  t.test('helm template passes server-side validation, strict about unknown fields, in every mode', async (t) => {
    await cp.kubectl(['create', 'namespace', 'nlb-guard-system'])
    const modes = [
      ['--set', 'certificates.mode=bootstrap'],
      ['--set', 'certificates.mode=cert-manager'],
      ['--set', 'certificates.mode=files', '--set', 'certificates.files.secretName=mine', '--set', `certificates.files.caBundle=${Buffer.from(cp.ca).toString('base64')}`],
      ['--set', 'networkPolicy.enabled=false', '--set', 'podDisruptionBudget.enabled=false', '--set', 'priorityClassName=', '--set-json', 'tolerations=[{"key":"CriticalAddonsOnly","operator":"Exists"}]', '--set-json', 'nodeSelector={"kubernetes.io/os":"linux"}'],
    ]
    for (const values of modes) {
      // cert-manager's CRDs are not installed here; everything else is checked.
      const objects = (await template(values)).filter((o) => !o.apiVersion.startsWith('cert-manager.io/'))
      const result = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: list(objects), allowFail: true })
      t.equal(result.code, 0, `${values.join(' ')}: ${result.stderr}`)
      t.same(warnings(result), [], 'no warning (a Pod Security violation would be one)')
    }
    await cp.kubectl(['delete', 'namespace', 'nlb-guard-system', '--wait=false'])
  })

  for (const [index, { name, bin }] of helms.entries()) {
    t.test(`${name}: install, upgrade, uninstall`, async (t) => {
      const namespace = `nlb-guard-${name}`
      // Helm stores the release in its namespace before creating anything: --create-namespace, then
      // the labels the README asks for (namespace.create is for rendered manifests).
      const install = await helm(bin, ['install', 'nlb-guard', CHART, '--namespace', namespace, '--create-namespace', '--set-json', 'config.certIPAddresses=["127.0.0.1"]'])
      t.equal(install.code, 0, `${name} install: ${install.stderr}`)
      t.match(install.stdout, /STATUS: deployed/)
      const status = await helm(bin, ['status', 'nlb-guard', '--namespace', namespace])
      t.match(status.stdout, /STATUS: deployed/)

      // Installed for the apiserver's own version: the 1.28+ shape, matchConditions included.
      const mutating = await getJson<WebhookConfiguration>(['mutatingwebhookconfiguration', 'nlb-guard'])
      t.same(mutating.webhooks.map((w) => w.name), ['services.nlb-guard.io', 'pods.nlb-guard.io'])
      t.ok(mutating.webhooks[0] && 'matchConditions' in mutating.webhooks[0], 'matchConditions on the 1.37 apiserver')
      await cp.kubectl(['label', 'namespace', namespace, 'nlb-guard.io/ignore=true', 'pod-security.kubernetes.io/enforce=restricted'])
      const deployment = await getJson<K8sObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } }>(['deployment', 'nlb-guard', '-n', namespace])
      t.equal(deployment.spec.template.spec.containers[0]?.image, 'ghcr.io/nlb-guard/nlb-guard:0.1.0')

      if (index === 0) {
        await t.test("the release's ServiceAccount, RBAC and config run a working webhook", async (t) => {
          const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-helm-'))
          t.teardown(() => rm(dir, { recursive: true, force: true }))
          const configMap = await getJson<K8sObject & { data: Record<string, string> }>(['configmap', 'nlb-guard-config', '-n', namespace])
          await writeFile(join(dir, 'config.yaml'), configMap.data['config.yaml'] ?? '')
          // nlb-guard runs with exactly the release's grants: a token of its ServiceAccount.
          const token = (await cp.kubectl(['create', 'token', 'nlb-guard', '-n', namespace])).stdout.trim()
          const admin = JSON.parse((await cp.kubectl(['config', 'view', '--raw', '-o', 'json'])).stdout) as { users: Array<{ user: Record<string, unknown> }> }
          for (const user of admin.users) user.user = { token }
          await writeFile(join(dir, 'kubeconfig'), JSON.stringify(admin), { mode: 0o600 })
          const whoami = await run('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])
          t.equal(whoami.stdout, `system:serviceaccount:${namespace}:nlb-guard`, `nlb-guard runs as the release's ServiceAccount ${whoami.stderr}`)
          const guard = await startNlbGuard(['--config', join(dir, 'config.yaml'), '--kubeconfig', join(dir, 'kubeconfig')], { tlsFiles: false, readyTimeoutMs: 180_000 })
          t.teardown(() => guard.stop())

          // Bootstrap mode made its Secret and wrote its CA into both configurations.
          const secret = await getJson<K8sObject & { data: Record<string, string> }>(['secret', 'nlb-guard-tls', '-n', namespace])
          // Compared without line breaks: node-forge writes CRLF, the caBundle has LF.
          const flat = (pem: string) => pem.replace(/\s+/g, '')
          const ca = flat(Buffer.from(secret.data['ca.crt'] ?? '', 'base64').toString())
          const kinds = ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']
          await waitFor('the CA in every webhook', async () => {
            const configurations = await Promise.all(kinds.map((kind) => getJson<WebhookConfiguration>([kind, 'nlb-guard'])))
            return configurations.every((c) => c.webhooks.every((w) => flat(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString()).includes(ca)))
          }, 60_000)
          // The apiserver cannot reach a ClusterIP here: point each webhook at the local server, and
          // back at the Service at the end (an upgrade would otherwise add the Service beside the URL).
          const pointAt = async (target: (path: string) => object) => {
            for (const kind of kinds) {
              const configuration = await getJson<WebhookConfiguration>([kind, 'nlb-guard'])
              const path = kind.startsWith('mutating') ? '/mutate' : '/validate'
              const patch = configuration.webhooks.map((w, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig`, value: { caBundle: w.clientConfig.caBundle, ...target(path) } }))
              await cp.kubectl(['patch', kind, 'nlb-guard', '--type=json', '-p', JSON.stringify(patch)])
            }
          }
          await pointAt((path) => ({ url: `https://127.0.0.1:${guard.port}${path}` }))
          t.teardown(() => pointAt((path) => ({ service: { name: 'nlb-guard', namespace, path, port: 443 } })))

          await cp.kubectl(['create', 'namespace', 'helm-demo'])
          const udp = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns', namespace: 'helm-demo' }, spec: { type: 'LoadBalancer', selector: { app: 'dns' }, ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } }
          let applied: KubectlResult | undefined
          await waitFor('the webhook mutates', async () => {
            applied = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(udp), allowFail: true })
            return applied.code === 0 && (JSON.parse(applied.stdout) as K8sObject).metadata.annotations?.[TYPE] === 'nlb'
          }, 60_000)
          t.match(applied?.stderr, /Warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/, 'and says so')

          // A real write: the apiserver's audit log holds nlb-guard's auditAnnotations.
          const created = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(udp) })
          t.equal(created.code, 0)
          let audited: Record<string, string> | undefined
          await waitFor('the audit event', async () => {
            const events = (await readFile(auditLog, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as { verb: string; stage: string; objectRef?: { name?: string; namespace?: string }; annotations?: Record<string, string> })
            audited = events.find((e) => e.verb === 'create' && e.stage === 'ResponseComplete' && e.objectRef?.name === 'dns' && e.objectRef.namespace === 'helm-demo')?.annotations
            return audited !== undefined
          })
          t.match(audited, { 'services.nlb-guard.io/decision': 'mutated', 'services.nlb-guard.io/rules': 'S2', 'services.nlb-guard.io/changes': /aws-load-balancer-type: "nlb"/ }, 'auditAnnotations, prefixed with the webhook name, in the audit log')
        })
      } else {
        // Stands in for nlb-guard's bootstrap mode injecting the CA (another field manager).
        await cp.kubectl(['patch', 'mutatingwebhookconfiguration', 'nlb-guard', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from(cp.ca).toString('base64') }])])
      }
      const injected = (await getJson<WebhookConfiguration>(['mutatingwebhookconfiguration', 'nlb-guard'])).webhooks[0]?.clientConfig.caBundle
      t.ok(injected, 'a caBundle is in place before the upgrade')

      const upgrade = await helm(bin, ['upgrade', 'nlb-guard', CHART, '--namespace', namespace, '--reuse-values', '--set', 'webhook.timeoutSeconds.services=9', '--set', 'image.tag=0.2.0'])
      t.equal(upgrade.code, 0, `${name} upgrade: ${upgrade.stderr}`)
      t.match(upgrade.stdout, /REVISION: 2/)
      const upgraded = await getJson<WebhookConfiguration>(['mutatingwebhookconfiguration', 'nlb-guard'])
      t.equal(upgraded.webhooks[0]?.timeoutSeconds, 9, 'the new value is applied')
      t.equal(upgraded.webhooks[0]?.clientConfig.caBundle, injected, 'the injected caBundle survives the upgrade')
      const config = parseYaml((await getJson<K8sObject & { data: Record<string, string> }>(['configmap', 'nlb-guard-config', '-n', namespace])).data['config.yaml'] ?? '') as { sidecar: { image: string } }
      t.equal(config.sidecar.image, 'ghcr.io/nlb-guard/nlb-guard-healthcheck:0.2.0', 'the sidecar image moves with image.tag')

      const uninstall = await helm(bin, ['uninstall', 'nlb-guard', '--namespace', namespace])
      t.equal(uninstall.code, 0, `${name} uninstall: ${uninstall.stderr}`)
      for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration', 'clusterrole', 'clusterrolebinding']) {
        const left = await cp.kubectl(['get', kind, '-l', 'app.kubernetes.io/instance=nlb-guard', '-o', 'name'])
        t.equal(left.stdout.trim(), '', `no ${kind} left`)
      }
      t.equal((await helm(bin, ['list', '--namespace', namespace, '-q'])).stdout.trim(), '', 'no release left')
    })
  }
})
