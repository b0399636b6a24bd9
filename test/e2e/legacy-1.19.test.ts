// Kubernetes 1.19.16, for real: the legacy install (manifests/overlays/legacy/1.16-1.20) applied with
// kubectl 1.19.16 (kustomize v2.0.3), nlb-guard in bootstrap mode as its ServiceAccount, no
// --kube-version, and every rule through the 1.19 apiserver's own admission chain and validation.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { LEGACY_1_16 } from '../fixtures/legacy-overlays.js'
import { startControlPlane } from './harness.js'
import { admissions, asV1beta1, bootstrapped, byName, eraKubectl, eventsShown, eventually, install, loadBalancer, mixedDenied, NAMESPACE, parseObjects, SEED_001, sentToGuard, servesVersion, serviceAndPodRules, TYPE, whileDown } from './legacy.js'

t.setTimeout(20 * 60_000)

const VERSION = '1.19.16'
const folder = LEGACY_1_16.path

t.test(`nlb-guard on a real kube-apiserver ${VERSION}`, async (t) => {
  const cp = await startControlPlane({ version: VERSION, startTimeoutMs: 180_000 })
  t.teardown(() => cp.stop())
  await servesVersion(t, cp, VERSION)
  const kubectl = eraKubectl(cp)
  const dir = t.testdir()

  await t.test('kubectl 1.19 (kustomize v2.0.3) renders the overlay as kubectl 1.32 does', async (t) => {
    const era = parseObjects((await kubectl(['kustomize', folder])).stdout)
    const today = parseObjects((await cp.kubectl(['kustomize', folder])).stdout)
    t.same(byName(era), byName(today))
    t.equal(era.length, today.length)
  })

  await t.test('every object is accepted: kubectl apply --dry-run=server -k', async (t) => {
    // A dry-run of namespaced objects needs their namespace to exist for real.
    // (applied, not created, so that kubectl has nothing to warn about when it applies it again)
    const namespace = parseObjects((await kubectl(['kustomize', folder])).stdout).find((o) => o.kind === 'Namespace')
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(namespace) })
    const r = await kubectl(['apply', '--dry-run=server', '-k', folder], { allowFail: true })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /poddisruptionbudget\.policy\/nlb-guard created \(server dry run\)/)
    t.match(r.stdout, /mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/nlb-guard created \(server dry run\)/)
    t.notMatch(r.stderr, /Warning/)
  })

  await t.test('the webhook configurations offered as admissionregistration.k8s.io/v1beta1 too', async (t) => {
    const objects = parseObjects((await kubectl(['kustomize', folder])).stdout)
    const file = join(dir, 'v1beta1.json')
    await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: asV1beta1(objects) }))
    const r = await kubectl(['apply', '--dry-run=server', '-f', file], { allowFail: true })
    t.equal(r.code, 0, r.stderr)
    t.equal((r.stdout.match(/created \(server dry run\)/g) ?? []).length, 2)
  })

  const { objects, guard } = await install(cp, folder, dir)
  t.teardown(() => guard.stop())

  await t.test('bootstrap mode: the Secret, the caBundle, readiness', async (t) => {
    await bootstrapped(t, kubectl)
    t.ok(objects.some((o) => o.kind === 'PriorityClass'), 'with its own PriorityClass')
  })

  await kubectl(['create', 'namespace', 'e2e'])
  await eventually('the mutating webhook answers', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'e2e', '-f', '-'], { input: loadBalancer('probe'), allowFail: true })
    return r.code === 0 && JSON.parse(r.stdout).metadata.annotations?.[TYPE] === 'nlb' ? true : undefined
  })
  const context = { cp, kubectl, guard, ns: 'e2e' }

  await t.test("seed 001's echo Service: nlb-guard's denial, not the apiserver's", (t) => mixedDenied(t, context, VERSION))

  await serviceAndPodRules(t, context)

  await t.test("Kubernetes Events, as the install's ServiceAccount", (t) => eventsShown(t, context))

  await t.test('kube-system: sent to nlb-guard (which leaves it alone) until labelled, then never sent', async (t) => {
    const sent = (name: string) => sentToGuard(context, 'kube-system', name)
    const first = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'kube-system', '-f', '-'], { input: loadBalancer('dns-0') })
    t.equal(JSON.parse(first.stdout).metadata.annotations?.[TYPE], undefined, 'excludedNamespaces: nlb-guard changes nothing there')
    t.ok(await sent('dns-0'), 'but the apiserver sends it: namespaces carry no kubernetes.io/metadata.name before 1.21')
    await kubectl(['label', 'namespace', 'kube-system', 'nlb-guard.io/ignore=true'])
    let attempt = 0
    await eventually('the label in effect', async () => {
      const name = `dns-${++attempt}`
      await kubectl(['apply', '--dry-run=server', '-n', 'kube-system', '-f', '-'], { input: loadBalancer(name) })
      return (await sent(name)) ? undefined : true
    })
    t.pass('labelled nlb-guard.io/ignore=true, kube-system is no longer sent')
  })

  await t.test('AdmissionReview v1beta1: a configuration that offers only v1beta1', async (t) => {
    await kubectl(['create', 'namespace', 'beta'])
    await kubectl(['label', 'namespace', 'beta', 'nlb-guard.io/ignore=true', 'e2e.nlb-guard.io/beta=true'])
    const ca = JSON.parse((await kubectl(['get', 'secret', 'nlb-guard-tls', '-n', NAMESPACE, '-o', 'json'])).stdout).data['ca.crt'] as string
    const [mutating] = asV1beta1(objects).filter((o) => o.kind === 'MutatingWebhookConfiguration')
    const webhook = ((mutating?.['webhooks'] ?? []) as Array<Record<string, unknown>>)[0] ?? {}
    const beta = {
      apiVersion: 'admissionregistration.k8s.io/v1beta1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'nlb-guard-v1beta1' },
      webhooks: [{
        ...webhook,
        name: 'beta.nlb-guard.io',
        admissionReviewVersions: ['v1beta1'],
        clientConfig: { url: `https://127.0.0.1:${guard.port}/mutate`, caBundle: ca },
        namespaceSelector: { matchLabels: { 'e2e.nlb-guard.io/beta': 'true' } },
      }],
    }
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(beta) })
    const r = await eventually('the v1beta1 webhook answers', async () => {
      const attempt = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'beta', '-f', '-'], { input: loadBalancer('beta') })
      return JSON.parse(attempt.stdout).metadata.annotations?.[TYPE] === 'nlb' ? attempt : undefined
    })
    t.match(r.stderr, /Warning: added annotation/)
    t.ok(admissions(guard).some((a) => a['namespace'] === 'beta' && a['reviewVersion'] === 'admission.k8s.io/v1beta1'), 'the review came in v1beta1')
  })

  await t.test('while nlb-guard is down nothing is blocked', (t) => whileDown(t, context))

  await t.test('... and the apiserver refuses the mixed Service itself then, with its own message', async (t) => {
    await guard.stop()
    const r = await kubectl(['apply', '-n', 'e2e', '-f', SEED_001], { allowFail: true })
    t.not(r.code, 0)
    t.match(r.stderr, /cannot create an external load balancer with mix protocols/)
    await guard.start()
  })
})
