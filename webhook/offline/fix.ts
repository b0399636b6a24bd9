import type { Document } from 'yaml'
import { parseAllDocuments } from 'yaml'
import type { Config } from '../config.js'
import { ObjectMeta, objectName, Pod, Service } from '../k8s/objects.js'
import type { Decision } from '../rules/decision.js'
import { NO_CHANGE, warningsOf } from '../rules/decision.js'
import { mutatePod, podTemplateOf, templatePointer, workloadKind } from '../rules/pod.js'
import { mutateService } from '../rules/service.js'
import type { KubeVersion } from '../rules/version.js'
import { applyToDocument, styleOf } from './yaml-patch.js'
import { isRecord } from '../../lib/record.js'

/**
 * The offline engine behind `fix` and `check`: every Kubernetes object in a set of YAML streams goes
 * through the same rules as at admission, as a CREATE.
 */

export interface ManifestSource {
  readonly name: string
  readonly text: string
}

export interface ObjectReport {
  readonly source: string
  /** 0-based position of the document in its source. */
  readonly index: number
  readonly kind: string
  readonly name: string
  readonly decision: Decision
}

export interface FixResult {
  /** The sources, corrected: untouched documents byte for byte. */
  readonly outputs: readonly ManifestSource[]
  readonly reports: readonly ObjectReport[]
}

export class ManifestError extends Error {
  override name = 'ManifestError'
}

export interface FixOptions {
  readonly version: KubeVersion
  readonly config: Pick<Config, 'mixedProtocolLBService' | 'unbuildableMixedProtocol' | 'sidecar'>
}

interface Entry {
  readonly source: ManifestSource
  readonly index: number
  readonly document: Document
  /** The document's text in the source, up to where the next one starts (its trailing comments included). */
  readonly original: string
  changed: boolean
}

export function fixManifests(sources: readonly ManifestSource[], options: FixOptions): FixResult {
  const entries: Entry[] = []
  for (const source of sources) {
    const documents = parseAllDocuments(source.text)
    if (!Array.isArray(documents)) continue // an empty stream
    let cursor = 0
    documents.forEach((document, index) => {
      const error = document.errors[0]
      if (error) throw new ManifestError(`${source.name}: document ${index + 1}: ${error.message}`, { cause: error })
      const end = documents[index + 1]?.range[0] ?? source.text.length
      entries.push({ source, index, document, original: source.text.slice(cursor, end), changed: false })
      cursor = end
    })
  }

  const reports: ObjectReport[] = []
  const apply = (entry: Entry, kind: string, decision: Decision): void => {
    reports.push({ source: entry.source.name, index: entry.index, kind, name: nameOf(entry.document.toJS()), decision })
    if (decision.allowed && decision.ops.length > 0) {
      applyToDocument(entry.document, decision.ops)
      entry.changed = true
    }
  }

  // Services first: pods are matched against the corrected Services, as at admission.
  const services: Service[] = []
  for (const entry of entries) {
    const object: unknown = entry.document.toJS()
    if (!isRecord(object) || object['apiVersion'] !== 'v1' || object['kind'] !== 'Service') continue
    const service = Service.safeParse(object)
    if (!service.success) continue
    apply(entry, 'Service', serviceDecision(service.data, options))
    const corrected = Service.safeParse(entry.document.toJS())
    if (corrected.success) services.push(corrected.data)
  }
  if (options.config.sidecar.injection !== 'never') {
    for (const entry of entries) {
      const object: unknown = entry.document.toJS()
      const workload = isRecord(object) ? workloadKind(object['apiVersion'], object['kind']) : undefined
      if (workload === undefined) continue
      const { kind } = workload
      const pod = Pod.safeParse(podTemplateOf(object, workload))
      if (!pod.success) continue
      const namespace = namespaceOf(object)
      const decision = mutatePod({
        pod: pod.data,
        basePath: templatePointer(kind) ?? '',
        subject: `${kind} ${nameOf(object)}`,
        services: services.filter((s) => namespaceOf(s) === namespace),
        version: options.version,
        sidecar: options.config.sidecar,
      })
      if (decision !== NO_CHANGE) apply(entry, kind, decision)
    }
  }

  const outputs = sources.map((source) => {
    const own = entries.filter((e) => e.source === source)
    if (!own.some((e) => e.changed)) return source
    const style = styleOf(source.text)
    const text = own
      .map((e) => (e.changed ? (e.index === 0 ? leadingBlank(e.original) : '') + e.document.toString(style) : e.original))
      .join('')
    return { name: source.name, text }
  })
  return { outputs, reports }
}

function serviceDecision(service: Service, options: FixOptions): Decision {
  return mutateService({
    operation: 'CREATE',
    object: service,
    cluster: { version: options.version, mixedProtocolGate: options.config.mixedProtocolLBService },
    policy: { unbuildableMixedProtocol: options.config.unbuildableMixedProtocol },
  })
}

/** Objects without a namespace go to the default one (or kubectl's -n): treat them alike. */
function namespaceOf(object: unknown): string {
  const metadata = isRecord(object) && isRecord(object['metadata']) ? object['metadata'] : {}
  return typeof metadata['namespace'] === 'string' ? metadata['namespace'] : 'default'
}

/** Blank lines before the first document, which the yaml library does not keep. */
function leadingBlank(text: string): string {
  return /^\s*/.exec(text)?.[0].replace(/[^\n]/g, '') ?? ''
}

function nameOf(object: unknown): string {
  const metadata = ObjectMeta.safeParse(isRecord(object) ? object['metadata'] : undefined)
  return objectName(metadata.success ? metadata.data : undefined)
}

/** One line per warning or denial, prefixed with where the object is. */
export function describeReport(report: ObjectReport): string[] {
  const where = `${report.source}: ${report.kind} ${report.name}`
  if (!report.decision.allowed) return [`${where}: denied: ${report.decision.message}`, ...report.decision.hints.map((h) => `${where}: warning: ${h}`)]
  return warningsOf(report.decision).map((w) => `${where}: warning: ${w}`)
}
