// The legacy install (manifests/overlays/legacy/*) on a real old kube-apiserver, the way a user of
// that version meets it: applied with that release's own kubectl (its kustomize, its validation),
// nlb-guard started out of cluster in bootstrap mode with the ServiceAccount's token and no
// --kube-version, every rule driven by kubectl. Shared by test/e2e/legacy-*.test.ts.
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml'
import { pemCertificates } from '../../certs/bundle.js'
import { freePort, ROOT, spawnCli, waitFor } from '../fixtures/cli.js'
import { eventually, type ControlPlane, type KubectlOptions, type KubectlResult } from './harness.js'
import { httpStatus, metricsText } from './nlb-guard.js'

export const NAMESPACE = 'nlb-guard-system'
export const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
export const CROSS = 'service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled'
/** Seed 001's Service: one LoadBalancer for TCP and UDP on the same port. */
export const SEED_001 = join(ROOT, 'test/fixtures/seeds/001-echo-combined.yaml')

export type Obj = Record<string, unknown> & { kind: string; apiVersion: string; metadata: { name: string; namespace?: string } }

export { eventually }

/** Bootstrap mode worked: the Secret holds the CA and serving pair, and every webhook carries its CA. */
export async function bootstrapped(t: Test, kubectl: (args: string[], opts?: KubectlOptions) => Promise<KubectlResult>): Promise<void> {
    const secret = JSON.parse((await kubectl(['get', 'secret', 'nlb-guard-tls', '-n', NAMESPACE, '-o', 'json'])).stdout)
    t.same(Object.keys(secret.data).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
    // What nlb-guard injects: the CA certificates of ca.crt, PEM, nothing else.
    const expected = Buffer.from(pemCertificates(Buffer.from(secret.data['ca.crt'], 'base64').toString('utf8')).join('')).toString('base64')
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      const bundles = (await kubectl(['get', kind, 'nlb-guard', '-o', 'jsonpath={.webhooks[*].clientConfig.caBundle}'])).stdout.split(' ')
      t.ok(bundles.length > 0 && bundles.every((b) => b === expected), `${kind}: the Secret's CA in every webhook`)
    }
}

/** The binary is that release, and so is the /version it serves (what nlb-guard reads). */
export async function servesVersion(t: Test, cp: ControlPlane, version: string): Promise<void> {
  t.equal(cp.version.gitVersion, `v${version}`, 'the binary is that release')
  // Up to 1.25 the aggregator answers /version from client-go's copy of the version package:
  // without build.sh's -X flags for it, this reads v0.0.0-master+$Format:%H$.
  const served = JSON.parse((await cp.kubectl(['get', '--raw', '/version'])).stdout) as { gitVersion: string; minor: string }
  t.same({ gitVersion: served.gitVersion, minor: served.minor }, { gitVersion: `v${version}`, minor: version.split('.')[1] }, '/version reports the release (nlb-guard reads it)')
}

export function loadBalancer(name: string, options: { ports?: Array<[number, string]>; annotations?: Record<string, string>; local?: boolean } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: (options.ports ?? [[5060, 'UDP']]).map(([port, protocol]) => ({ name: `${protocol.toLowerCase()}-${port}`, port, protocol })),
      ...(options.local ? { externalTrafficPolicy: 'Local' } : {}),
    },
  })
}

/** kubectl of the control plane's own release; the test fails when build.sh built none. */
export function eraKubectl(cp: ControlPlane): (args: string[], opts?: KubectlOptions) => Promise<KubectlResult> {
  const bin = cp.eraKubectl
  if (bin === undefined) throw new Error(`no kubectl ${cp.version.gitVersion} in ${cp.assets}: its recipe's go.mod must list k8s.io/kubernetes/cmd/kubectl`)
  return (args, opts = {}) => cp.kubectl(args, { ...opts, bin })
}

/**
 * The objects by kind, namespace and name, for comparing kustomize versions: they order their
 * output differently, and kustomize v2 hashes a generated ConfigMap's name differently.
 */
export function byName(objects: readonly Obj[]): Record<string, Obj> {
  const unhashed = JSON.parse(JSON.stringify(objects).replace(/nlb-guard-config-[a-z0-9]{10}\b/g, 'nlb-guard-config-HASH')) as Obj[]
  return Object.fromEntries(unhashed.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]))
}

export function parseObjects(yaml: string): Obj[] {
  return parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null)
}

export interface Installed {
  /** The legacy overlay as the release's kubectl renders it. */
  objects: Obj[]
  guard: RunningGuard
}

export interface RunningGuard {
  port: number
  metricsPort: number
  log(): string
  stop(): Promise<void>
  start(): Promise<void>
}

