// A forced rotation of the bootstrap serving certificate under kubectl load: the apiserver calls
// nlb-guard by URL with the caBundle nlb-guard injected itself, and no admission fails.
import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { issueServingCertificate, serviceDnsNames } from '../../certs/issue.js'
import { startControlPlane } from './harness.js'
import { pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(10 * 60_000)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('bootstrap: caBundle injected into the manifests\' configurations, rotation under load', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  const manifests = await renderManifests(cp)
  // The base's Namespace and RBAC, then its webhook configurations by URL and without caBundle:
  // nlb-guard must inject it before anything can be admitted.
  const rest = manifests.filter((m) => !/WebhookConfiguration$/.test(String(m.kind)) && m.kind !== 'Deployment')
  const webhooks = pointAt(manifests, { port: 0, ca: '' }).map((m) => m)
  const config = join(cp.dir, 'nlb-guard.yaml')
  await writeFile(config, 'certSyncSeconds: 1\n')
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(rest) })
  const guard = await startNlbGuard(
    ['--config', config, '--kubeconfig', cp.kubeconfig, '--cert-mode', 'bootstrap', '--namespace', 'nlb-guard-system', '--webhook-name', 'nlb-guard', '--cert-ip', '127.0.0.1'],
    { tlsFiles: false, waitReady: false },
  )
  t.teardown(() => guard.stop())
  const unbundled = webhooks.map((m) => ({
    ...m,
    webhooks: (m.webhooks ?? []).map((w) => ({ ...w, clientConfig: { url: String(w.clientConfig?.['url']).replace(':0/', `:${guard.port}/`) } })),
  }))
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(unbundled) })

  const bundle = async () => (await cp.kubectl(['get', 'mutatingwebhookconfiguration', 'nlb-guard', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout
  const servingSerial = async () => {
    const data = (await cp.kubectl(['get', 'secret', 'nlb-guard-tls', '-n', 'nlb-guard-system', '-o', 'jsonpath={.data.tls\\.crt}'], { allowFail: true })).stdout
    return data === '' ? '' : new X509Certificate(Buffer.from(data, 'base64')).serialNumber
  }
  const udp = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo-udp', namespace: 'default' }, spec: { type: 'LoadBalancer', selector: { app: 'echo' }, ports: [{ port: 53, protocol: 'UDP' }] } })
  const admitted = async () => {
    const r = await cp.kubectl(['apply', '--dry-run=server', '-o', 'jsonpath={.metadata.annotations}', '-f', '-'], { input: udp, allowFail: true })
    return r.code === 0 && r.stdout.includes('"service.beta.kubernetes.io/aws-load-balancer-type":"nlb"') ? null : r.stderr.trim() || r.stdout
  }
  for (let i = 0; (await admitted()) !== null; i++) {
    if (i > 120) throw new Error(`never admitted through the injected caBundle: ${await admitted()}\n${guard.log().slice(-2000)}`)
    await sleep(500)
  }
  t.not(await bundle(), '', 'caBundle injected by nlb-guard')
  const before = await servingSerial()

  // Load: kubectl dry-runs back to back, while the serving certificate is forced to rotate.
  let stop = false
  let ok = 0
  const failures: string[] = []
  const load = (async () => {
    while (!stop) {
      const failure = await admitted()
      if (failure === null) ok++
      else failures.push(failure)
    }
  })()
  let after = ''
  try {
    await sleep(1000)
    // A certificate from the same CA that expires in a day: inside the 30-day lookahead, as a
    // year-old certificate would be. nlb-guard must replace it without a failed admission.
    const secret = JSON.parse((await cp.kubectl(['get', 'secret', 'nlb-guard-tls', '-n', 'nlb-guard-system', '-o', 'json'])).stdout) as { data: Record<string, string> }
    const ca = { certPem: Buffer.from(secret.data['ca.crt'] ?? '', 'base64').toString(), keyPem: Buffer.from(secret.data['ca.key'] ?? '', 'base64').toString() }
    const expiring = issueServingCertificate({ ca, dnsNames: serviceDnsNames('nlb-guard', 'nlb-guard-system'), ipAddresses: ['127.0.0.1'], now: new Date(), validityDays: 1 })
    const b64 = (text: string) => Buffer.from(text).toString('base64')
    await cp.kubectl(['patch', 'secret', 'nlb-guard-tls', '-n', 'nlb-guard-system', '--type=merge', '-p', JSON.stringify({ data: { 'tls.crt': b64(expiring.certPem), 'tls.key': b64(expiring.keyPem) } })])
    const planted = new X509Certificate(expiring.certPem).serialNumber
    for (let i = 0; i < 120 && (after === '' || after === before || after === planted); i++) {
      await sleep(250)
      after = await servingSerial()
    }
    await sleep(3000)
  } finally {
    stop = true
    await load
  }
  t.not(after, before, `the serving certificate was reissued (${before} → ${after})`)
  t.match(guard.log(), /rotat|reissu/i, 'the rotation is logged')
  t.ok(ok > 5, `${ok} admissions through kubectl during the rotation`)
  t.same(failures, [], 'zero failed admissions')
})
