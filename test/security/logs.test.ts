import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { httpsRequest } from '../fixtures/https.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { serve } from '../fixtures/serve.js'

t.setTimeout(60_000)

/**
 * The log names objects and says what happened; it never holds object contents (annotation values,
 * env values, selectors) or key material, at any level, on any path: admitted, patched, denied,
 * malformed, not JSON, wrong content type.
 */
t.test('serve --log-level debug logs names, never contents or keys', async (t) => {
  const server = await serve(t, { args: ['--log-level', 'debug'] })
  const secret = (what: string) => `s3cr3t-${what}-${randomBytes(6).toString('hex')}`
  const secrets = {
    annotation: secret('annotation'),
    deniedAnnotation: secret('denied-annotation'),
    label: secret('label'),
    selector: secret('selector'),
    env: secret('env'),
    templateEnv: secret('template-env'),
    malformed: secret('malformed'),
    notJson: secret('not-json'),
    yaml: secret('yaml'),
    notReview: secret('not-a-review'),
    oldObject: secret('old-object'),
  }
  const post = (body: string, path = '/mutate', contentType?: string) =>
    httpsRequest({ port: server.port, path, ca: server.ca, body, ...(contentType === undefined ? {} : { contentType }) })

  const service = serviceObject({ name: 'svc-secret', annotations: { 'example.com/token': secrets.annotation } })
  ;(service['metadata'] as { labels?: Record<string, string> }).labels = { token: secrets.label }
  ;(service['spec'] as { selector: Record<string, string> }).selector = { token: secrets.selector }
  const denied = serviceObject({
    name: 'svc-denied',
    annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'classic', 'example.com/token': secrets.deniedAnnotation },
  })
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'pod-secret', namespace: 'demo' },
    spec: { containers: [{ name: 'app', image: 'app', env: [{ name: 'PASSWORD', value: secrets.env }] }] },
  }
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'deploy-secret', namespace: 'demo' },
    spec: { template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'app', env: [{ name: 'TOKEN', value: secrets.templateEnv }] }] } } },
  }

  const answers = await Promise.all([
    post(JSON.stringify(reviewFor(service, { uid: 'log-patched' }))),
    post(JSON.stringify(reviewFor(service, { uid: 'log-validate' })), '/validate'),
    post(JSON.stringify(reviewFor(denied, { uid: 'log-denied' }))),
    post(JSON.stringify(reviewFor(service, { uid: 'log-update', operation: 'UPDATE', oldObject: { ...service, metadata: { name: 'svc-secret', annotations: { old: secrets.oldObject } } } }))),
    post(JSON.stringify(reviewFor(pod, { uid: 'log-pod', kind: { group: '', version: 'v1', kind: 'Pod' } }))),
    post(JSON.stringify(reviewFor(deployment, { uid: 'log-deployment', kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }))),
    post(JSON.stringify(reviewFor({ metadata: { name: 'svc-malformed' }, spec: { type: 'LoadBalancer', ports: secrets.malformed } }, { uid: 'log-malformed' }))),
    post(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"token":"${secrets.notJson}"`),
    post(`kind: AdmissionReview\ntoken: ${secrets.yaml}\n`, '/mutate', 'application/yaml'),
    post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'log-not-review', token: secrets.notReview, kind: 'Service' } })),
  ])
  const statuses = answers.map((a) => a.status)
  t.same(statuses, [200, 200, 200, 200, 200, 200, 200, 400, 415, 200], 'every request was answered')
  t.match(JSON.parse(answers[2]?.body ?? '{}'), { response: { allowed: false } }, 'the denial went through')
  t.equal(await server.stop(), 0)

  const log = server.log()
  if (process.env['NLB_GUARD_SHOW_LOG']) console.log(log)
  const lines = log.split('\n').filter((line) => line !== '')
  t.ok(lines.every((line) => JSON.parse(line) !== null), 'every line is JSON')
  for (const uid of ['log-patched', 'log-validate', 'log-denied', 'log-update', 'log-pod', 'log-deployment', 'log-malformed', 'log-not-review']) {
    t.match(log, `"uid":"${uid}"`, `${uid} is logged`)
  }
  t.match(log, /"name":"svc-secret"/, 'objects are named')
  for (const [where, value] of Object.entries(secrets)) t.notMatch(log, value, `no ${where} value in the log`)
  const key = await readFile(join(server.dir, 'tls.key'), 'utf8')
  const keyBody = key.split('\n')[1] ?? 'no key line'
  t.notMatch(log, /PRIVATE KEY/, 'no PEM private key header in the log')
  t.notOk(log.includes(keyBody), 'no line of the serving key in the log')
  t.notMatch(log, /BEGIN CERTIFICATE/, 'no certificates in the log')
})
