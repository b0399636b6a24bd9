import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import type { AdmissionDeps, AdmissionMode } from '../../webhook/admission/handler.js'
import { admit } from '../../webhook/admission/handler.js'
import { podRules } from '../../webhook/admission/pod-rules.js'
import { decodeReview, ReviewDecodeError } from '../../webhook/admission/review.js'
import { parseConfig } from '../../webhook/config.js'
import type { Service } from '../../webhook/k8s/objects.js'
import {
  cachedServiceFor,
  gate,
  kubeVersion,
  NUM_RUNS,
  pod,
  service,
  sidecarConfig,
  unbuildablePolicy,
  WORKLOAD_WRAPPERS,
  type JsonObject,
  labelCounter,
} from './fixtures/arbitraries.js'

const count = labelCounter(t)

const CORE = { group: '', version: 'v1' }
const KINDS = [
  { ...CORE, kind: 'Service' },
  { ...CORE, kind: 'Pod' },
  { group: 'apps', version: 'v1', kind: 'Deployment' },
  { group: 'batch', version: 'v1', kind: 'CronJob' },
  { group: 'example.com', version: 'v1', kind: 'Service' },
  { ...CORE, kind: 'ConfigMap' },
]

/** Objects of every shape: the right kind, another kind, workloads, and arbitrary JSON. */
const anyObject: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: service },
  { weight: 4, arbitrary: pod },
  { weight: 2, arbitrary: fc.tuple(pod, fc.constantFrom(...WORKLOAD_WRAPPERS)).map(([p, [, wrap]]) => wrap(p)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, 'x', 7, [], {}) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      { metadata: { name: 5 } },
      { metadata: { annotations: { a: 1 } } },
      { metadata: { labels: [] } },
      { spec: { ports: [{ port: '80' }] } },
      { spec: { ports: {} } },
      { spec: { containers: [{ ports: [] }] } },
      { spec: { containers: [{ name: 'a', ports: [{ containerPort: 1.5 }] }] } },
      { spec: { template: { spec: { containers: 'no' } } } },
      { spec: { jobTemplate: { spec: { template: 7 } } } },
    ),
  },
)

/** Mostly an object of the request's kind, sometimes anything at all. */
function objectFor(kind: string): fc.Arbitrary<unknown> {
  const matching =
    kind === 'Service' ? service
    : kind === 'Pod' ? pod
    : kind === 'Deployment' || kind === 'CronJob' ? pod.map((p) => (WORKLOAD_WRAPPERS.find(([k]) => k === kind) ?? WORKLOAD_WRAPPERS[0]!)[1](p))
    : anyObject
  return fc.oneof({ weight: 4, arbitrary: matching }, { weight: 1, arbitrary: anyObject })
}

const admissionCase = fc.constantFrom(...KINDS, KINDS[0]!, KINDS[0]!, KINDS[1]!).chain((kind) => fc.record({
  apiVersion: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'),
  uid: fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' })),
  kind: fc.constant(kind),
  operation: fc.constantFrom('CREATE', 'CREATE', 'CREATE', 'UPDATE', 'UPDATE', 'DELETE', 'CONNECT'),
  namespace: fc.constantFrom(undefined, 'demo', 'demo', 'prod', 'kube-system'),
  name: fc.constantFrom(undefined, 'echo', 'web'),
  object: objectFor(kind.kind),
  oldObject: fc.oneof(fc.constant(null), objectFor(kind.kind)),
  mode: fc.constantFrom<AdmissionMode>('mutate', 'validate'),
  versionKnown: fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  version: kubeVersion,
  gate,
  policy: unbuildablePolicy,
  sidecar: sidecarConfig,
  services: fc.array(cachedServiceFor({ app: 'sip', tier: 'edge', 'a~b': 'v1' }), { maxLength: 3 }),
}))
type AdmissionCase = typeof admissionCase extends fc.Arbitrary<infer T> ? T : never

function depsFor(c: AdmissionCase): AdmissionDeps {
  const services = c.services as unknown as Service[]
  return {
    config: parseConfig({ mixedProtocolLBService: c.gate, unbuildableMixedProtocol: c.policy }),
    clusterVersion: () => (c.versionKnown ? c.version : undefined),
    rules: podRules({ servicesIn: (namespace) => services.filter((s) => s.metadata?.namespace === namespace) }, c.sidecar),
  }
}

