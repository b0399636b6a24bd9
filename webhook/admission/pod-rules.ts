import type { ServiceLookup } from '../cluster/services.js'
import type { SidecarConfig } from '../config.js'
import { Pod, PodSpec, ObjectMeta } from '../k8s/objects.js'
import { NO_CHANGE } from '../rules/decision.js'
import { mutatePod, POD_TEMPLATE_PATHS, templatePointer } from '../rules/pod.js'
import { bounded } from '../text/bounded.js'
import { z } from 'zod'
import type { KindRule } from './handler.js'
import { firstIssue, InvalidObject } from './handler.js'

/** Names are quoted in warnings before the apiserver has validated them: at most an object name's 253 characters. */
const MAX_NAME = 253

const Template = z.looseObject({ metadata: ObjectMeta.nullish(), spec: PodSpec.nullish() })

/**
 * The Pod rule by kind: Pods on CREATE; with `sidecar.mutateWorkloads`, also the pod templates of
 * workloads on CREATE and UPDATE (pods made from a mutated template then need nothing more).
 */
export function podRules(lookup: ServiceLookup, sidecar: SidecarConfig): Map<string, KindRule> {
  const rules = new Map<string, KindRule>()
  rules.set('Pod', (request, version, mode) => {
    if (request.operation !== 'CREATE' || mode !== 'mutate') return NO_CHANGE
    const pod = Pod.safeParse(request.object)
    if (!pod.success) return new InvalidObject(`request.object is not a v1 Pod: ${firstIssue(pod.error)}`)
    // The pod may carry no namespace on CREATE: the request's is the one it is created in.
    const namespace = request.namespace ?? pod.data.metadata?.namespace ?? 'default'
    const name = bounded(pod.data.metadata?.name ?? `${pod.data.metadata?.generateName ?? ''}*`, MAX_NAME)
    return mutatePod({
      pod: pod.data,
      basePath: '',
      subject: `Pod ${bounded(namespace, MAX_NAME)}/${name}`,
      services: lookup.servicesIn(namespace),
      version,
      sidecar,
    })
  })
  if (!sidecar.mutateWorkloads) return rules
  for (const kind of Object.keys(POD_TEMPLATE_PATHS)) {
    if (kind === 'Pod') continue
    rules.set(kind, (request, version, mode) => {
      if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || mode !== 'mutate') return NO_CHANGE
      const path = POD_TEMPLATE_PATHS[kind] ?? []
      const raw = path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], request.object)
      if (raw == null) return NO_CHANGE
      const template = Template.safeParse(raw)
      if (!template.success) return new InvalidObject(`the pod template of this ${kind} is malformed: ${firstIssue(template.error)}`)
      const namespace = request.namespace ?? 'default'
      return mutatePod({
        pod: template.data,
        basePath: templatePointer(kind) ?? '',
        subject: `${kind} ${bounded(namespace, MAX_NAME)}/${bounded(request.name ?? '*', MAX_NAME)}`,
        services: lookup.servicesIn(namespace),
        version,
        sidecar,
      })
    })
  }
  return rules
}
