// The manifests against a real kube-apiserver (test/e2e/harness.ts): both overlays pass its
// validation, the pod passes the `restricted` Pod Security Standard, and the webhook
// configurations send what they should — and fail the way their failurePolicy says — while
// nlb-guard itself is not running.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { startControlPlane, type ControlPlane, type KubectlResult } from '../e2e/harness.js'
import { ROOT } from '../fixtures/cli.js'

// The first run may build kube-apiserver and etcd (tens of minutes on 2 cores), then cached.
t.setTimeout(45 * 60_000)

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
  [field: string]: unknown
}
interface Deployment extends K8sObject {
  spec: { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } }
}

const execFileAsync = promisify(execFile)
const NAMESPACE = 'nlb-guard-system'

async function render(overlay: string): Promise<K8sObject[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', `${ROOT}manifests/overlays/${overlay}`], { maxBuffer: 16 << 20 })
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as K8sObject)
}

/** kubectl reads a List as JSON: one document, no YAML round trip. */
const list = (items: readonly object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function podFrom(deployment: Deployment, name: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, labels: deployment.spec.template.metadata.labels },
    spec: deployment.spec.template.spec,
  }
}

function loadBalancer(name: string, namespace: string, annotations: Record<string, string> = {}): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, annotations } as K8sObject['metadata'],
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
  }
}

const warnings = (result: KubectlResult) => result.stderr.split('\n').filter((line) => /^Warning/i.test(line))

t.test('the manifests on a real kube-apiserver', async (t) => {
  const [defaultOverlay, certManagerOverlay] = await Promise.all([render('default'), render('cert-manager')])
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())

  // The ServiceCIDR that allocates ClusterIPs is bootstrapped after /readyz: wait for it, before
  // any webhook is registered, so a later failure can only be the webhook's.
  const probe = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'probe', namespace: 'default' }, spec: { ports: [{ port: 80 }] } }
  let created = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(probe), allowFail: true })
  for (let i = 0; created.code !== 0 && i < 60; i++) {
    await sleep(500)
    created = await cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(probe), allowFail: true })
  }
  t.equal(created.code, 0, `Services can be created ${created.stderr}`)

  // Namespaced objects can be dry-run only into a namespace that exists.
  const namespace = defaultOverlay.filter((o) => o.kind === 'Namespace')
  await cp.kubectl(['apply', '-f', '-'], { input: list(namespace) })

  t.test('both overlays pass server-side validation, strict about unknown fields', async (t) => {
    const fromDefault = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-k', `${ROOT}manifests/overlays/default`], { allowFail: true })
    t.equal(fromDefault.code, 0, fromDefault.stderr)
    t.same(warnings(fromDefault), [], 'no warning (a Pod Security violation would be one)')
    t.match(fromDefault.stdout, /mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/nlb-guard created \(server dry run\)/)

    // cert-manager's CRDs are not installed here; everything else is checked.
    const withoutCertManager = certManagerOverlay.filter((o) => !o.apiVersion.startsWith('cert-manager.io/'))
    t.ok(withoutCertManager.length < certManagerOverlay.length, 'the Issuers and Certificates are left out')
    const fromCertManager = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: list(withoutCertManager), allowFail: true })
    t.equal(fromCertManager.code, 0, fromCertManager.stderr)
    t.same(warnings(fromCertManager), [])
  })

  t.test("the Deployment's pod is admitted in its restricted namespace, with its priority class", async (t) => {
    for (const [overlay, objects] of [['default', defaultOverlay], ['cert-manager', certManagerOverlay]] as const) {
      const deployment = objects.find((o): o is Deployment => o.kind === 'Deployment')
      if (deployment === undefined) throw new Error(`no Deployment in ${overlay}`)
      const pod = await cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(podFrom(deployment, `nlb-guard-${overlay}`)), allowFail: true })
      t.equal(pod.code, 0, `${overlay}: ${pod.stderr}`)
      t.same(warnings(pod), [], `${overlay}: no warning`)
      // The Priority admission plugin resolved system-cluster-critical outside kube-system.
      t.ok((JSON.parse(pod.stdout) as { spec: { priority: number } }).spec.priority >= 2_000_000_000, `${overlay}: system-cluster-critical priority`)
    }
    // And the namespace really enforces the standard: a pod without the settings is refused.
    const plain = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain', namespace: NAMESPACE }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }
    const refused = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(plain), allowFail: true })
    t.not(refused.code, 0)
    t.match(refused.stderr, /violates PodSecurity "restricted/)
  })

  t.test('registered, with nlb-guard not running: what is sent, and what each failurePolicy does', async (t) => {
    // The webhook configurations only. The nlb-guard Service is never created (only dry-run
    // above), so the apiserver fails to resolve it at once and dials no address.
    const configurations = defaultOverlay.filter((o) => o.kind.endsWith('WebhookConfiguration'))
    t.equal(configurations.length, 2)
    await cp.kubectl(['apply', '-f', '-'], { input: list(configurations) })
    await cp.kubectl(['apply', '-f', '-'], {
      input: list([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'opted-out', labels: { 'nlb-guard.io/ignore': 'true' } } },
      ]),
    })
    const create = (object: object) => cp.kubectl(['create', '-f', '-'], { input: JSON.stringify(object), allowFail: true })

    // The configurations take effect once the apiserver's informer has them.
    let refused = await create(loadBalancer('udp', 'demo'))
    for (let i = 0; refused.code === 0 && i < 20; i++) {
      await cp.kubectl(['delete', 'service', 'udp', '-n', 'demo', '--wait=false'])
      await sleep(250)
      refused = await create(loadBalancer('udp', 'demo'))
    }
    t.not(refused.code, 0, 'failurePolicy Fail: a LoadBalancer Service is refused while nlb-guard is down')
    t.match(refused.stderr, /failed calling webhook "services\.nlb-guard\.io"/, 'and the message names the webhook')
    t.comment(refused.stderr.trim())

    const clusterIp = await create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain', namespace: 'demo' }, spec: { selector: { app: 'plain' }, ports: [{ port: 80 }] } })
    t.equal(clusterIp.code, 0, `a ClusterIP Service is not sent (matchConditions) ${clusterIp.stderr}`)
    const ignored = await create(loadBalancer('ignored', 'demo', { 'nlb-guard.io/ignore': 'true' }))
    t.equal(ignored.code, 0, `nor a Service annotated nlb-guard.io/ignore=true ${ignored.stderr}`)
    const optedOut = await create(loadBalancer('udp', 'opted-out'))
    t.equal(optedOut.code, 0, `nor one in a namespace labelled nlb-guard.io/ignore=true ${optedOut.stderr}`)
    const system = await create(loadBalancer('udp', 'kube-system'))
    t.equal(system.code, 0, `nor one in kube-system ${system.stderr}`)
    const own = await create(loadBalancer('udp', NAMESPACE))
    t.equal(own.code, 0, `nor one in nlb-guard-system ${own.stderr}`)

    const pod = await create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app', namespace: 'demo' }, spec: { containers: [{ name: 'app', image: 'app' }] } })
    t.equal(pod.code, 0, `failurePolicy Ignore: Pods are still created while nlb-guard is down ${pod.stderr}`)
  })
})
