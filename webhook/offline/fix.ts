import { parseAllDocuments } from 'yaml'
import type { Config } from '../config.js'
import { Service } from '../k8s/objects.js'
import type { Decision } from '../rules/decision.js'
import { warningsOf } from '../rules/decision.js'
import { mutateService } from '../rules/service.js'
import type { KubeVersion } from '../rules/version.js'
import { applyToDocument, styleOf } from './yaml-patch.js'

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
  readonly config: Pick<Config, 'mixedProtocolLBService' | 'unbuildableMixedProtocol'>
}

export function fixManifests(sources: readonly ManifestSource[], options: FixOptions): FixResult {
  const reports: ObjectReport[] = []
  const outputs = sources.map((source) => {
    const documents = parseAllDocuments(source.text)
    if (!Array.isArray(documents)) return source // an empty stream
    const style = styleOf(source.text)
    let output = ''
    let cursor = 0
    documents.forEach((document, index) => {
      // A document's text runs to where the next one starts: its trailing comments belong to it.
      const end = documents[index + 1]?.range[0] ?? source.text.length
      const original = source.text.slice(cursor, end)
      cursor = end
      const error = document.errors[0]
      if (error) throw new ManifestError(`${source.name}: document ${index + 1}: ${error.message}`, { cause: error })
      const object: unknown = document.toJS()
      const decision = decide(object, options)
      if (decision === undefined) {
        output += original
        return
      }
      reports.push({ source: source.name, index, kind: 'Service', name: nameOf(object), decision })
      if (!decision.allowed || decision.ops.length === 0) {
        output += original
        return
      }
      applyToDocument(document, decision.ops)
      output += (index === 0 ? leadingBlank(original) : '') + document.toString(style)
    })
    return { name: source.name, text: output }
  })
  return { outputs, reports }
}

/** The rules' decision for one object, or undefined when no rule looks at its kind. */
function decide(object: unknown, options: FixOptions): Decision | undefined {
  if (!isRecord(object) || object['apiVersion'] !== 'v1' || object['kind'] !== 'Service') return undefined
  const service = Service.safeParse(object)
  if (!service.success) return undefined
  return mutateService({
    operation: 'CREATE',
    object: service.data,
    cluster: { version: options.version, mixedProtocolGate: options.config.mixedProtocolLBService },
    policy: { unbuildableMixedProtocol: options.config.unbuildableMixedProtocol },
  })
}

/** Blank lines before the first document, which the yaml library does not keep. */
function leadingBlank(text: string): string {
  return /^\s*/.exec(text)?.[0].replace(/[^\n]/g, '') ?? ''
}

function nameOf(object: unknown): string {
  const metadata = isRecord(object) && isRecord(object['metadata']) ? object['metadata'] : {}
  const namespace = typeof metadata['namespace'] === 'string' ? `${metadata['namespace']}/` : ''
  return `${namespace}${typeof metadata['name'] === 'string' ? metadata['name'] : '<unnamed>'}`
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** One line per warning or denial, prefixed with where the object is. */
export function describeReport(report: ObjectReport): string[] {
  const where = `${report.source}: ${report.kind} ${report.name}`
  if (!report.decision.allowed) return [`${where}: denied: ${report.decision.message}`, ...report.decision.hints.map((h) => `${where}: warning: ${h}`)]
  return warningsOf(report.decision).map((w) => `${where}: warning: ${w}`)
}
