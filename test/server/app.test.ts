import t from 'tap'
import { selfSignedForLocalhost } from '../../certs/issue.js'
import { parseConfig } from '../../webhook/config.js'
import { parseKubeVersion, type KubeVersion } from '../../webhook/rules/version.js'
import { BODY_LIMIT, buildServer } from '../../webhook/server/app.js'
import { createMetrics } from '../../webhook/server/metrics.js'
import { Readiness } from '../../webhook/server/readiness.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'

const { serving } = selfSignedForLocalhost(new Date())

function setup(options: { version?: KubeVersion | undefined } = { version: parseKubeVersion('1.30.0') }) {
  const metrics = createMetrics({ defaultMetrics: false })
  const readiness = new Readiness()
  const lines: string[] = []
  const app = buildServer({
    tls: { cert: serving.certPem, key: serving.keyPem },
    metrics,
    readiness,
    logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    admission: { config: parseConfig({}), clusterVersion: () => options.version },
  })
  t.teardown(() => app.close())
  return { app, metrics, readiness, lines }
}

function decodePatch(response: { patch?: string }): unknown {
  return response.patch === undefined ? undefined : JSON.parse(Buffer.from(response.patch, 'base64').toString())
}

t.test('a v1 review of a UDP Service is patched, in v1, with the uid echoed', async (t) => {
  const { app, metrics, lines } = setup()
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true }), { uid: 'u-1' }) })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.apiVersion, 'admission.k8s.io/v1')
  t.equal(body.kind, 'AdmissionReview')
  t.equal(body.response.uid, 'u-1')
  t.equal(body.response.allowed, true)
  t.equal(body.response.patchType, 'JSONPatch')
  t.same(decodePatch(body.response), [
    { op: 'add', path: '/metadata/annotations', value: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' } },
  ])
  t.match(body.response.warnings[0], /Classic ELB cannot carry UDP/)
  t.match(body.response.auditAnnotations, { decision: 'mutated', rules: 'S2', changes: /aws-load-balancer-type: "nlb".*Classic ELB/ }, 'the audit log says what was changed and why')
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_admission_requests_total'), /result="patched"\} 1/)
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_mutations_total'), /rule="S2",dry_run="false"\} 1/)
  const log = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'admission')
  t.match(log, { uid: 'u-1', kind: 'Service', namespace: 'demo', name: 'echo', operation: 'CREATE', decision: 'patched', rules: ['S2'] })
  t.notMatch(lines.join(''), /selector|12345/, 'the log names the object but holds none of its contents')
})

t.test('a dry run is counted apart, and the validating webhook\'s "would have" is no mutation', async (t) => {
  const { app, metrics } = setup()
  const dryRun = reviewFor(serviceObject({ udp: true }), { uid: 'd-1' }) as { request: Record<string, unknown> }
  dryRun.request['dryRun'] = true
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: dryRun })
  t.equal(res.json().response.patchType, 'JSONPatch', 'a dry run is answered like a write')
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_mutations_total'), /rule="S2",dry_run="true"\} 1/)
  t.notMatch(await metrics.registry.getSingleMetricAsString('nlb_guard_mutations_total'), /dry_run="false"/, 'and is not a change')
  // A Local UDP NLB without cross-zone: /validate says what the mutating webhook would have done.
  const validated = await app.inject({ method: 'POST', url: '/validate', payload: reviewFor(serviceObject({ udp: true, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' }, local: true })) })
  t.match(validated.json().response.warnings[0], /^nlb-guard would have/)
  t.notMatch(await metrics.registry.getSingleMetricAsString('nlb_guard_mutations_total'), /dry_run="false"/, '"would have" changes nothing')
})

t.test('a v1beta1 review is answered in v1beta1', async (t) => {
  const { app } = setup()
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true }), { uid: 'b-1', apiVersion: 'admission.k8s.io/v1beta1' }) })
  t.equal(res.json().apiVersion, 'admission.k8s.io/v1beta1')
  t.equal(res.json().response.uid, 'b-1')
  t.equal(res.json().response.patchType, 'JSONPatch')
})

t.test('a TCP Service needs no patch', async (t) => {
  const { app } = setup()
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: false })) })
  t.same(res.json().response, { uid: 'uid-1', allowed: true }, 'nothing changed: no audit annotation either')
})

