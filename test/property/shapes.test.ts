import fc from 'fast-check'
import t, { type Test } from 'tap'
import { AdmissionReview, isAdmissionReview } from '../../webhook/admission/review.js'
import { isPod, isService, Pod, Service } from '../../webhook/k8s/objects.js'
import { labelCounter, NUM_RUNS, service, pod } from './fixtures/arbitraries.js'

/*
 * The hand-written checks of the admission hot path (webhook/k8s/objects.ts, admission/review.ts)
 * against the zod schemas they stand in for: each accepts exactly what its schema accepts, and what
 * it accepts, the schema would have decoded to an equal value (so using the object uncopied changes
 * nothing). Values are built field by field from the right shape or any other JSON, so both sides
 * of every check come up.
 */

const count = labelCounter(t)

const other = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 3 }),
  fc.integer(),
  fc.constantFrom(1.5, 2 ** 60, -0),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.constant([1]),
  fc.constant({ a: 1 }),
)
/** The right value most of the time, anything else sometimes, or no key at all (fc.record's optional keys). */
const field = <T>(right: fc.Arbitrary<T>, weight = 6) => fc.oneof({ arbitrary: right, weight }, { arbitrary: other, weight: 1 })
const str = fc.string({ maxLength: 4 })
const int = fc.integer({ min: 0, max: 70_000 })
const stringMap = fc.oneof(fc.dictionary(str, field(str), { maxKeys: 3 }), fc.constant(null))
const loose = { withDeletedKeys: true, requiredKeys: [] as never[] }

const metadata = fc.record({ name: field(str), generateName: field(str), namespace: field(str), labels: field(stringMap), annotations: field(stringMap), deletionTimestamp: field(fc.oneof(str, fc.constant(null))), uid: other }, loose)
const servicePort = fc.record({ name: field(str), protocol: field(fc.constantFrom('TCP', 'UDP')), port: field(int), targetPort: field(fc.oneof(int, str)), nodePort: field(int), appProtocol: other }, { ...loose, requiredKeys: ['port'] })
const serviceSpec = fc.record(
  { type: field(str), ports: field(fc.oneof(fc.array(field(servicePort), { maxLength: 3 }), fc.constant(null))), selector: field(stringMap), loadBalancerClass: field(fc.oneof(str, fc.constant(null))), externalTrafficPolicy: field(str), clusterIP: other },
  loose,
)
const anyService = fc.oneof(service, fc.record({ apiVersion: field(str), kind: field(str), metadata: field(fc.oneof(metadata, fc.constant(null))), spec: field(fc.oneof(serviceSpec, fc.constant(null))), status: other }, loose), other)

const containerPort = fc.record({ name: field(str), containerPort: field(int), protocol: field(fc.constantFrom('TCP', 'UDP')), hostPort: other }, { ...loose, requiredKeys: ['containerPort'] })
const container = fc.record({ name: field(str), ports: field(fc.oneof(fc.array(field(containerPort), { maxLength: 3 }), fc.constant(null))), restartPolicy: field(str), image: other }, { ...loose, requiredKeys: ['name'] })
const containers = field(fc.oneof(fc.array(field(container), { maxLength: 3 }), fc.constant(null)))
const podSpec = fc.record({ containers, initContainers: containers, hostNetwork: field(fc.boolean()), volumes: other }, loose)
const anyPod = fc.oneof(pod, fc.record({ apiVersion: field(str), kind: field(str), metadata: field(fc.oneof(metadata, fc.constant(null))), spec: field(fc.oneof(podSpec, fc.constant(null))) }, loose), other)

/** The review's fields are many: each is wrong more rarely, so that whole reviews pass too. */
const rare = <T>(right: fc.Arbitrary<T>) => field(right, 40)
const gv = (last: 'kind' | 'resource') => fc.record({ group: rare(str), version: rare(fc.constant('v1')), [last]: rare(str) }, { requiredKeys: ['group', 'version', last] })
const request = fc.record(
  {
    uid: rare(fc.oneof({ arbitrary: fc.uuid(), weight: 20 }, { arbitrary: fc.constant(''), weight: 1 })),
    kind: rare(gv('kind')),
    resource: rare(gv('resource')),
    subResource: rare(str),
    name: rare(str),
    namespace: rare(str),
    operation: rare(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'PATCH')),
    object: other,
    oldObject: other,
    dryRun: rare(fc.boolean()),
    userInfo: other,
  },
  { requiredKeys: ['uid', 'kind', 'operation'] },
)
const review = fc.record({ apiVersion: rare(fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 'admission.k8s.io/v1', 'v1')), kind: rare(fc.constantFrom('AdmissionReview', 'AdmissionReview', 'AdmissionReview', 'Review')), request: rare(request) }, loose)

function agrees<T>(t: Test, name: string, values: fc.Arbitrary<unknown>, is: (value: unknown) => value is T, schema: { safeParse(value: unknown): { success: boolean; data?: unknown } }) {
  fc.assert(
    fc.property(values, (value) => {
      const parsed = schema.safeParse(value)
      const accepted = is(value)
      count(name, accepted ? 'accepted' : 'refused')
      t.equal(accepted, parsed.success, 'the check accepts exactly what the schema accepts', { value })
      if (accepted) t.same(value, parsed.data, 'and the schema would have decoded it to an equal value')
    }),
    { numRuns: NUM_RUNS },
  )
}

t.test('isService agrees with Service', async (t) => agrees(t, 'Service', anyService, isService, Service))
t.test('isPod agrees with Pod', async (t) => agrees(t, 'Pod', anyPod, isPod, Pod))
t.test('isAdmissionReview agrees with AdmissionReview', async (t) => agrees(t, 'AdmissionReview', review, isAdmissionReview, AdmissionReview))
