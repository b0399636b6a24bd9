// Certificate bootstrap against a real kube-apiserver: two replicas starting together, caBundle
// injection, drift repair, and `certs inject`.
import type { ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { KubeConfig } from '@kubernetes/client-node'
import t from 'tap'
import { pemCertificates } from '../../certs/bundle.js'
import { ConflictError } from '../../certs/errors.js'
import { kubeWebhookConfigurationClient } from '../../certs/kube-client.js'
import { freePort, runCli, spawnCli, waitFor } from '../fixtures/cli.js'
import { startControlPlane } from './harness.js'
import { metricsText } from './nlb-guard.js'

t.setTimeout(10 * 60_000)

const NAMESPACE = 'nlb-guard-system'
const SERVICE_NAME = 'nlb-guard.nlb-guard-system.svc'
const WRONG_BUNDLE = Buffer.from(
  '-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw\n-----END CERTIFICATE-----\n',
).toString('base64')

function configuration(kind: 'Mutating' | 'Validating', name: string, port: number, caBundle?: string) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: `${kind}WebhookConfiguration`,
    metadata: { name },
    webhooks: ['services', 'pods'].map((resource) => ({
      name: `${resource}.${name}.nlb-guard.io`,
      // Nothing in this test is labelled so: the apiserver never calls these webhooks.
      namespaceSelector: { matchLabels: { 'nlb-guard-e2e': 'never' } },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: [resource] }],
      clientConfig: { url: `https://127.0.0.1:${port}/${kind === 'Mutating' ? 'mutate' : 'validate'}`, ...(caBundle !== undefined && { caBundle }) },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Ignore',
    })),
  }
}

function readyz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject)
  })
}

/** The certificate a TLS client trusting only `ca` sees for the Service name, as the apiserver would. */
function servedCertificate(port: number, ca: string): Promise<{ serialNumber: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: SERVICE_NAME, rejectUnauthorized: false }, () => {
      const authorized = socket.authorized && socket.getPeerCertificate().subjectaltname?.includes(`DNS:${SERVICE_NAME}`) === true
      resolve({ serialNumber: socket.getPeerCertificate().serialNumber.toUpperCase(), authorized })
      socket.end()
    })
    socket.once('error', reject)
  })
}