t.test('the mutating webhook denies mixed protocols on an old cluster', async (t) => {
  const { app, metrics } = setup({ version: parseKubeVersion('1.19.16') })
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true, tcp: true })) })
  const { response } = res.json()
  t.equal(response.allowed, false)
  t.equal(response.status.code, 403)
  t.match(response.status.message, /TCP and UDP.*Kubernetes 1\.19\.16.*"echo-tcp".*"echo-udp"/s)
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_denials_total'), /rule="S1",dry_run="false"\} 1/)
  t.match(response.auditAnnotations, { decision: 'denied', rules: 'S1', reason: /TCP and UDP/ }, 'the audit log says what was denied and why')
})

t.test('/validate never patches: it reports changes, and denies a missing required one', async (t) => {
  const { app } = setup()
  const udp = await app.inject({ method: 'POST', url: '/validate', payload: reviewFor(serviceObject({ udp: true })) })
  t.equal(udp.json().response.allowed, false, 'a UDP Service without the NLB type would get a Classic ELB')
  t.equal(udp.json().response.patch, undefined)
  t.match(udp.json().response.status.message, /mutating webhook did not make a change/)
  const local = await app.inject({
    method: 'POST',
    url: '/validate',
    payload: reviewFor(serviceObject({ udp: true, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' }, local: true })),
  })
  t.equal(local.json().response.allowed, true)
  t.equal(local.json().response.patch, undefined)
  t.match(local.json().response.warnings[0], /^nlb-guard would have set annotation .*cross-zone/)
})

t.test('namespaces in excludedNamespaces are never touched', async (t) => {
  const { app } = setup()
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true }), { namespace: 'kube-system' }) })
  t.same(res.json().response, { uid: 'uid-1', allowed: true })
})

t.test('other kinds pass untouched', async (t) => {
  const { app } = setup()
  const review = reviewFor({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, { kind: { group: '', version: 'v1', kind: 'ConfigMap' } })
  t.same((await app.inject({ method: 'POST', url: '/mutate', payload: review })).json().response, { uid: 'uid-1', allowed: true })
})

t.test('while the cluster version is unknown, reviews get a 500 in the review and readiness says why', async (t) => {
  const { app, readiness } = setup({ version: undefined })
  readiness.add('cluster version', () => 'not known yet')
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true })) })
  t.match(res.json().response, { uid: 'uid-1', allowed: false, status: { code: 500 } })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json().reasons, ['cluster version: not known yet'])
})

t.test('readiness drops at shutdown; liveness stays', async (t) => {
  const { app, readiness } = setup()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  readiness.startShutdown()
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503)
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

const malformed: Array<{ name: string; payload: string | Buffer; contentType?: string; status: number; message: RegExp; reviewCode?: number }> = [
  { name: 'not JSON', payload: '{"apiVersion": ', status: 400, message: /JSON/i },
  { name: 'empty body', payload: '', status: 400, message: /empty/i },
  { name: 'wrong content type', payload: 'apiVersion: v1', contentType: 'application/yaml', status: 415, message: /content-type/i },
  { name: 'over the body limit', payload: Buffer.alloc(BODY_LIMIT + 1, 0x20), status: 413, message: /too large/i },
  { name: 'a JSON array', payload: '[]', status: 400, message: /not an AdmissionReview/ },
  { name: 'wrong kind', payload: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} }), status: 400, message: /kind/ },
  { name: 'wrong apiVersion', payload: JSON.stringify({ apiVersion: 'v1', kind: 'AdmissionReview' }), status: 400, message: /apiVersion/ },
  { name: 'no uid', payload: JSON.stringify({ ...reviewFor(serviceObject({ udp: true })), request: { ...reviewFor(serviceObject({ udp: true })).request, uid: undefined } }), status: 400, message: /request\.uid/ },
  { name: 'a prototype-poisoning body', payload: '{"__proto__": {"x": 1}}', status: 400, message: /JSON/ },
  {
    name: 'uid known, request malformed',
    payload: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-9', operation: 'FROB' } }),
    status: 200,
    message: /not an AdmissionReview/,
    reviewCode: 400,
  },
  {
    name: 'uid known, object not a Service',
    payload: JSON.stringify(reviewFor({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: 'all' } })),
    status: 200,
    message: /not a v1 Service: spec\.ports/,
    reviewCode: 400,
  },
]

