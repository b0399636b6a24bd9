import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { PodSpec, ObjectMeta, Service } from '../../webhook/k8s/objects.js'
import * as A from '../../webhook/rules/annotations.js'
import type { Decision, JsonPatchOp } from '../../webhook/rules/decision.js'
import { mutatePod, SIDECAR_NAME, templatePointer, type PodTemplate } from '../../webhook/rules/pod.js'
import { atLeast } from '../../webhook/rules/version.js'
import { z } from 'zod'
import { cachedServiceFor, kubeVersion, NUM_RUNS, pod, sidecarConfig, WORKLOAD_WRAPPERS, type JsonObject } from './fixtures/arbitraries.js'

const counts = new Map<string, number>()
const count = (label: string) => counts.set(label, (counts.get(label) ?? 0) + 1)
t.teardown(() => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  console.log(`# Pod rule: ${total} runs (${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')})`)
})

const Template = z.looseObject({ metadata: ObjectMeta.nullish(), spec: PodSpec.nullish() })

/** A Pod, or the same pod as the template of a Deployment or CronJob, with the Services around it. */
const podCase = pod.chain((p) =>
  fc.record({
    pod: fc.constant(p),
    wrapper: fc.constantFrom(undefined, undefined, ...WORKLOAD_WRAPPERS),
    services: fc.array(cachedServiceFor((p['metadata'] as { labels?: Record<string, string> | null } | null)?.labels ?? {}), { maxLength: 4 }),
    version: kubeVersion,
    sidecar: sidecarConfig,
  }),
)
type PodCase = typeof podCase extends fc.Arbitrary<infer T> ? T : never

interface Run {
  readonly document: JsonObject
  readonly basePath: string
  readonly decision: Decision
}

function templateAt(document: JsonObject, basePath: string): JsonObject {
  return basePath === '' ? document : (fastJsonPatch.getValueByPointer(document, basePath) as JsonObject)
}

function run(c: PodCase, document: JsonObject = c.wrapper === undefined ? c.pod : c.wrapper[1](c.pod)): Run {
  const basePath = c.wrapper === undefined ? '' : (templatePointer(c.wrapper[0]) ?? '')
  const template: PodTemplate = Template.parse(templateAt(document, basePath))
  const decision = mutatePod({
    pod: template,
    basePath,
    subject: 'Pod demo/p',
    services: c.services.map((s) => Service.parse(s)),
    version: c.version,
    sidecar: c.sidecar,
  })
  return { document, basePath, decision }
}

function apply(document: JsonObject, ops: readonly JsonPatchOp[]): JsonObject {
  return fastJsonPatch.applyPatch(structuredClone(document), ops as fastJsonPatch.Operation[], true, false).newDocument
}

interface ContainerLike {
  name?: string
  args?: string[]
  restartPolicy?: string
}

function sidecarsOf(template: JsonObject): Array<{ where: 'containers' | 'initContainers'; container: ContainerLike }> {
  const spec = (template['spec'] ?? {}) as { containers?: ContainerLike[] | null; initContainers?: ContainerLike[] | null }
  return (['containers', 'initContainers'] as const).flatMap((where) =>
    (spec[where] ?? []).filter((c) => c.name === SIDECAR_NAME).map((container) => ({ where, container })),
  )
}

t.test('the Pod rule: patches apply, exactly one sidecar, idempotent, a change warning exactly when patched', async (t) => {
  fc.assert(
    fc.property(podCase, (c) => {
      const first = run(c)
      const before = sidecarsOf(templateAt(first.document, first.basePath)).length
      if (!first.decision.allowed) throw new Error('the Pod rule never denies')
      const { ops, changes } = first.decision
      count(ops.length > 0 ? `patched${c.wrapper ? ` ${c.wrapper[0]}` : ''}` : before > 0 ? 'already has the sidecar' : first.decision.hints.length > 0 ? 'hints only' : 'unchanged')
      if ((changes.length > 0) !== (ops.length > 0)) throw new Error(`changes ${changes.length} vs ops ${ops.length}`)
      if (ops.length === 0) return
      if (before > 0) throw new Error('a second sidecar was added')
      for (const op of ops) if (!op.path.startsWith(`${first.basePath}/`)) throw new Error(`op outside the pod template: ${op.path}`)

      const patched = apply(first.document, ops)
      const template = templateAt(patched, first.basePath)
      const sidecars = sidecarsOf(template)
      if (sidecars.length !== 1) throw new Error(`${sidecars.length} containers named ${SIDECAR_NAME} after the patch`)
      const [{ where, container }] = sidecars as [(typeof sidecars)[0]]
      const native = atLeast(c.version, 1, 29)
      if (where !== (native ? 'initContainers' : 'containers')) throw new Error(`sidecar in ${where} on ${c.version.text}`)
      if (native !== (container.restartPolicy === 'Always')) throw new Error('native sidecar without restartPolicy: Always')
      const annotation = (template['metadata'] as { annotations: Record<string, string> }).annotations[A.HEALTHCHECK_PORTS]
      const args = container.args ?? []
      const ports = args.flatMap((arg, i) => (args[i - 1] === '--port' ? [arg] : []))
      if (annotation !== ports.join(',')) throw new Error(`annotation ${annotation} vs sidecar ports ${ports.join(',')}`)

      const second = run(c, patched)
      if (!second.decision.allowed || second.decision.ops.length > 0 || second.decision.changes.length > 0) {
        throw new Error(`a second run changes more: ${JSON.stringify(second.decision)}`)
      }
    }),
    { numRuns: NUM_RUNS * 3 },
  )
  const patched = [...counts].filter(([k]) => k.startsWith('patched')).reduce((a, [, v]) => a + v, 0)
  t.ok(patched > NUM_RUNS / 5, `enough runs patched a pod (${patched})`)
})