/**
 * Applies the legacy overlay for real with the release's kubectl, points its webhook
 * configurations at a local nlb-guard (the apiserver reaches no in-cluster Service here: there
 * are no nodes) and starts that nlb-guard in bootstrap mode as the overlay's ServiceAccount.
 */
export async function install(cp: ControlPlane, folder: string, dir: string): Promise<Installed> {
  const kubectl = eraKubectl(cp)
  const objects = parseObjects((await kubectl(['kustomize', folder])).stdout)
  const [port, metricsPort] = [await freePort(), await freePort()]

  await kubectl(['apply', '-k', folder])
  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    const count = ((await kubectl(['get', kind, 'nlb-guard', '-o', 'jsonpath={.webhooks[*].name}'])).stdout.split(' ')).length
    const ops = Array.from({ length: count }, (_, i) => ({
      op: 'replace',
      path: `/webhooks/${i}/clientConfig`,
      value: { url: `https://127.0.0.1:${port}/${kind.startsWith('mutating') ? 'mutate' : 'validate'}` },
    }))
    await kubectl(['patch', kind, 'nlb-guard', '--type=json', '-p', JSON.stringify(ops)])
  }

  // The ServiceAccount's own token, so the overlay's RBAC is what nlb-guard runs with. kubectl 1.24+
  // has `create token`; the TokenRequest API behind it is served by both old releases.
  const token = (await cp.kubectl(['create', 'token', 'nlb-guard', '-n', NAMESPACE, '--duration=2h'])).stdout.trim()
  const kubeconfig = join(dir, 'sa-kubeconfig')
  const admin = JSON.parse(await readFile(cp.kubeconfig, 'utf8')) as { users: Array<{ user: Record<string, unknown> }> }
  await writeFile(kubeconfig, JSON.stringify({ ...admin, users: [{ name: 'admin', user: { token } }] }), { mode: 0o600 })

  // The installed config, plus the address the apiserver calls it at (a URL, not the Service).
  const configMap = objects.find((o) => o.kind === 'ConfigMap') as (Obj & { data: Record<string, string> }) | undefined
  const config = parseYaml(configMap?.data['config.yaml'] ?? '') as Record<string, unknown>
  const configFile = join(dir, 'config.yaml')
  await writeFile(configFile, stringify({ ...config, certIPAddresses: ['127.0.0.1'], certSyncSeconds: 2 }))

  const guard = guardProcess([
    'serve',
    '--config', configFile,
    '--cert-mode', 'bootstrap',
    '--kubeconfig', kubeconfig,
    '--namespace', NAMESPACE,
    '--webhook-name', 'nlb-guard',
    '--address', '127.0.0.1',
    '--port', String(port),
    '--metrics-port', String(metricsPort),
    '--shutdown-delay', '0',
  ], port, metricsPort)
  await guard.start()
  return { objects, guard }
}

function guardProcess(args: string[], port: number, metricsPort: number): RunningGuard {
  let child: ChildProcess | undefined
  let log = ''
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
  return {
    port,
    metricsPort,
    log: () => log,
    stop,
    async start() {
      // Not "in a pod", whatever the machine running the tests is.
      const running = spawnCli(args, { env: { KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '' } })
      child = running
      running.stderr?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
      running.stdout?.resume()
      await waitFor('nlb-guard ready', async () => {
        if (running.exitCode !== null) throw new Error('exited')
        return (await httpStatus(metricsPort, '/readyz')) === 200
      }, 90_000).catch((error: unknown) => {
        throw new Error(`nlb-guard did not become ready: ${(error as Error).message}\n${log.slice(-3000)}`, { cause: error })
      })
    },
  }
}

