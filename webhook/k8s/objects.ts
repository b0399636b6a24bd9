import { z } from 'zod'
import { isRecord } from '../../lib/record.js'
import { bounded } from '../text/bounded.js'

/*
 * The parts of Kubernetes objects the rules read. Schemas are loose: every field we do not model is
 * kept, because the rules answer with patches against the object the apiserver sent, never with a
 * re-serialised copy. `null` is accepted wherever Go's encoder may emit it for an empty map or list.
 */

const stringMap = z.record(z.string(), z.string()).nullish()

export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  labels: stringMap,
  annotations: stringMap,
  deletionTimestamp: z.string().nullish(),
})
export type ObjectMeta = z.infer<typeof ObjectMeta>

const intOrString = z.union([z.number().int(), z.string()])

export const ServicePort = z.looseObject({
  name: z.string().optional(),
  protocol: z.string().optional(),
  port: z.number().int(),
  targetPort: intOrString.optional(),
  nodePort: z.number().int().optional(),
})
export type ServicePort = z.infer<typeof ServicePort>

export const Service = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: ObjectMeta.nullish(),
  spec: z
    .looseObject({
      type: z.string().optional(),
      ports: z.array(ServicePort).nullish(),
      selector: stringMap,
      loadBalancerClass: z.string().nullish(),
      externalTrafficPolicy: z.string().optional(),
    })
    .nullish(),
})
export type Service = z.infer<typeof Service>

export const ContainerPort = z.looseObject({
  name: z.string().optional(),
  containerPort: z.number().int(),
  protocol: z.string().optional(),
})
export type ContainerPort = z.infer<typeof ContainerPort>

export const Container = z.looseObject({
  name: z.string(),
  ports: z.array(ContainerPort).nullish(),
  restartPolicy: z.string().optional(),
})
export type Container = z.infer<typeof Container>

export const PodSpec = z.looseObject({
  containers: z.array(Container).nullish(),
  initContainers: z.array(Container).nullish(),
  hostNetwork: z.boolean().optional(),
})
export type PodSpec = z.infer<typeof PodSpec>

export const Pod = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: ObjectMeta.nullish(),
  spec: PodSpec.nullish(),
})
export type Pod = z.infer<typeof Pod>

/*
 * The same shapes as hand-written checks, for the admission hot path: a review is checked field by
 * field where the schemas above look, and the object the apiserver sent is used as it is, with no
 * copy made. Only an object that fails a check goes through its schema, which then names the
 * offending field as before; each check accepts nothing its schema refuses (test/property/shapes).
 * They cost a fraction of a zod parse, which was 5–7% of an admission's CPU time (bench/ profile).
 */

const optional = (value: unknown, check: (value: unknown) => boolean) => value === undefined || check(value)
const nullish = (value: unknown, check: (value: unknown) => boolean) => value == null || check(value)
const isString = (value: unknown): value is string => typeof value === 'string'
const isInt = (value: unknown): value is number => Number.isSafeInteger(value)
const isArrayOf = (value: unknown, check: (item: unknown) => boolean) => Array.isArray(value) && value.every(check)

function isStringMap(value: unknown): boolean {
  if (!isRecord(value)) return false
  for (const key in value) if (Object.hasOwn(value, key) && typeof value[key] !== 'string') return false
  return true
}

export function isObjectMeta(value: unknown): value is ObjectMeta {
  return (
    isRecord(value) &&
    optional(value['name'], isString) &&
    optional(value['generateName'], isString) &&
    optional(value['namespace'], isString) &&
    nullish(value['labels'], isStringMap) &&
    nullish(value['annotations'], isStringMap) &&
    nullish(value['deletionTimestamp'], isString)
  )
}

function isServicePort(value: unknown): boolean {
  return (
    isRecord(value) &&
    optional(value['name'], isString) &&
    optional(value['protocol'], isString) &&
    isInt(value['port']) &&
    optional(value['targetPort'], (v) => isInt(v) || isString(v)) &&
    optional(value['nodePort'], isInt)
  )
}

function isServiceSpec(value: unknown): boolean {
  return (
    isRecord(value) &&
    optional(value['type'], isString) &&
    nullish(value['ports'], (v) => isArrayOf(v, isServicePort)) &&
    nullish(value['selector'], isStringMap) &&
    nullish(value['loadBalancerClass'], isString) &&
    optional(value['externalTrafficPolicy'], isString)
  )
}

export function isService(value: unknown): value is Service {
  return isRecord(value) && optional(value['apiVersion'], isString) && optional(value['kind'], isString) && nullish(value['metadata'], isObjectMeta) && nullish(value['spec'], isServiceSpec)
}

function isContainer(value: unknown): boolean {
  return (
    isRecord(value) &&
    isString(value['name']) &&
    nullish(value['ports'], (v) => isArrayOf(v, (p) => isRecord(p) && optional(p['name'], isString) && isInt(p['containerPort']) && optional(p['protocol'], isString))) &&
    optional(value['restartPolicy'], isString)
  )
}

export function isPodSpec(value: unknown): value is PodSpec {
  return (
    isRecord(value) &&
    nullish(value['containers'], (v) => isArrayOf(v, isContainer)) &&
    nullish(value['initContainers'], (v) => isArrayOf(v, isContainer)) &&
    optional(value['hostNetwork'], (v) => typeof v === 'boolean')
  )
}

export function isPod(value: unknown): value is Pod {
  return isRecord(value) && optional(value['apiVersion'], isString) && optional(value['kind'], isString) && nullish(value['metadata'], isObjectMeta) && nullish(value['spec'], isPodSpec)
}

/** What `schema.safeParse(value)` answers, without zod when `is` accepts the value: then the value itself, uncopied. */
export function decode<T>(schema: z.ZodType<T>, is: (value: unknown) => value is T, value: unknown): { success: true; data: T } | { success: false; error: z.ZodError } {
  if (is(value)) return { success: true, data: value }
  const result = schema.safeParse(value)
  return result.success ? { success: true, data: result.data } : { success: false, error: result.error }
}

/** `v1 Pod`, `apps/v1 Deployment`: what rules are routed by (an AdmissionReview's group/version/kind, an object's apiVersion and kind). */
export function kindKey(apiVersion: string, kind: string): string {
  return `${apiVersion} ${kind}`
}

/** The apiVersion of an AdmissionReview's group and version: the core group is the empty string. */
export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`
}

/** Kubernetes defaults an omitted port protocol to TCP. */
export function portProtocol(port: { protocol?: string | undefined }): string {
  return port.protocol ?? 'TCP'
}

/** Longest name quoted (a Kubernetes object name is at most 253 characters): names are quoted before the apiserver validates them. */
const MAX_NAME = 253

/**
 * `<namespace>/<name>` of an object, for messages and reports: `<generateName>*` for a name the
 * apiserver has yet to generate, no namespace part when none is known, each part bounded.
 */
export function objectName(
  metadata: { readonly name?: string | undefined; readonly generateName?: string | undefined; readonly namespace?: string | undefined } | null | undefined,
  namespace: string | undefined = metadata?.namespace,
): string {
  const name = bounded(metadata?.name ?? `${metadata?.generateName ?? ''}*`, MAX_NAME)
  return namespace ? `${bounded(namespace, MAX_NAME)}/${name}` : name
}

export function isLoadBalancer(service: Service): boolean {
  return service.spec?.type === 'LoadBalancer'
}

export function annotationsOf(object: { metadata?: { annotations?: Record<string, string> | null | undefined } | null | undefined }): Readonly<Record<string, string>> {
  return object.metadata?.annotations ?? {}
}
