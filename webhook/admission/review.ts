import { z } from 'zod'
import { isRecord } from '../../lib/record.js'

/**
 * AdmissionReview as the kube-apiserver sends it. Clusters before 1.16 speak only v1beta1; the two
 * versions share this shape (k8s.io/api admission/v1 and v1beta1), so one schema decodes both and
 * the answer goes back in the request's version.
 */
export const ADMISSION_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const
export type AdmissionVersion = (typeof ADMISSION_VERSIONS)[number]

const GroupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() })
const GroupVersionResource = z.object({ group: z.string(), version: z.string(), resource: z.string() })

/** k8s.io/api admission/v1 Operation: the only values the apiserver sends. */
export const ADMISSION_OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const

export const AdmissionRequest = z.looseObject({
  uid: z.string().min(1),
  kind: GroupVersionKind,
  resource: GroupVersionResource.optional(),
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(ADMISSION_OPERATIONS),
  object: z.unknown().optional(),
  oldObject: z.unknown().optional(),
  dryRun: z.boolean().optional(),
})
export type AdmissionRequest = z.infer<typeof AdmissionRequest>

export const AdmissionReview = z.looseObject({
  apiVersion: z.enum(ADMISSION_VERSIONS),
  kind: z.literal('AdmissionReview'),
  request: AdmissionRequest,
})
export type AdmissionReview = z.infer<typeof AdmissionReview>

export class ReviewDecodeError extends Error {
  override name = 'ReviewDecodeError'
  constructor(
    message: string,
    /** The request uid when the body got far enough to show one: the answer can then be a review. */
    readonly uid: string | undefined,
    readonly apiVersion: AdmissionVersion | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

const isString = (value: unknown): value is string => typeof value === 'string'
const optionalString = (value: unknown) => value === undefined || typeof value === 'string'
const isGroupVersion = (value: unknown, last: 'kind' | 'resource') => isRecord(value) && isString(value['group']) && isString(value['version']) && isString(value[last])

/**
 * The schema's checks by hand (webhook/k8s/objects.ts says why): true only for what
 * AdmissionReview accepts, so the body itself is the decoded review.
 */
export function isAdmissionReview(body: unknown): body is AdmissionReview {
  if (!isRecord(body) || body['kind'] !== 'AdmissionReview' || !ADMISSION_VERSIONS.some((v) => v === body['apiVersion'])) return false
  const request = body['request']
  return (
    isRecord(request) &&
    isString(request['uid']) &&
    request['uid'] !== '' &&
    isGroupVersion(request['kind'], 'kind') &&
    (request['resource'] === undefined || isGroupVersion(request['resource'], 'resource')) &&
    optionalString(request['subResource']) &&
    optionalString(request['name']) &&
    optionalString(request['namespace']) &&
    ADMISSION_OPERATIONS.some((o) => o === request['operation']) &&
    (request['dryRun'] === undefined || typeof request['dryRun'] === 'boolean')
  )
}

/** Decodes a parsed JSON body, or throws ReviewDecodeError naming the first offending field. */
export function decodeReview(body: unknown): AdmissionReview {
  if (isAdmissionReview(body)) return body
  const result = AdmissionReview.safeParse(body)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body'
  const record = isRecord(body) ? body : {}
  const request = isRecord(record['request']) ? record['request'] : {}
  const uid = typeof request['uid'] === 'string' && request['uid'] !== '' ? request['uid'] : undefined
  const apiVersion = ADMISSION_VERSIONS.find((v) => v === record['apiVersion'])
  throw new ReviewDecodeError(`not an AdmissionReview: ${where}: ${issue?.message ?? 'invalid'}`, uid, apiVersion, {
    cause: result.error,
  })
}