/** The admission log lines of nlb-guard. */
export function admissions(guard: RunningGuard): Array<Record<string, unknown>> {
  return guard
    .log()
    .split('\n')
    .filter((line) => line.includes('"msg":"admission"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

export async function seed001(): Promise<string> {
  return readFile(SEED_001, 'utf8')
}

/** The v1 webhook configurations of the overlay, as `admissionregistration.k8s.io/v1beta1` (1.16–1.21 serve both). */
export function asV1beta1(objects: readonly Obj[]): Obj[] {
  return objects
    .filter((o) => o.kind.endsWith('WebhookConfiguration'))
    .map((o) => ({ ...o, apiVersion: 'admissionregistration.k8s.io/v1beta1' }))
}

type Tap = Test
type Run = (args: string[], opts?: KubectlOptions) => Promise<KubectlResult>

export interface RuleContext {
  cp: ControlPlane
  kubectl: Run
  guard: RunningGuard
  /** The namespace the rules are tried in (created by the caller). */
  ns: string
}

/**
 * S2-S4, UPDATE restore/deny and the Pod rule through kubectl, with the warnings it prints: the
 * same on every version before 1.29 (the sidecar is a regular container there).
 */
export async function serviceAndPodRules(t: Tap, { kubectl, guard, ns }: RuleContext): Promise<void> {
  const n = ['-n', ns]

  await t.test('S2: a dry-run shows the nlb annotation and prints the warning; nothing stored', async (t) => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...n, '-f', '-'], { input: loadBalancer('echo-udp') })
    t.equal(JSON.parse(r.stdout).metadata.annotations[TYPE], 'nlb')
    t.match(r.stderr, /Warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb": the Service has UDP ports/)
    const get = await kubectl(['get', 'service', 'echo-udp', ...n], { allowFail: true })
    t.not(get.code, 0, 'nothing stored')
  })

  await t.test('S2 and S3: kubectl apply stores the corrected Service, with both warnings', async (t) => {
    const r = await kubectl(['apply', ...n, '-f', '-'], { input: loadBalancer('sip', { local: true }) })
    t.match(r.stderr, /Warning: added annotation .*aws-load-balancer-type: "nlb"/)
    t.match(r.stderr, /Warning: set annotation .*cross-zone-load-balancing-enabled: "true"/)
    const stored = JSON.parse((await kubectl(['get', 'service', 'sip', '-o', 'json', ...n])).stdout)
    t.equal(stored.metadata.annotations[TYPE], 'nlb')
    t.equal(stored.metadata.annotations[CROSS], 'true')
    const again = await kubectl(['apply', ...n, '-f', '-'], { input: loadBalancer('sip', { local: true }) })
    t.notMatch(again.stderr, /Warning:/, 're-applying the same manifest changes nothing and warns nothing')
  })

  await t.test('UPDATE: a dropped load balancer type is restored; a changed one is denied', async (t) => {
    const drop = await kubectl(['annotate', 'service', 'sip', `${TYPE}-`, ...n])
    t.match(drop.stderr, /Warning: restored annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)
    t.equal(JSON.parse((await kubectl(['get', 'service', 'sip', '-o', 'json', ...n])).stdout).metadata.annotations[TYPE], 'nlb', 'still an NLB')
    const change = await kubectl(['annotate', '--overwrite', 'service', 'sip', `${TYPE}=external`, ...n], { allowFail: true })
    t.not(change.code, 0)
    t.match(change.stderr, new RegExp(`denied the request: Service ${ns}/sip already has a load balancer, and this update changes .* from "nlb" to "external": .*orphaned`))
  })

  await t.test('S2 and S3 denials print our message', async (t) => {
    const classic = await kubectl(['apply', ...n, '-f', '-'], { input: loadBalancer('classic', { annotations: { [TYPE]: 'clb' } }), allowFail: true })
    t.not(classic.code, 0)
    t.match(classic.stderr, new RegExp(`admission webhook "services\\.nlb-guard\\.io" denied the request: Service ${ns}/classic has UDP ports .* "clb", which asks for a Classic ELB`))
    const single = await kubectl(['apply', ...n, '-f', '-'], { input: loadBalancer('single', { local: true, annotations: { [CROSS]: 'false' } }), allowFail: true })
    t.not(single.code, 0)
    t.match(single.stderr, /turns cross-zone load balancing off .* nlb-guard\.io\/allow-single-zone/)
  })

  await t.test('S4: the health-check hint reaches kubectl', async (t) => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...n, '-f', '-'], { input: loadBalancer('hint') })
    t.match(r.stderr, /Warning: .*NLB probes the UDP NodePort over TCP/)
  })

  await t.test('a ClusterIP Service is answered, and untouched', async (t) => {
    const r = await kubectl(['apply', '-o', 'json', ...n, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain' }, spec: { selector: { app: 'x' }, ports: [{ port: 53, protocol: 'UDP' }] } }),
    })
    t.equal(JSON.parse(r.stdout).metadata.annotations?.[TYPE], undefined)
    t.notMatch(r.stderr, /Warning/)
    t.ok(admissions(guard).some((a) => a['name'] === 'plain' && a['namespace'] === ns), 'sent to nlb-guard: there are no matchConditions before 1.28')
  })

  await t.test('Pods: a regular sidecar container (no native sidecars before 1.29), stored by kubectl apply', async (t) => {
    await kubectl(['apply', ...n, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'voice', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } },
        spec: { type: 'LoadBalancer', selector: { app: 'voice' }, ports: [{ name: 'sip', port: 5060, protocol: 'UDP', targetPort: 'sip-udp' }] },
      }),
    })
    const pod = (name: string, app: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app } },
        spec: { containers: [{ name: 'server', image: 'example/sip', ports: [{ name: 'sip-udp', containerPort: 15060, protocol: 'UDP' }] }] },
      })
    // The informer sees the new Service through its watch; poll until the cache has it.
    const dryRun = await eventually('the sidecar in the dry-run', async () => {
      const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...n, '-f', '-'], { input: pod('voice-0', 'voice') })
      const object = JSON.parse(r.stdout)
      return object.spec.containers.length > 1 ? { object, stderr: r.stderr } : undefined
    })
    const sidecar = dryRun.object.spec.containers.find((c: { name: string }) => c.name === 'nlb-guard-healthcheck')
    t.ok(sidecar, 'a second container')
    t.same(dryRun.object.spec.initContainers, undefined, 'not an init container: one that never ends would keep the pod in Init')
    t.same(sidecar.ports, [{ name: 'hc-15060', containerPort: 15060, protocol: 'TCP' }], 'on the resolved named targetPort')
    t.match(dryRun.stderr, /Warning: added sidecar container nlb-guard-healthcheck/)
    const applied = await kubectl(['apply', ...n, '-f', '-'], { input: pod('voice-0', 'voice') })
    t.match(applied.stderr, /Warning: added sidecar container/)
    const stored = JSON.parse((await kubectl(['get', 'pod', 'voice-0', '-o', 'json', ...n])).stdout)
    t.same(stored.spec.containers.map((c: { name: string }) => c.name), ['server', 'nlb-guard-healthcheck'], 'stored with the sidecar')
    t.equal(stored.metadata.annotations['nlb-guard.io/healthcheck-ports'], '15060')
    const other = await kubectl(['apply', '--dry-run=server', '-o', 'json', ...n, '-f', '-'], { input: pod('web-0', 'web') })
    t.equal(JSON.parse(other.stdout).spec.containers.length, 1, 'a pod no Service selects is untouched')
  })
}

