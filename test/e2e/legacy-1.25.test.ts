// Kubernetes 1.25.16, for real, first with the MixedProtocolLBService gate off (as 1.20-1.23 ship
// it), then with 1.25's default (on): the legacy install (manifests/overlays/legacy/1.21-1.27)
// applied with kubectl 1.25.16, nlb-guard in bootstrap mode as its ServiceAccount with no
// --kube-version, every rule through the apiserver's own admission chain and validation.
import t from 'tap'
import { LEGACY_1_21 } from '../fixtures/legacy-overlays.js'
import { startControlPlane } from './harness.js'
import { bootstrapped, byName, eraKubectl, eventsShown, eventually, install, loadBalancer, mixedDenied, NAMESPACE, parseObjects, SEED_001, sentToGuard, servesVersion, serviceAndPodRules, TYPE, whileDown } from './legacy.js'

t.setTimeout(20 * 60_000)

const VERSION = '1.25.16'
const GATE_OFF = '--feature-gates=MixedProtocolLBService=false'
const folder = LEGACY_1_21.path

t.test(`nlb-guard on a real kube-apiserver ${VERSION}`, async (t) => {
  const cp = await startControlPlane({ version: VERSION, apiserverArgs: [GATE_OFF], startTimeoutMs: 180_000 })
  t.teardown(() => cp.stop())
  await servesVersion(t, cp, VERSION)
  const kubectl = eraKubectl(cp)
  const dir = t.testdir()

  await t.test('kubectl 1.25 (kustomize v4.5) renders the overlay as kubectl 1.32 does', async (t) => {
    t.same(byName(parseObjects((await kubectl(['kustomize', folder])).stdout)), byName(parseObjects((await cp.kubectl(['kustomize', folder])).stdout)))
  })

  await t.test('every object is accepted by strict server-side validation: kubectl apply --dry-run=server -k', async (t) => {
    // A dry-run of namespaced objects needs their namespace to exist for real.
    // (applied, not created, so that kubectl has nothing to warn about when it applies it again)
    const namespace = parseObjects((await kubectl(['kustomize', folder])).stdout).find((o) => o.kind === 'Namespace')
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(namespace) })
    const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-k', folder], { allowFail: true })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /poddisruptionbudget\.policy\/nlb-guard created \(server dry run\)/)
    t.notMatch(r.stderr, /Warning/, 'no unknown or deprecated field')
  })

  const { guard } = await install(cp, folder, dir)
  t.teardown(() => guard.stop())

  await t.test('bootstrap mode: the Secret, the caBundle, readiness', async (t) => {
    await bootstrapped(t, kubectl)
  })

  await kubectl(['create', 'namespace', 'e2e'])
  await eventually('the mutating webhook answers', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'e2e', '-f', '-'], { input: loadBalancer('probe'), allowFail: true })
    return r.code === 0 && JSON.parse(r.stdout).metadata.annotations?.[TYPE] === 'nlb' ? true : undefined
  })
  const context = { cp, kubectl, guard, ns: 'e2e' }

  await t.test(`gate off: seed 001's echo Service gets nlb-guard's denial, not the apiserver's`, (t) => mixedDenied(t, context, VERSION))

  await serviceAndPodRules(t, context)

  await t.test("Kubernetes Events, as the install's ServiceAccount", (t) => eventsShown(t, context))

  await t.test('kube-system and nlb-guard-system are never sent (kubernetes.io/metadata.name, from 1.21)', async (t) => {
    for (const namespace of ['kube-system', NAMESPACE]) {
      await kubectl(['apply', '--dry-run=server', '-n', namespace, '-f', '-'], { input: loadBalancer('dns') })
      t.notOk(await sentToGuard(context, namespace, 'dns'), namespace)
    }
  })

  await t.test('while nlb-guard is down nothing is blocked', (t) => whileDown(t, context))

  await t.test("gate off and nlb-guard down: the apiserver's own refusal", async (t) => {
    await guard.stop()
    const r = await kubectl(['apply', '-n', 'e2e', '-f', SEED_001], { allowFail: true })
    t.not(r.code, 0)
    t.match(r.stderr, /may not contain more than 1 protocol when type is 'LoadBalancer'/)
    await guard.start()
  })

  await t.test("1.25's default (gate on): seed 001 is accepted, made an NLB, with the provider warning", async (t) => {
    await cp.restartApiserver([])
    // nlb-guard learns the cluster's capability when it starts.
    await guard.stop()
    await guard.start()
    const r = await eventually('accepted', async () => {
      const attempt = await kubectl(['apply', '-n', 'e2e', '-f', SEED_001], { allowFail: true })
      return attempt.code === 0 ? attempt : undefined
    })
    t.match(r.stderr, /Warning: .*in-tree AWS cloud provider never builds a mixed-protocol load balancer/)
    t.match(r.stderr, /Warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)
    const stored = JSON.parse((await kubectl(['get', 'service', 'echo', '-n', 'e2e', '-o', 'json'])).stdout)
    t.equal(stored.metadata.annotations[TYPE], 'nlb')
    t.same(stored.spec.ports.map((p: { protocol: string }) => p.protocol).sort(), ['TCP', 'UDP'])
  })
})