/** The review as the apiserver would put it on the wire (JSON drops `undefined`). */
function wireReview(c: AdmissionCase): unknown {
  const request = {
    uid: c.uid,
    kind: c.kind,
    resource: { group: c.kind.group, version: c.kind.version, resource: `${c.kind.kind.toLowerCase()}s` },
    name: c.name,
    namespace: c.namespace,
    operation: c.operation,
    userInfo: { username: 'admin' },
    object: c.object,
    oldObject: c.oldObject,
    dryRun: false,
  }
  return JSON.parse(JSON.stringify({ apiVersion: c.apiVersion, kind: 'AdmissionReview', request }))
}

t.test('admit() over generated requests never throws, always echoes the uid, and its patches apply', async (t) => {
  fc.assert(
    fc.property(admissionCase, (c) => {
      const review = decodeReview(wireReview(c))
      const { response, outcome } = admit(review.request, c.mode, depsFor(c))
      const code = response.status?.code
      count('admit()', `${c.mode} ${outcome}${code === undefined ? '' : ` ${code}`}`)
      if (response.uid !== c.uid) throw new Error(`uid ${JSON.stringify(response.uid)} for ${JSON.stringify(c.uid)}`)
      if (response.allowed !== (code === undefined)) throw new Error(`allowed ${response.allowed} with status ${JSON.stringify(response.status)}`)
      if (code === 500 && c.versionKnown) throw new Error(`500 with a known cluster version: ${response.status?.message}`)
      if (code !== undefined && ![400, 403, 500].includes(code)) throw new Error(`status code ${code}`)
      if (response.patch !== undefined) {
        if (c.mode !== 'mutate') throw new Error('the validating webhook patched')
        const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as fastJsonPatch.Operation[]
        if (ops.length === 0) throw new Error('an empty patch was sent')
        fastJsonPatch.applyPatch(structuredClone(review.request.object as JsonObject), ops, true, false)
      }
    }),
    { numRuns: NUM_RUNS * 2 },
  )
  t.pass('no counterexample')
})

t.test('decodeReview() over arbitrary JSON throws only ReviewDecodeError, with the uid when there is one', async (t) => {
  const almostReview = fc.record(
    {
      apiVersion: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 'v1') }, { weight: 1, arbitrary: fc.jsonValue() }),
      kind: fc.oneof({ weight: 6, arbitrary: fc.constant('AdmissionReview') }, { weight: 1, arbitrary: fc.jsonValue() }),
      request: fc.oneof(
        fc.record(
          {
            uid: fc.oneof({ weight: 6, arbitrary: fc.string() }, { weight: 1, arbitrary: fc.jsonValue() }),
            kind: fc.oneof({ weight: 6, arbitrary: fc.constant({ group: '', version: 'v1', kind: 'Service' }) }, { weight: 1, arbitrary: fc.jsonValue() }),
            operation: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('CREATE', 'UPDATE', 'PATCH') }, { weight: 1, arbitrary: fc.jsonValue() }),
            object: fc.jsonValue(),
          },
          { requiredKeys: ['uid'] },
        ),
        fc.jsonValue(),
      ),
    },
    { requiredKeys: [] },
  )
  fc.assert(
    fc.property(fc.oneof({ weight: 4, arbitrary: almostReview }, { weight: 1, arbitrary: fc.jsonValue() }), (body) => {
      let decoded
      try {
        decoded = decodeReview(body)
      } catch (error: unknown) {
        if (!(error instanceof ReviewDecodeError)) throw error
        const request = (body as { request?: { uid?: unknown } } | null)?.request
        const uid = typeof request?.uid === 'string' && request.uid !== '' ? request.uid : undefined
        if (error.uid !== uid) throw new Error(`error uid ${error.uid} for ${JSON.stringify(uid)}`)
        count('decodeReview()', error.uid === undefined ? 'rejected, no uid' : 'rejected with uid')
        return
      }
      count('decodeReview()', 'decoded')
      if (decoded.request.uid === '') throw new Error('empty uid accepted')
    }),
    { numRuns: NUM_RUNS },
  )
  t.pass('no counterexample')
})
