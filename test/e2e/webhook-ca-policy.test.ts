// The default overlay's ValidatingAdmissionPolicy on a real kube-apiserver (1.30+): nlb-guard's
// ServiceAccount, with bootstrap mode's RBAC (patch on the two configurations named nlb-guard), can
// set caBundle and nothing else; an administrator is not limited.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { startControlPlane, type KubectlResult } from './harness.js'
import { ROOT } from '../fixtures/cli.js'

t.setTimeout(45 * 60_000)

const execFileAsync = promisify(execFile)
const SERVICE_ACCOUNT = 'system:serviceaccount:nlb-guard-system:nlb-guard'
const KINDS = new Set(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'])

t.test('nlb-guard may change only caBundle of its webhook configurations', async (t) => {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', `${ROOT}manifests/overlays/default`], { maxBuffer: 16 << 20 })
  const objects = parseAllDocuments(stdout).map((doc) => doc.toJS() as { kind: string }).filter((o) => KINDS.has(o.kind))
  t.ok(objects.some((o) => o.kind === 'ValidatingAdmissionPolicy'), 'the default overlay carries the policy')
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) })

  const ADMIN = null
  const patch = (kind: string, ops: object[], as: string | null = SERVICE_ACCOUNT): Promise<KubectlResult> =>
    cp.kubectl([...(as === ADMIN ? [] : ['--as', as]), 'patch', kind, 'nlb-guard', '--type=json', '-p', JSON.stringify(ops)], { allowFail: true })
  const caBundle = (value: string) => [{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from(value).toString('base64') }]
  const refusal = /nlb-guard's ServiceAccount may change only clientConfig\.caBundle/

  // The apiserver loads policies and bindings asynchronously: wait until a forbidden change is refused.
  let rules = await patch('mutatingwebhookconfiguration', [{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE'] }])
  for (let i = 0; rules.code === 0 && i < 60; i++) {
    await patch('mutatingwebhookconfiguration', [{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE', 'UPDATE'] }], ADMIN)
    await new Promise((resolve) => setTimeout(resolve, 250))
    rules = await patch('mutatingwebhookconfiguration', [{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE'] }])
  }
  t.not(rules.code, 0, 'changing a rule is refused')
  t.match(rules.stderr, refusal)

  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    const set = await patch(kind, caBundle(`-----BEGIN CERTIFICATE-----\n${kind}\n-----END CERTIFICATE-----\n`))
    t.equal(set.code, 0, `${kind}: caBundle set by the ServiceAccount ${set.stderr}`)
    const forbidden: Array<[string, object[]]> = [
      ['clientConfig.service', [{ op: 'replace', path: '/webhooks/0/clientConfig/service/name', value: 'elsewhere' }]],
      ['clientConfig to a URL', [{ op: 'remove', path: '/webhooks/0/clientConfig/service' }, { op: 'add', path: '/webhooks/0/clientConfig/url', value: 'https://attacker.example/mutate' }]],
      ['failurePolicy', [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }]],
      ['namespaceSelector', [{ op: 'replace', path: '/webhooks/0/namespaceSelector', value: {} }]],
      ['matchConditions', [{ op: 'remove', path: '/webhooks/0/matchConditions' }]],
      ['a webhook removed', [{ op: 'remove', path: '/webhooks/0' }]],
      ['a label added', [{ op: 'add', path: '/metadata/labels/extra', value: 'x' }]],
      ['caBundle and a rule together', [...caBundle('other'), { op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 30 }]],
    ]
    for (const [what, ops] of forbidden) {
      const result = await patch(kind, ops)
      t.not(result.code, 0, `${kind}: ${what} refused`)
      t.match(result.stderr, refusal, `${kind}: ${what}: the policy says why`)
    }
    const deleted = await cp.kubectl(['--as', SERVICE_ACCOUNT, 'delete', kind, 'nlb-guard'], { allowFail: true })
    t.not(deleted.code, 0, `${kind}: the ServiceAccount cannot delete it`)
  }
  const stored = JSON.parse((await cp.kubectl(['get', 'mutatingwebhookconfiguration', 'nlb-guard', '-o', 'json'])).stdout) as { webhooks: Array<{ clientConfig: { service?: { name: string } } }> }
  t.equal(stored.webhooks[0]?.clientConfig.service?.name, 'nlb-guard', 'the stored configuration still points at nlb-guard')

  const admin = await patch('mutatingwebhookconfiguration', [{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 7 }], ADMIN)
  t.equal(admin.code, 0, `an administrator is not limited by the policy ${admin.stderr}`)
})
