import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { fromDecision } from '../../webhook/admission/response.js'
import { Service } from '../../webhook/k8s/objects.js'
import type { Decision, JsonPatchOp } from '../../webhook/rules/decision.js'
import { unescapePointerToken } from '../../webhook/rules/patch.js'
import type { ServiceRuleInput } from '../../webhook/rules/service.js'
import { mutateService } from '../../webhook/rules/service.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'
import { gateFact, kubeVersion, NUM_RUNS, oldServiceFor, service, unbuildablePolicy, labelCounter, type JsonObject } from './fixtures/arbitraries.js'

const count = labelCounter(t)

/** A generated ServiceRuleInput together with the raw object it was made from. */
const ruleInput = service.chain((object) =>
  fc.record({
    object: fc.constant(object),
    operation: fc.constantFrom<'CREATE' | 'UPDATE'>('CREATE', 'UPDATE'),
    oldObject: oldServiceFor(object),
    namespace: fc.constantFrom(undefined, 'demo', 'other'),
    version: kubeVersion,
    gate: gateFact,
    policy: unbuildablePolicy,
  }),
)

type Generated = typeof ruleInput extends fc.Arbitrary<infer T> ? T : never

/** Objects go through the Service schema, as the admission handler does. */
function toInput(g: Generated, object: JsonObject = g.object): ServiceRuleInput {
  return {
    operation: g.operation,
    object: Service.parse(object),
    oldObject: g.operation === 'UPDATE' && g.oldObject != null ? Service.parse(g.oldObject) : undefined,
    namespace: g.namespace,
    cluster: { version: g.version, mixedProtocolGate: g.gate },
    policy: { unbuildableMixedProtocol: g.policy },
  }
}

function apply(object: JsonObject, ops: readonly JsonPatchOp[]): JsonObject {
  // validate=true: fast-json-patch checks every path and operation, as the apiserver's patcher would.
  return fastJsonPatch.applyPatch(structuredClone(object), ops as fastJsonPatch.Operation[], true, false).newDocument
}

function outcome(decision: Decision): string {
  if (!decision.allowed) return `denied ${decision.rule}`
  return decision.ops.length > 0 ? 'patched' : decision.hints.length > 0 ? 'hints only' : 'unchanged'
}

const options = { numRuns: NUM_RUNS }

/**
 * Found by the idempotence property: an UPDATE that drops `aws-load-balancer-type: classic` and adds
 * UDP had the type restored and was allowed, then denied on reinvocation (fixed in service.ts S2).
 */
const droppedClassicAddedUdp: Generated = {
  object: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'prod', annotations: {} },
    spec: { type: 'LoadBalancer', ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 80 }], externalTrafficPolicy: 'Local' },
  },
  operation: 'UPDATE',
  oldObject: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'prod', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'classic' } },
    spec: { type: 'LoadBalancer', ports: [{ protocol: 'TCP', port: 80 }], externalTrafficPolicy: 'Local' },
  },
  namespace: undefined,
  version: parseKubeVersion('1.30.0'),
  gate: 'auto',
  policy: 'warn',
}

t.test('the Service rules never throw, and every patch applies to the object it was made for', async (t) => {
  fc.assert(
    fc.property(ruleInput, (g) => {
      const decision = mutateService(toInput(g))
      count('never throws, patch applies', outcome(decision))
      if (decision.allowed && decision.ops.length > 0) apply(g.object, decision.ops)
    }),
    options,
  )
  t.pass('no counterexample')
})

