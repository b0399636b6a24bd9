import type { ServiceLookup } from '../cluster/services.js'
import type { SidecarConfig } from '../config.js'
import { decode, isObjectMeta, isPod, isPodSpec, kindKey, objectName, Pod, PodSpec, ObjectMeta } from '../k8s/objects.js'
import { isRecord } from '../../lib/record.js'
import { NO_CHANGE } from '../rules/decision.js'
import { mutatePod, podTemplateOf, templatePointer, WORKLOAD_KINDS } from '../rules/pod.js'
import { z } from 'zod'
import type { KindRule } from './handler.js'
import { firstIssue, InvalidObject } from './handler.js'

const Template = z.looseObject({ metadata: ObjectMeta.nullish(), spec: PodSpec.nullish() })
const isTemplate = (value: unknown): value is z.infer<typeof Template> =>
  isRecord(value) && (value['metadata'] == null || isObjectMeta(value['metadata'])) && (value['spec'] == null || isPodSpec(value['spec']))

/**
 * The Pod rule by kind (keyed `apiVersion kind`, as the handler routes): Pods on CREATE; with
 * `sidecar.mutateWorkloads`, also the pod templates of workloads on CREATE and UPDATE (pods made
 * from a mutated template then need nothing more).
 */
export function podRules(lookup: ServiceLookup, sidecar: SidecarConfig): Map<string, KindRule> {
  const rules = new Map<string, KindRule>()
  rules.set(kindKey('v1', 'Pod'), (request, version, mode) => {
    if (request.operation !== 'CREATE' || mode !== 'mutate') return NO_CHANGE
    const pod = decode(Pod, isPod, request.object)
    if (!pod.success) return new InvalidObject(`request.object is not a v1 Pod: ${firstIssue(pod.error)}`)
    // The pod may carry no namespace on CREATE: the request's is the one it is created in.
    const namespace = request.namespace ?? pod.data.metadata?.namespace ?? 'default'
    return mutatePod({
      pod: pod.data,
      basePath: '',
      subject: `Pod ${objectName(pod.data.metadata, namespace)}`,
      services: lookup.servicesIn(namespace),
      version,
      sidecar,
    })
  })
  if (!sidecar.mutateWorkloads) return rules
  for (const workload of WORKLOAD_KINDS) {
    const { kind } = workload
    if (kind === 'Pod') continue
    rules.set(kindKey(workload.apiVersion, kind), (request, version, mode) => {
      if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || mode !== 'mutate') return NO_CHANGE
      const raw = podTemplateOf(request.object, workload)
      if (raw == null) return NO_CHANGE
      const template = decode(Template, isTemplate, raw)
      if (!template.success) return new InvalidObject(`the pod template of this ${kind} is malformed: ${firstIssue(template.error)}`)
      const namespace = request.namespace ?? 'default'
      return mutatePod({
        pod: template.data,
        basePath: templatePointer(kind) ?? '',
        subject: `${kind} ${objectName({ name: request.name }, namespace)}`,
        services: lookup.servicesIn(namespace),
        version,
        sidecar,
      })
    })
  }
  return rules
}
