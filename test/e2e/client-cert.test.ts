// `serve --client-ca` with a real kube-apiserver: the apiserver presents the client certificate its
// AdmissionConfiguration names, and nlb-guard serves it; an apiserver without one is refused, and
// Services then fail closed (failurePolicy: Fail) with the handshake error. The AdmissionConfiguration
// and its kubeconfig are the README's, as written there, with the paths and host filled in.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { issueCA } from '../../certs/issue.js'
import { ROOT, waitFor } from '../fixtures/cli.js'
import { issueClientCertificate } from '../security/fixtures/pki.js'
import { startControlPlane, type ControlPlane } from './harness.js'
import { pointAt, renderManifests, startNlbGuard, toYaml, type NlbGuard } from './nlb-guard.js'

t.setTimeout(30 * 60_000)

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const README_DIR = '/etc/kubernetes/admission/'
const README_HOST = 'nlb-guard.nlb-guard-system.svc'

const udpService = (name: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'e2e' },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
  })

/** The YAML block the README marks with `<!-- client-cert:NAME -->`. */
async function readmeBlock(name: string): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const block = new RegExp(`<!-- client-cert:${name} -->\\n\`\`\`yaml\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1]
  if (block === undefined) throw new Error(`README.md has no client-cert:${name} block`)
  return block
}

/** Registers nlb-guard's webhook configurations and waits until a dry-run reaches them (or fails on them). */
async function register(cp: ControlPlane, guard: NlbGuard) {
  const webhooks = pointAt(await renderManifests(cp), guard)
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(webhooks) })
  await cp.kubectl(['create', 'namespace', 'e2e'])
}

/**
 * A dry-run of a UDP Service, retried until the apiserver has picked up the webhook configurations:
 * until then the Service comes back without our annotation and without an error.
 */
async function dryRun(cp: ControlPlane) {
  const deadline = Date.now() + 60_000
  for (;;) {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: udpService('dns'), allowFail: true })
    const picked = r.code !== 0 || (JSON.parse(r.stdout) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.[TYPE] !== undefined
    if (picked || Date.now() > deadline) return r
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

t.test('serve --client-ca on a real kube-apiserver', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-e2e-client-cert-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const clientCa = issueCA({ commonName: 'kube-apiserver client CA', now: new Date() })
  const client = issueClientCertificate(clientCa, { commonName: 'kube-apiserver' })
  await writeFile(join(dir, 'client-ca.crt'), clientCa.certPem)
  await writeFile(join(dir, 'nlb-guard-client.crt'), client.certPem)
  await writeFile(join(dir, 'nlb-guard-client.key'), client.keyPem, { mode: 0o600 })

  // The cluster is 1.37: the version flag saves a cluster connection the test does not need.
  const guard = await startNlbGuard(['--kube-version', '1.37.0', '--client-ca', join(dir, 'client-ca.crt')])
  t.teardown(() => guard.stop())
  const admissions = () => guard.admissions().length

  t.test('an apiserver without a client certificate is refused, and Services fail closed', async (t) => {
    const cp = await startControlPlane()
    t.teardown(() => cp.stop())
    await register(cp, guard)
    const before = admissions()
    const r = await dryRun(cp)
    t.not(r.code, 0, 'the dry-run fails: failurePolicy Fail on Services')
    t.match(r.stderr, /failed calling webhook "services\.nlb-guard\.io"/, 'the apiserver names our webhook')
    // Under TLS 1.3 the apiserver's client has finished its handshake when ours refuses it: depending on
    // whether it reads our alert before writing the request, it reports the alert or a closed connection.
    t.match(r.stderr, /failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/mutate[^"]*": [^\n]*(tls: certificate required|use of closed network connection|connection reset by peer|broken pipe|EOF)$/m, 'and a transport failure, not an answer')
    t.equal(admissions(), before, 'nlb-guard answered no review')
    // The log line travels through a pipe of its own: it may arrive just after kubectl's answer.
    const refusal = /"reason":"ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"[^\n]*"msg":"client certificate refused"/
    await waitFor('the refusal in the log', async () => refusal.test(guard.log()), 5_000).catch(() => undefined)
    t.match(guard.log(), refusal, 'nlb-guard logs the cause')
  })

  t.test("an apiserver presenting the certificate of the README's AdmissionConfiguration is served", async (t) => {
    const host = `127.0.0.1:${guard.port}`
    const fill = (text: string) => text.replaceAll(README_DIR, `${dir}/`).replaceAll(README_HOST, `'${host}'`)
    const admissionConfig = fill(await readmeBlock('admission-config'))
    const kubeconfig = fill(await readmeBlock('kubeconfig'))
    t.equal((parse(kubeconfig) as { users: Array<{ name: string }> }).users[0]?.name, host, 'the user is named after the host the apiserver dials')
    await writeFile(join(dir, 'admission-config.yaml'), admissionConfig)
    await writeFile(join(dir, 'webhook-kubeconfig.yaml'), kubeconfig)

    const cp = await startControlPlane({ apiserverArgs: [`--admission-control-config-file=${join(dir, 'admission-config.yaml')}`] })
    t.teardown(() => cp.stop())
    await register(cp, guard)
    const before = admissions()
    const dry = await dryRun(cp)
    t.equal(dry.code, 0, `dry-run accepted: ${dry.stderr}`)
    t.equal((JSON.parse(dry.stdout) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[TYPE], 'nlb', 'and corrected by nlb-guard')
    t.match(dry.stderr, /Warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)

    // The ServiceCIDR that allocates ClusterIPs is bootstrapped after /readyz: retry until it is.
    let stored = await cp.kubectl(['apply', '-f', '-'], { input: udpService('dns'), allowFail: true })
    for (let i = 0; stored.code !== 0 && i < 60; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      stored = await cp.kubectl(['apply', '-f', '-'], { input: udpService('dns'), allowFail: true })
    }
    t.equal(stored.code, 0, `kubectl apply: ${stored.stderr}`)
    const annotation = await cp.kubectl(['get', 'service', 'dns', '-n', 'e2e', '-o', `jsonpath={.metadata.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type}`])
    t.equal(annotation.stdout, 'nlb', 'stored corrected')
    t.ok(admissions() > before, 'nlb-guard answered the apiserver')
  })
})