t.test('idempotence: the rules on their own output change nothing (same oldObject on UPDATE)', async (t) => {
  fc.assert(
    fc.property(ruleInput, (g) => {
      const first = mutateService(toInput(g))
      if (!first.allowed || first.ops.length === 0) {
        count('idempotent', 'nothing to re-run')
        return
      }
      const patched = apply(g.object, first.ops)
      const second = mutateService(toInput(g, patched))
      count('idempotent', 're-run on patched output')
      if (!second.allowed) throw new Error(`the patched object is denied on a second run: ${second.message}`)
      if (second.ops.length > 0 || second.changes.length > 0) {
        throw new Error(`a second run changes more: ${JSON.stringify(second.ops)}`)
      }
    }),
    { ...options, examples: [[droppedClassicAddedUdp]] },
  )
  const decision = mutateService(toInput(droppedClassicAddedUdp))
  t.match(decision, { allowed: false, rule: 'S2', message: /Service prod\/echo has UDP ports .* is "classic"/ }, 'UDP added while dropping a classic type is denied')
  t.pass('no counterexample')
})

t.test('a change warning exists exactly when there are patch operations, and explains each key', async (t) => {
  fc.assert(
    fc.property(ruleInput, (g) => {
      const decision = mutateService(toInput(g))
      if (!decision.allowed) return
      count('changes iff ops', decision.ops.length > 0 ? 'ops' : 'no ops')
      if ((decision.changes.length > 0) !== (decision.ops.length > 0)) {
        throw new Error(`changes ${decision.changes.length} vs ops ${decision.ops.length}`)
      }
      const explained = decision.changes.map((c) => c.message).join('\n')
      for (const op of decision.ops) {
        if (!op.path.startsWith('/metadata')) throw new Error(`a Service patch touches ${op.path}`)
        const keys =
          op.path === '/metadata' ? Object.keys((op.value as { annotations: object }).annotations)
          : op.path === '/metadata/annotations' ? Object.keys(op.value as object)
          : [unescapePointerToken(op.path.slice('/metadata/annotations/'.length))]
        for (const key of keys) if (!explained.includes(key)) throw new Error(`${op.path}: no change message names ${key}`)
      }
    }),
    options,
  )
  t.pass('no counterexample')
})

t.test('hints never change anything: a hints-only decision has no patch and is allowed by both webhooks', async (t) => {
  fc.assert(
    fc.property(ruleInput, (g) => {
      const decision = mutateService(toInput(g))
      if (!decision.allowed || decision.changes.length > 0) return
      count('hints change nothing', decision.hints.length > 0 ? 'with hints' : 'without hints')
      if (decision.ops.length > 0) throw new Error('ops without a change')
      for (const patch of [true, false]) {
        const response = fromDecision('u', decision, { patch })
        if (!response.allowed || response.patch !== undefined) throw new Error(`hints-only answer ${JSON.stringify(response)}`)
        if ((response.warnings?.length ?? 0) !== Math.min(decision.hints.length, 32)) throw new Error('a hint was lost')
      }
    }),
    options,
  )
  t.pass('no counterexample')
})

t.test('denial messages name the Service', async (t) => {
  fc.assert(
    fc.property(ruleInput, (g) => {
      const input = toInput(g)
      const decision = mutateService(input)
      if (decision.allowed) return
      count('denials name the Service', decision.rule)
      const meta = input.object.metadata
      const name = meta?.name ?? `${meta?.generateName ?? ''}*`
      const namespace = meta?.namespace ?? input.namespace
      const subject = namespace ? `Service ${namespace}/${name}` : `Service ${name}`
      if (!decision.message.includes(subject)) throw new Error(`"${decision.message}" does not name ${subject}`)
    }),
    options,
  )
  t.pass('no counterexample')
})

t.test('ratchet: an UPDATE that changes nothing is never denied', async (t) => {
  fc.assert(
    fc.property(service, kubeVersion, gateFact, unbuildablePolicy, (object, version, mixedProtocolGate, policy) => {
      const decision = mutateService({
        operation: 'UPDATE',
        object: Service.parse(object),
        oldObject: Service.parse(structuredClone(object)),
        namespace: 'demo',
        cluster: { version, mixedProtocolGate },
        policy: { unbuildableMixedProtocol: policy },
      })
      count('no-op UPDATE never denied', outcome(decision))
      if (!decision.allowed) throw new Error(`no-op update denied: ${decision.message}`)
    }),
    options,
  )
  t.pass('no counterexample')
})