for (const m of malformed) {
  t.test(`bad input: ${m.name}`, async (t) => {
    const { app, metrics } = setup()
    const res = await app.inject({ method: 'POST', url: '/mutate', payload: m.payload, headers: { 'content-type': m.contentType ?? 'application/json' } })
    t.equal(res.statusCode, m.status)
    const body = res.json()
    if (m.reviewCode !== undefined) {
      t.equal(body.response.allowed, false)
      t.equal(body.response.status.code, m.reviewCode)
      t.match(body.response.status.message, m.message)
    } else {
      t.equal(body.code, m.status)
      t.match(body.message, m.message)
      t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_bad_requests_total'), /\} 1/)
    }
    const after = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true })) })
    t.equal(after.json().response.patchType, 'JSONPatch', 'a valid review still succeeds afterwards')
  })
}

t.test('Pods: the rule reads only the request namespace from the lookup, and patches with the sidecar', async (t) => {
  const { podRules } = await import('../../webhook/admission/pod-rules.js')
  const config = parseConfig({})
  const asked: string[] = []
  const lookup = {
    servicesIn: (namespace: string) => {
      asked.push(namespace)
      return namespace === 'voip'
        ? [{ metadata: { name: 'sip', namespace: 'voip', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }, spec: { type: 'LoadBalancer', selector: { app: 'sip' }, ports: [{ port: 5060, protocol: 'UDP' }] } }]
        : []
    },
  }
  const app = buildServer({
    tls: { cert: serving.certPem, key: serving.keyPem },
    metrics: createMetrics({ defaultMetrics: false }),
    readiness: new Readiness(),
    logger: false,
    admission: { config, clusterVersion: () => parseKubeVersion('1.28.3'), rules: podRules(lookup, config.sidecar) },
  })
  t.teardown(() => app.close())
  const podKind = { group: '', version: 'v1', kind: 'Pod' }
  // No namespace in the object: the request's namespace is where the pod is created.
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'sip-', labels: { app: 'sip' } }, spec: { containers: [{ name: 'sip', image: 'sip' }] } }
  const res = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(pod, { kind: podKind, namespace: 'voip' }) })
  const { response } = res.json()
  t.equal(response.patchType, 'JSONPatch')
  const ops = decodePatch(response) as Array<{ path: string; value: { name?: string } }>
  t.equal(ops[0]?.path, '/spec/containers/-', 'before 1.29: a regular container')
  t.equal(ops[0]?.value.name, 'nlb-guard-healthcheck')
  t.same(asked, ['voip'])
  const elsewhere = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(pod, { kind: podKind, namespace: 'other' }) })
  t.same(elsewhere.json().response, { uid: 'uid-1', allowed: true }, 'a pod in another namespace is untouched')
  const update = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(pod, { kind: podKind, namespace: 'voip', operation: 'UPDATE' }) })
  t.same(update.json().response, { uid: 'uid-1', allowed: true }, 'only CREATE is mutated')
  const bad = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor({ kind: 'Pod', spec: { containers: 'x' } }, { kind: podKind }) })
  t.match(bad.json().response, { allowed: false, status: { code: 400, message: /not a v1 Pod/ } })
})

t.test('caller-written strings never become metric labels, and log lines stay bounded', async (t) => {
  const { app, metrics, lines } = setup()
  const exposition = async () => (await metrics.registry.metrics()).length
  // One request of each kind first, so the baseline already holds every series a request can create.
  await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor({ metadata: { name: 'x' } }, { kind: { group: 'example.com', version: 'v1', kind: 'Widget' } }) })
  const before = await exposition()
  const huge = (i: number) => `${String.fromCharCode(65 + i)}${'k'.repeat(256 * 1024)}`
  for (let i = 0; i < 10; i++) {
    const review = reviewFor({ metadata: { name: huge(i) } }, { uid: huge(i), namespace: huge(i), kind: { group: 'example.com', version: 'v1', kind: huge(i) } })
    const res = await app.inject({ method: 'POST', url: '/mutate', payload: review })
    t.equal(res.json().response.uid, huge(i), 'the uid is still echoed whole')
  }
  const after = await exposition()
  // Only counters' digits and the histogram's sums change: no new series (each would add over 256 KiB).
  t.ok(after - before < 256, `/metrics grew by ${after - before} bytes (${before} → ${after}): every unknown kind is counted as "other"`)
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_admission_requests_total'), /kind="other",operation="CREATE",result="allowed"\} 11/)
  const admissions = lines.filter((l) => l.includes('"msg":"admission"'))
  t.equal(admissions.length, 11)
  for (const line of admissions) t.ok(line.length < 2048, `an admission log line is ${line.length} characters`)
  const last = JSON.parse(admissions.at(-1) ?? '{}') as { kind: string; uid: string; namespace: string; name: string }
  t.match(last.kind, /^Jk{255}…\(261889 more characters\)$/, 'the log keeps the start of a long kind and says how much was cut')
  for (const field of ['uid', 'namespace', 'name'] as const) t.ok(last[field].length < 300, `${field} is bounded in the log`)
})