/**
 * Events through the legacy install's RBAC (nlb-guard runs as its ServiceAccount): the Event of an
 * UPDATE nlb-guard changed in `kubectl describe service`, and a Deployment's pod's Event on the
 * Deployment (one GET of its ReplicaSet, which the install's ClusterRole allows), read by that
 * release's kubectl. core/v1 Events and apps/v1 ReplicaSets are served by every version.
 */
export async function eventsShown(t: Tap, { kubectl, guard, ns }: RuleContext): Promise<void> {
  const n = ['-n', ns]
  const described = (kind: string, name: string) =>
    eventually(`${kind} ${name} shows nlb-guard's Event`, async () => {
      const r = await kubectl(['describe', kind, name, ...n])
      return /nlb-guard/.test(r.stdout) ? r.stdout : undefined
    })

  await t.test('UPDATE: kubectl describe service shows the Event of the restored annotation', async (t) => {
    await kubectl(['apply', ...n, '-f', '-'], { input: loadBalancer('events') })
    const r = await kubectl(['annotate', 'service', 'events', `${TYPE}-`, ...n])
    t.match(r.stderr, /Warning: restored annotation/)
    t.match(await described('service', 'events'), /Normal\s+Mutated\s+.*nlb-guard\s+restored annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)
  })

  await t.test("a Deployment's pod: kubectl describe deployment shows the Event", async (t) => {
    await kubectl(['apply', ...n, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'relay', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } },
        spec: { type: 'LoadBalancer', selector: { app: 'relay' }, ports: [{ name: 'sip', port: 5060, protocol: 'UDP', targetPort: 'sip-udp' }] },
      }),
    })
    // No controller-manager runs: the Deployment, its ReplicaSet and pod made here, each owned by the one before (by uid).
    const template = { metadata: { labels: { app: 'relay' } }, spec: { containers: [{ name: 'server', image: 'example/sip', ports: [{ name: 'sip-udp', containerPort: 15060, protocol: 'UDP' }] }] } }
    const spec = { replicas: 1, selector: { matchLabels: template.metadata.labels }, template }
    const uidOf = async (kind: string, name: string) => (await kubectl(['get', kind, name, ...n, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim()
    const owner = (kind: string, name: string, uid: string, apiVersion = 'apps/v1') => ({ apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true })
    await kubectl(['apply', ...n, '-f', '-'], { input: JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'relay' }, spec }) })
    const deployment = await uidOf('deployment', 'relay')
    await kubectl(['apply', ...n, '-f', '-'], { input: JSON.stringify({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'relay-6b7c', ownerReferences: [owner('Deployment', 'relay', deployment)] }, spec }) })
    const replicaSet = await uidOf('replicaset', 'relay-6b7c')
    const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'relay-6b7c-', labels: template.metadata.labels, ownerReferences: [owner('ReplicaSet', 'relay-6b7c', replicaSet)] }, spec: template.spec })
    // The informer sees the Service through its watch: until then a pod is stored without the sidecar.
    await eventually('a pod with the sidecar', async () => {
      const created = JSON.parse((await kubectl(['create', ...n, '-o', 'json', '-f', '-'], { input: pod })).stdout) as { metadata: { annotations?: Record<string, string> } }
      return created.metadata.annotations?.['nlb-guard.io/healthcheck-ports'] === '15060' ? true : undefined
    })
    t.match(await described('deployment', 'relay'), /Normal\s+Mutated\s+.*nlb-guard\s+Pod relay-6b7c-\*: added sidecar container nlb-guard-healthcheck/)
    t.notMatch((await kubectl(['describe', 'replicaset', 'relay-6b7c', ...n])).stdout, /nlb-guard/, 'on the Deployment, not its ReplicaSet')
    const metrics = await metricsText(guard.metricsPort)
    t.match(metrics, /nlb_guard_event_owner_lookups_total\{result="fetched"\} [1-9]/, 'the ReplicaSet read as the ServiceAccount')
    t.notMatch(metrics, /nlb_guard_event_owner_lookups_total\{result="failed"\}|nlb_guard_events_total\{result="failed"/, 'no lookup or Event refused')
  })
}

