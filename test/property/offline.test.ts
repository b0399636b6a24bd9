// check/fix and /mutate give the same answers: the offline engine and the admission path run the
// same rules, so on any generated Service (and any Pod behind generated Services) the object fix
// prints is the object /mutate's patch makes, and a denial is a denial on both sides (issue 16).
import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { parse, stringify } from 'yaml'
import { admit, type Admission } from '../../webhook/admission/handler.js'
import { podRules } from '../../webhook/admission/pod-rules.js'
import { decodeReview } from '../../webhook/admission/review.js'
import { parseConfig } from '../../webhook/config.js'
import type { Service } from '../../webhook/k8s/objects.js'
import { fixManifests } from '../../webhook/offline/fix.js'
import { YAML_OPTIONS } from '../../webhook/offline/manifests.js'
import type { KubeVersion } from '../../webhook/rules/version.js'
import { cachedServiceFor, gate, kubeVersion, NUM_RUNS, pod, service, sidecarConfig, unbuildablePolicy, type JsonObject } from './fixtures/arbitraries.js'

type Config = ReturnType<typeof parseConfig>

function mutate(kind: 'Service' | 'Pod', object: JsonObject, namespace: string | undefined, version: KubeVersion, config: Config, cache: readonly Service[] = []): Admission {
  const review = decodeReview(JSON.parse(JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u', kind: { group: '', version: 'v1', kind }, resource: { group: '', version: 'v1', resource: `${kind.toLowerCase()}s` }, namespace, operation: 'CREATE', userInfo: { username: 'u' }, object },
  })))
  return admit(review.request, 'mutate', {
    config,
    clusterVersion: () => version,
    rules: podRules({ servicesIn: (ns) => cache.filter((s) => (s.metadata?.namespace ?? 'default') === ns) }, config.sidecar),
  })
}

/** What /mutate stores: the object with its patch applied, or undefined when denied. */
function stored(object: JsonObject, admission: Admission): JsonObject | undefined {
  if (!admission.response.allowed) return undefined
  if (admission.response.patch === undefined) return object
  const ops = JSON.parse(Buffer.from(admission.response.patch, 'base64').toString()) as fastJsonPatch.Operation[]
  return fastJsonPatch.applyPatch(structuredClone(object), ops, true, false).newDocument
}

/** The manifest as a user writes it: YAML 1.1 as kubectl reads it, or JSON. */
const asText = (objects: readonly JsonObject[], json: boolean): string =>
  json ? JSON.stringify(objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects }) : objects.map((o) => stringify(o, { version: '1.1' })).join('---\n')

function offline(objects: readonly JsonObject[], json: boolean, version: KubeVersion, config: Config) {
  const result = fixManifests([{ name: json ? 'in.json' : 'in.yaml', text: asText(objects, json) }], { version, config })
  const text = result.outputs[0]?.text ?? ''
  const out = json ? JSON.parse(text) : text.split(/^---\n/m).map((d) => parse(d, YAML_OPTIONS))
  const printed = (json ? (objects.length === 1 ? [out] : out.items) : out) as JsonObject[]
  return { findings: result.findings, printed }
}

const counts = new Map<string, number>()
t.teardown(() => console.log(`# offline = /mutate: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`))

t.test('Services: fix prints what /mutate stores; check finds a change or denial exactly when /mutate patches or denies', async (t) => {
  fc.assert(
    fc.property(service, kubeVersion, gate, unbuildablePolicy, fc.boolean(), (object, version, mixed, policy, json) => {
      const config = parseConfig({ mixedProtocolLBService: mixed, unbuildableMixedProtocol: policy, excludedNamespaces: [] })
      const meta = object['metadata'] as { namespace?: string } | null | undefined
      const admission = mutate('Service', object, meta?.namespace, version, config)
      counts.set(admission.outcome, (counts.get(admission.outcome) ?? 0) + 1)
      if (admission.outcome === 'error') return // not a Service the schema reads: the offline error path is tested apart
      const { findings, printed } = offline([object], json, version, config)
      const denial = findings.find((f) => f.action === 'deny')
      if ((denial !== undefined) !== (admission.outcome === 'denied')) throw new Error(`offline ${denial ? 'denied' : 'allowed'}, /mutate ${admission.outcome}`)
      if (denial !== undefined) {
        if (!admission.response.status?.message?.startsWith(denial.message.slice(0, 200))) throw new Error(`denial messages differ:\n${denial.message}\n${admission.response.status?.message}`)
        return
      }
      const rules = [...new Set(findings.filter((f) => f.action === 'change').map((f) => f.rule))].sort()
      if (!isDeepStrictEqual(rules, [...admission.rules].sort())) throw new Error(`rules ${rules} offline, ${admission.rules} at /mutate`)
      const expected = stored(object, admission)
      if (!isDeepStrictEqual(printed[0], expected)) throw new Error(`fix printed\n${JSON.stringify(printed[0])}\n/mutate stores\n${JSON.stringify(expected)}`)
    }),
    { numRuns: NUM_RUNS },
  )
  t.pass('no counterexample')
})

t.test('Pods: fix gives a pod the sidecar /mutate gives it, against the same stored Services', async (t) => {
  const podCase = fc.record({ pod, version: kubeVersion, sidecar: sidecarConfig, json: fc.boolean() }).chain((c) => {
    const labels = ((c.pod['metadata'] as { labels?: Record<string, string> | null } | null | undefined)?.labels ?? {}) as Record<string, string>
    return fc.record({ c: fc.constant(c), services: fc.array(cachedServiceFor(labels), { maxLength: 3 }) })
  })
  fc.assert(
    fc.property(podCase, ({ c, services }) => {
      const config = parseConfig({ excludedNamespaces: [], sidecar: { ...c.sidecar, mutateWorkloads: false } })
      // The pod lives where the request says; offline reads that from the object.
      const namespace = 'demo'
      const object = structuredClone(c.pod)
      if (object['metadata'] == null || typeof object['metadata'] !== 'object') object['metadata'] = {}
      ;(object['metadata'] as JsonObject)['namespace'] = namespace
      // The cache holds Services as /mutate stored them (denied ones never were).
      const cache = services.flatMap((s) => {
        const kept = stored(s as JsonObject, mutate('Service', s as JsonObject, (s.metadata as { namespace: string }).namespace, c.version, config))
        return kept === undefined ? [] : [kept]
      })
      const admission = mutate('Pod', object, namespace, c.version, config, cache as Service[])
      counts.set(`pod ${admission.outcome}`, (counts.get(`pod ${admission.outcome}`) ?? 0) + 1)
      if (admission.outcome === 'error') return
      const { findings, printed } = offline([...cache, object], c.json, c.version, config)
      if (findings.some((f) => f.action === 'error')) throw new Error(`offline could not read: ${JSON.stringify(findings.filter((f) => f.action === 'error'))}`)
      const expected = stored(object, admission)
      if (!isDeepStrictEqual(printed.at(-1), expected)) throw new Error(`fix printed\n${JSON.stringify(printed.at(-1))}\n/mutate stores\n${JSON.stringify(expected)}`)
    }),
    { numRuns: NUM_RUNS },
  )
  t.pass('no counterexample')
})