t.test('operation labels and bad-request reasons come from closed sets', async (t) => {
  const { kindLabel, operationLabel, badRequestReason, tlsFailureReason } = await import('../../webhook/server/metrics.js')
  t.same(['Service', 'Pod', 'Deployment', 'CronJob', 'ConfigMap', 'x'.repeat(1000)].map(kindLabel), ['Service', 'Pod', 'Deployment', 'CronJob', 'other', 'other'])
  t.same(['CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'PATCH'].map(operationLabel), ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'other'])
  t.same([badRequestReason('FST_ERR_CTP_BODY_TOO_LARGE'), badRequestReason('FST_ERR_SOMETHING_NEW'), badRequestReason(undefined)], ['FST_ERR_CTP_BODY_TOO_LARGE', 'other', 'other'])
  t.same([tlsFailureReason('CERT_HAS_EXPIRED'), tlsFailureReason('ECONNRESET'), tlsFailureReason('a client "wrote" this'), tlsFailureReason('A'.repeat(81))], ['CERT_HAS_EXPIRED', 'ECONNRESET', 'other', 'other'])
})

t.test('enforcement warn: counted apart from mutations and denials', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  const app = buildServer({
    tls: { cert: serving.certPem, key: serving.keyPem },
    metrics,
    readiness: new Readiness(),
    logger: false,
    admission: { config: parseConfig({ enforcement: 'warn' }), clusterVersion: () => parseKubeVersion('1.19.16') },
  })
  t.teardown(() => app.close())
  const udp = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true })) })
  t.equal(udp.json().response.patch, undefined)
  const mixed = await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true, tcp: true })) })
  t.equal(mixed.json().response.allowed, true)
  const warned = await metrics.registry.getSingleMetricAsString('nlb_guard_warn_only_total')
  t.match(warned, /rule="S2",action="change",dry_run="false"\} 1/)
  t.match(warned, /rule="S1",action="deny",dry_run="false"\} 1/)
  t.match(await metrics.registry.getSingleMetricAsString('nlb_guard_admission_requests_total'), /result="warned"\} 2/)
  t.notMatch(await metrics.registry.getSingleMetricAsString('nlb_guard_mutations_total'), /rule=/, 'no mutation counted')
  t.notMatch(await metrics.registry.getSingleMetricAsString('nlb_guard_denials_total'), /rule=/, 'no denial counted')
})

t.test("each admission's line, and a bad request's warning, carries the request's reqId as pino's child logger would", async (t) => {
  const { app, lines } = setup()
  await app.inject({ method: 'POST', url: '/mutate', payload: reviewFor(serviceObject({ udp: true }), { uid: 'r-1' }) })
  await app.inject({ method: 'POST', url: '/mutate', payload: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'r-2' } } })
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const admission = parsed.find((l) => l['msg'] === 'admission')
  const bad = parsed.find((l) => l['msg'] === 'bad request')
  t.match(admission, { level: 30, reqId: 'req-1', uid: 'r-1' })
  t.same(Object.keys(admission ?? {}).slice(0, 6), ['level', 'time', 'pid', 'hostname', 'reqId', 'uid'], 'the fields in the order they had')
  t.match(bad, { level: 40, reqId: 'req-2', uid: 'r-2' }, 'the request logger, made on first use, binds the reqId')
  t.equal(lines.filter((l) => l.includes('"reqId"')).length, 2, 'no line without it')
})