/** Seed 001's Service on a cluster that refuses mixed protocols: nlb-guard's denial, not the apiserver's. */
export async function mixedDenied(t: Tap, { kubectl, guard, ns }: RuleContext, version: string): Promise<void> {
  const r = await kubectl(['apply', '-n', ns, '-f', SEED_001], { allowFail: true })
  t.not(r.code, 0, 'refused')
  t.match(r.stderr, new RegExp(`admission webhook "services\\.nlb-guard\\.io" denied the request: Service ${ns}/echo is a LoadBalancer with more than one protocol \\(TCP and UDP`))
  t.match(r.stderr, new RegExp(`this cluster \\(Kubernetes ${version.replace(/\./g, '\\.')}\\) cannot create`))
  t.match(r.stderr, /"echo-tcp" with the TCP ports and "echo-udp" with the UDP ports/)
  t.notMatch(r.stderr, /may not contain more than 1 protocol|cannot create an external load balancer with mix protocols/, "not the apiserver's own message")
  const denials = admissions(guard).filter((a) => a['name'] === 'echo' && a['decision'] === 'denied')
  t.ok(denials.length > 0 && denials.every((a) => a['webhook'] === 'mutate'), 'denied by the mutating webhook, before the apiserver validates')
}

/** While nlb-guard is down nothing is blocked (failurePolicy Ignore): the trade-off, shown. */
export async function whileDown(t: Tap, { kubectl, guard, ns }: RuleContext): Promise<void> {
  await guard.stop()
  const n = ['-n', ns]
  const plain = await kubectl(['apply', ...n, '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain-down' }, spec: { selector: { app: 'x' }, ports: [{ port: 80 }] } }),
    allowFail: true,
  })
  t.equal(plain.code, 0, `a ClusterIP Service is created: ${plain.stderr}`)
  const udp = await kubectl(['apply', '-o', 'json', ...n, '-f', '-'], { input: loadBalancer('udp-down'), allowFail: true })
  t.equal(udp.code, 0, 'a UDP LoadBalancer Service too (the price of Ignore) ...')
  t.equal(JSON.parse(udp.stdout || '{}').metadata?.annotations?.[TYPE], undefined, '... without the nlb annotation')
  await guard.start()
}

let marks = 0

/**
 * Whether the apiserver sent the admission of `name` in `namespace` to nlb-guard. Admission lines
 * reach this process through a pipe: the line of a request sent afterwards (a mark, in `ns`,
 * which is sent) shows that `name`'s line would have arrived by then.
 */
export async function sentToGuard({ kubectl, guard, ns }: RuleContext, namespace: string, name: string): Promise<boolean> {
  const mark = `mark-${++marks}`
  await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], { input: loadBalancer(mark) })
  await eventually('the mark logged', async () => (admissions(guard).some((a) => a['name'] === mark) ? true : undefined))
  return admissions(guard).some((a) => a['namespace'] === namespace && a['name'] === name)
}