t.test('serve --cert-mode bootstrap against a real apiserver', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  const dir = t.testdir()
  const apply = (object: unknown) => cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(object) })
  const jsonpath = async (args: string[], path: string) => (await cp.kubectl([...args, '-o', `jsonpath=${path}`])).stdout

  await cp.kubectl(['create', 'namespace', NAMESPACE])
  const ports = [await freePort(), await freePort()]
  const metricsPorts = [await freePort(), await freePort()]
  await apply(configuration('Mutating', 'nlb-guard', ports[0] ?? 0))
  await apply(configuration('Validating', 'nlb-guard', ports[0] ?? 0))
  const otherBundle = Buffer.from('not ours').toString('base64')
  await apply(configuration('Validating', 'someone-else', 1, otherBundle))

  // Drift must be repaired within a few seconds here, not the production 15.
  const configFile = join(dir, 'config.yaml')
  await writeFile(configFile, 'certSyncSeconds: 2\nsidecar:\n  injection: never\n')
  const logs = ['', '']
  const children: ChildProcess[] = ports.map((port, index) => {
    const child = spawnCli(
      [
        'serve',
        '--config', configFile,
        '--cert-mode', 'bootstrap',
        '--kubeconfig', cp.kubeconfig,
        '--namespace', NAMESPACE,
        '--webhook-name', 'nlb-guard',
        '--address', '127.0.0.1',
        '--port', String(port),
        '--metrics-port', String(metricsPorts[index]),
        '--shutdown-delay', '0',
      ],
      // Not "in a pod", whatever the machine running the tests is.
      { env: { KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '' } },
    )
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (logs[index] += chunk))
    return child
  })
  t.teardown(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  })

  for (const [index, port] of metricsPorts.entries()) {
    await waitFor(`replica ${index} ready`, async () => (await readyz(port)) === 200, 60_000).catch((error: unknown) => {
      t.comment(logs[index])
      throw error
    })
  }

  t.test('one Secret, one CA, served by both replicas', async (t) => {
    const secrets = await jsonpath(['get', 'secrets', '-n', NAMESPACE], '{.items[*].metadata.name}')
    t.equal(secrets, 'nlb-guard-tls', 'exactly one Secret')
    const keys = JSON.parse(await jsonpath(['get', 'secret', 'nlb-guard-tls', '-n', NAMESPACE], '{.data}')) as Record<string, string>
    t.strictSame(Object.keys(keys).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'])
    const caPem = Buffer.from(keys['ca.crt'] ?? '', 'base64').toString('utf8')
    const serial = new X509Certificate(Buffer.from(keys['tls.crt'] ?? '', 'base64')).serialNumber
    for (const [index, port] of ports.entries()) {
      t.strictSame(await servedCertificate(port, caPem), { serialNumber: serial, authorized: true }, `replica ${index} serves the Secret's certificate for ${SERVICE_NAME}`)
    }
    const creations = logs.join('').match(/new CA and serving certificate stored in the Secret/g) ?? []
    t.equal(creations.length, 1, 'one replica created the CA; the other used it')
  })

  t.test('caBundle is in every webhook of our two configurations, and nowhere else', async (t) => {
    const caPem = Buffer.from(await jsonpath(['get', 'secret', 'nlb-guard-tls', '-n', NAMESPACE], '{.data.ca\\.crt}'), 'base64').toString('utf8')
    const expected = Buffer.from(pemCertificates(caPem).join('')).toString('base64')
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      const bundles = (await jsonpath(['get', kind, 'nlb-guard'], '{.webhooks[*].clientConfig.caBundle}')).split(' ')
      t.strictSame(bundles, [expected, expected], `${kind}: both webhooks`)
    }
    t.equal(await jsonpath(['get', 'validatingwebhookconfiguration', 'someone-else'], '{.webhooks[*].clientConfig.caBundle}'), `${otherBundle} ${otherBundle}`)
  })

  t.test('a caBundle overwritten with kubectl is repaired', async (t) => {
    const before = await jsonpath(['get', 'validatingwebhookconfiguration', 'nlb-guard'], '{.webhooks[1].clientConfig.caBundle}')
    await cp.kubectl([
      'patch', 'validatingwebhookconfiguration', 'nlb-guard', '--type=json',
      '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/1/clientConfig/caBundle', value: WRONG_BUNDLE }]),
    ])
    await waitFor(
      'the repair',
      async () => (await jsonpath(['get', 'validatingwebhookconfiguration', 'nlb-guard'], '{.webhooks[1].clientConfig.caBundle}')) === before,
      15_000,
    )
    t.pass('caBundle put back')
    await waitFor('the log line', async () => /caBundle drift repaired/.test(logs.join('')), 5000)
    const repairs = await Promise.all(
      metricsPorts.map(async (port) => Number(/nlb_guard_ca_bundle_drift_repairs_total\{configuration="validating"\} (\d+)/.exec(await metricsText(port))?.[1] ?? 0)),
    )
    t.ok(repairs.reduce((a, b) => a + b, 0) >= 1, `counted (${repairs.join(' + ')})`)
  })

  t.test('client-node: a JSON Patch whose test op fails is a ConflictError', async (t) => {
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromFile(cp.kubeconfig)
    const client = kubeWebhookConfigurationClient(kubeConfig)
    await t.rejects(
      client.patch('validating', 'someone-else', [
        { op: 'test', path: '/webhooks/0/name', value: 'not-the-name' },
        { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: WRONG_BUNDLE },
      ]),
      ConflictError,
    )
    t.equal(await client.read('mutating', 'absent'), undefined, '404 reads as undefined')
  })

  t.test('nlb-guard certs inject', async (t) => {
    const out = join(dir, 'generated')
    t.equal((await runCli(['certs', 'generate', '--service', 'x', '--namespace', 'y', '--out', out])).code, 0)
    await apply(configuration('Mutating', 'manual', 1))
    const result = await runCli(['certs', 'inject', '--name', 'manual', '--ca-file', join(out, 'ca.crt'), '--kubeconfig', cp.kubeconfig])
    t.equal(result.code, 0, result.stderr)
    t.equal(
      result.stdout,
      'MutatingWebhookConfiguration manual: caBundle set to 1 CA certificate on services.manual.nlb-guard.io, pods.manual.nlb-guard.io\n' +
        'ValidatingWebhookConfiguration manual: not found, skipped\n',
    )
    const bundle = await jsonpath(['get', 'mutatingwebhookconfiguration', 'manual'], '{.webhooks[0].clientConfig.caBundle}')
    t.ok(new X509Certificate(Buffer.from(bundle, 'base64')).ca, 'the CA is there')
    const missing = await runCli(['certs', 'inject', '--name', 'absent', '--ca-file', join(out, 'ca.crt'), '--kubeconfig', cp.kubeconfig])
    t.equal(missing.code, 1)
    t.match(missing.stderr, /there is no MutatingWebhookConfiguration or ValidatingWebhookConfiguration named "absent"/)
  })

  t.test('both replicas shut down cleanly', async (t) => {
    for (const child of children) child.kill('SIGTERM')
    const codes = await Promise.all(children.map(async (child) => ((await once(child, 'exit')) as [number | null])[0]))
    t.strictSame(codes, [0, 0])
  })
})
