import { isDeepStrictEqual } from 'node:util'
import type { Document } from 'yaml'
import { isSeq, Document as YamlDocument } from 'yaml'
import { isRecord } from '../../lib/record.js'
import { firstIssue } from '../admission/handler.js'
import type { Config } from '../config.js'
import { Pod, Service, portProtocol } from '../k8s/objects.js'
import type { Decision, JsonPatchOp } from '../rules/decision.js'
import { NO_CHANGE } from '../rules/decision.js'
import { escapePointerToken, unescapePointerToken } from '../rules/patch.js'
import { mutatePod, podTemplateOf, templatePointer, workloadKind } from '../rules/pod.js'
import { mixedProtocolUnsupportedReason } from '../rules/service.js'
import { ServiceIndex } from '../rules/service-index.js'
import type { KubeVersion } from '../rules/version.js'
import type { Finding, ObjectId, Where } from './findings.js'
import { decisionFindings, judgeService, serviceDecision, subjectOf } from './judge.js'
import type { ManifestDocument, ManifestSource } from './manifests.js'
import { parseAgain, readDocuments } from './manifests.js'
import { applyToDocument, styleOf } from './yaml-patch.js'

/**
 * The offline engine behind `fix` and `check`: every Kubernetes object in a set of manifest streams
 * goes through the same rules as at admission, as a CREATE. Services first, then pods and pod
 * templates, matched against the corrected Services as the admission cache would hold them.
 */

export type { ManifestSource } from './manifests.js'

export interface FixOptions {
  readonly version: KubeVersion
  readonly config: Pick<Config, 'mixedProtocolLBService' | 'unbuildableMixedProtocol' | 'sidecar'>
  /** `fix --split`: rewrite a mixed-protocol LoadBalancer Service that cannot work as one Service per protocol, named by this template ({name}, {protocol}). */
  readonly split?: string | undefined
  /** `check` needs only the findings: without this, nothing is printed back (and no document is parsed again). */
  readonly render?: boolean | undefined
}

export interface FixResult {
  /** The sources, corrected: untouched documents byte for byte. */
  readonly outputs: readonly ManifestSource[]
  readonly findings: readonly Finding[]
}

export const DEFAULT_SPLIT_NAME = '{name}-{protocol}'

/** kubectl flattens Lists inside Lists; deeper than this is not a manifest anyone writes. */
const MAX_LIST_DEPTH = 4

/** One object of the input: a document, or an item of a List document. */
interface ManifestObject {
  readonly document: ManifestDocument
  /** JSON Pointer of the object in its document: '' or '/items/3'. */
  readonly pointer: string
  readonly where: Where
  readonly value: Record<string, unknown>
  readonly id: ObjectId
}

interface Split {
  readonly pointer: string
  readonly parts: ReadonlyArray<{ readonly ops: readonly JsonPatchOp[]; readonly value: unknown }>
}

/** What fix changes in one document: patch operations (full pointers), then Services split in place. */
interface Edit {
  readonly ops: JsonPatchOp[]
  readonly splits: Split[]
}

export function fixManifests(sources: readonly ManifestSource[], options: FixOptions): FixResult {
  const findings: Finding[] = []
  const documents: ManifestDocument[] = []
  const objects: ManifestObject[] = []
  for (const source of sources) {
    for (const document of readDocuments(source)) {
      const before = objects.length
      collectObjects(document, findings, objects)
      // Only documents with an object the rules read keep their value: a large stream of other
      // kinds costs its text, not its parsed tree.
      documents.push(objects.length > before || document.json ? document : { ...document, value: undefined })
    }
  }

  const edits = new Map<ManifestDocument, Edit>()
  const editOf = (document: ManifestDocument): Edit => {
    const edit = edits.get(document) ?? { ops: [], splits: [] }
    edits.set(document, edit)
    return edit
  }

  const index = new ServiceIndex()
  for (const object of objects) {
    if (object.id.apiVersion !== 'v1' || object.id.kind !== 'Service') continue
    const parsed = Service.safeParse(object.value)
    if (!parsed.success) {
      findings.push(unreadable(object.where, object.id, `not a valid v1 Service: ${firstIssue(parsed.error)}`))
      continue
    }
    const service = parsed.data
    const { decision, pending, findings: judged } = judgeService(service, object.where, object.id, options, 'nlb-guard fix --split writes one Service per protocol.')
    const splittable = pending !== null || (!decision.allowed && decision.rule === 'S1')
    if (splittable && options.split !== undefined && typeof object.value['metadata'] === 'object' && service.metadata?.name) {
      const parts = splitService(object, service, decision, options, findings)
      if (parts.length > 0) {
        editOf(object.document).splits.push({ pointer: object.pointer, parts })
        for (const part of parts) indexService(index, part.value)
      }
      continue
    }
    findings.push(...judged)
    if (!decision.allowed) continue
    if (decision.ops.length > 0) editOf(object.document).ops.push(...prefixed(object.pointer, decision.ops))
    indexService(index, decision.ops.length > 0 ? patched(object.value, decision.ops) : object.value)
  }

  for (const object of objects) {
    const workload = workloadKind(object.id.apiVersion, object.id.kind)
    if (workload === undefined) continue
    const { kind } = workload
    const template = podTemplateOf(object.value, workload)
    if (template == null) continue
    const pod = Pod.safeParse(template)
    if (!pod.success) {
      findings.push(unreadable(object.where, object.id, `the pod${kind === 'Pod' ? '' : ' template'} is not valid: ${firstIssue(pod.error)}`))
      continue
    }
    const namespace = object.id.namespace ?? 'default'
    const decision = mutatePod({
      pod: pod.data,
      basePath: templatePointer(kind) ?? '',
      subject: subjectOf(object.id),
      services: index.candidates(namespace, pod.data.metadata?.labels),
      version: options.version,
      sidecar: options.config.sidecar,
    })
    if (decision === NO_CHANGE) continue
    findings.push(...decisionFindings(object.where, object.id, decision, null))
    if (decision.allowed && decision.ops.length > 0) editOf(object.document).ops.push(...prefixed(object.pointer, decision.ops))
  }

  const outputs = options.render === false ? [] : sources.map((source) => render(source, documents, edits, findings))
  // In input order (a stable sort keeps each object's findings in rule order).
  const order = new Map(sources.map((s, i) => [s.name, i]))
  const key = (f: Finding): number[] => [order.get(f.where.file) ?? -1, f.where.document ?? 0, f.where.item ?? -1]
  findings.sort((a, b) => {
    const [x, y] = [key(a), key(b)]
    return (x[0]! - y[0]!) || (x[1]! - y[1]!) || (x[2]! - y[2]!)
  })
  return { outputs, findings }
}

/** The objects of one document, Lists flattened (typed lists give their items a kind); unreadable ones reported. */
function collectObjects(document: ManifestDocument, findings: Finding[], objects: ManifestObject[]): void {
  const where: Where = { file: document.source.name, document: document.index + 1, line: document.line, helmSource: document.helmSource }
  if (document.error !== undefined) {
    findings.push(unreadable(where, undefined, document.error))
    return
  }
  if (document.value == null) return // an empty document: kubectl skips it too
  const visit = (value: unknown, pointer: string, at: Where, inherited: { apiVersion: string; kind: string } | undefined, depth: number): void => {
    if (!isRecord(value)) {
      findings.push(unreadable(at, undefined, `not a Kubernetes object (a ${Array.isArray(value) ? 'list' : typeof value}, not a mapping)`))
      return
    }
    const apiVersion = typeof value['apiVersion'] === 'string' ? value['apiVersion'] : inherited?.apiVersion
    const kind = typeof value['kind'] === 'string' ? value['kind'] : inherited?.kind
    const id = objectId(value, apiVersion, kind ?? '<no kind>')
    if (apiVersion === undefined || kind === undefined) {
      findings.push(unreadable(at, id, 'not a Kubernetes object: apiVersion and kind are required'))
      return
    }
    if (kind.endsWith('List') && Array.isArray(value['items'])) {
      if (depth >= MAX_LIST_DEPTH) {
        findings.push(unreadable(at, id, `Lists nested more than ${MAX_LIST_DEPTH} deep`))
        return
      }
      // A typed list (ServiceList, as the API returns it) leaves kind and apiVersion off its items.
      const itemType = kind === 'List' ? undefined : { apiVersion, kind: kind.slice(0, -'List'.length) }
      value['items'].forEach((item: unknown, i: number) => {
        const line = depth === 0 ? document.itemLines[i] : undefined
        visit(item, `${pointer}/items/${i}`, { ...at, item: depth === 0 ? i : at.item, line: line ?? at.line }, itemType, depth + 1)
      })
      return
    }
    objects.push({ document, pointer, where: at, value, id })
  }
  visit(document.value, '', where, undefined, 0)
}

function indexService(index: ServiceIndex, value: unknown): void {
  const service = Service.safeParse(value)
  if (service.success) index.add(service.data.metadata?.namespace ?? 'default', service.data)
}

/** Fields the apiserver sets on a stored Service: a copy under a new name must not carry them. */
const SERVER_SET: ReadonlyArray<readonly string[]> = [
  ['metadata', 'uid'],
  ['metadata', 'resourceVersion'],
  ['metadata', 'creationTimestamp'],
  ['metadata', 'generation'],
  ['metadata', 'managedFields'],
  ['metadata', 'selfLink'],
  ['metadata', 'annotations', 'kubectl.kubernetes.io/last-applied-configuration'],
  ['spec', 'clusterIP'],
  ['spec', 'clusterIPs'],
  ['spec', 'healthCheckNodePort'],
  ['status'],
]

/**
 * fix --split: one Service per protocol, each run through the rules. Each part keeps everything of
 * the original (comments too) but its name and the other protocols' ports.
 */
function splitService(
  object: ManifestObject,
  service: Service,
  decision: Decision,
  options: FixOptions,
  findings: Finding[],
): Array<{ ops: JsonPatchOp[]; value: unknown }> {
  const ports = service.spec?.ports ?? []
  const protocols = [...new Set(ports.map(portProtocol))]
  const name = service.metadata?.name ?? ''
  const live = service.metadata?.['uid'] !== undefined
  const parts: Array<{ ops: JsonPatchOp[]; value: unknown }> = []
  const names: string[] = []
  const partFindings: Finding[] = []
  for (const protocol of protocols) {
    const partName = (options.split ?? DEFAULT_SPLIT_NAME).replaceAll('{name}', name).replaceAll('{protocol}', protocol.toLowerCase())
    const ops: JsonPatchOp[] = [{ op: 'replace', path: '/metadata/name', value: partName }]
    for (let i = ports.length - 1; i >= 0; i--) {
      const port = ports[i]
      if (port === undefined) continue
      if (portProtocol(port) !== protocol) ops.push({ op: 'remove', path: `/spec/ports/${i}` })
      // A stored Service's node ports stay allocated to it until it is deleted.
      else if (live && port.nodePort !== undefined) ops.push({ op: 'remove', path: `/spec/ports/${i}/nodePort` })
    }
    for (const path of SERVER_SET) {
      if (path.reduce<unknown>((node, key) => (isRecord(node) ? node[key] : undefined), object.value) !== undefined) {
        ops.push({ op: 'remove', path: path.map((p) => `/${escapePointerToken(p)}`).join('') })
      }
    }
    const value = patched(object.value, ops)
    const id: ObjectId = { ...object.id, name: partName }
    const partDecision = serviceDecision(Service.parse(value), options)
    partFindings.push(...decisionFindings(object.where, id, partDecision, null))
    names.push(`${partName} (${protocol})`)
    if (!partDecision.allowed) continue
    parts.push({ ops: [...ops, ...partDecision.ops], value: patched(value, partDecision.ops) })
  }
  const reason = mixedProtocolUnsupportedReason(options.version, options.config.mixedProtocolLBService)
  const why = decision.allowed || reason === null
    ? 'the load balancer controller in charge would never build one load balancer for both, so it would stay pending'
    : `Kubernetes ${options.version.text} cannot create one LoadBalancer with both: ${reason}`
  findings.push({
    where: object.where,
    object: object.id,
    rule: 'S1',
    action: 'split',
    message:
      `split into ${names.join(' and ')}, with the same selector, because ${why}. They get two load balancers, so ` +
      `two addresses: point clients (or DNS SRV records) at both.`,
  }, ...partFindings)
  return parts.length === protocols.length ? parts : []
}

function unreadable(where: Where, object: ObjectId | undefined, message: string): Finding {
  return { where, object, rule: null, action: 'error', message }
}

function objectId(value: Record<string, unknown>, apiVersion: string | undefined, kind: string): ObjectId {
  const metadata = isRecord(value['metadata']) ? value['metadata'] : {}
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : typeof metadata['generateName'] === 'string' ? `${metadata['generateName']}*` : '<unnamed>'
  return { apiVersion, kind, namespace: typeof metadata['namespace'] === 'string' ? metadata['namespace'] : undefined, name }
}

function prefixed(pointer: string, ops: readonly JsonPatchOp[]): JsonPatchOp[] {
  return pointer === '' ? [...ops] : ops.map((op) => ({ ...op, path: `${pointer}${op.path}` }))
}

/** A plain value with JSON Patch operations applied (through yaml's document model, as fix applies them). */
function patched(value: unknown, ops: readonly JsonPatchOp[]): unknown {
  // toJS gives an alias the same object as its anchor: copy it, do not turn it back into an alias.
  const document = new YamlDocument(value, { aliasDuplicateObjects: false })
  applyToDocument(document, ops)
  return document.toJS()
}

function tokens(pointer: string): string[] {
  return pointer.split('/').slice(1).map(unescapePointerToken)
}

/** The document's value after the edit: what its rewritten text must read as. */
function editedValue(document: ManifestDocument, edit: Edit): unknown {
  let value = edit.ops.length > 0 ? patched(document.value, edit.ops) : structuredClone(document.value)
  for (const split of [...edit.splits].sort(bySplitIndexDescending)) {
    if (split.pointer === '') {
      value = split.parts.map((p) => p.value)
      continue
    }
    const path = tokens(split.pointer)
    const items = path.slice(0, -1).reduce<unknown>((node, key) => (isRecord(node) || Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined), value)
    if (Array.isArray(items)) items.splice(Number(path.at(-1)), 1, ...split.parts.map((p) => p.value))
  }
  return value
}

function bySplitIndexDescending(a: Split, b: Split): number {
  return Number(b.pointer.split('/').at(-1)) - Number(a.pointer.split('/').at(-1))
}

function render(source: ManifestSource, documents: readonly ManifestDocument[], edits: ReadonlyMap<ManifestDocument, Edit>, findings: Finding[]): ManifestSource {
  const own = documents.filter((d) => d.source === source)
  if (!own.some((d) => edits.has(d))) return source
  const style = styleOf(source.text)
  const text = own
    .map((document) => {
      const edit = edits.get(document)
      const original = source.text.slice(document.start, document.end)
      if (edit === undefined) return original
      const expected = editedValue(document, edit)
      if (document.json) {
        // kubectl prints JSON indented by four spaces; a split object becomes a List.
        const value = Array.isArray(expected) ? { apiVersion: 'v1', kind: 'List', items: expected } : expected
        return `${JSON.stringify(value, null, 4)}\n`
      }
      const texts = renderYaml(document, edit, expected).map((d) => {
        if (d.expanded) {
          findings.push({
            where: { file: source.name, document: document.index + 1, line: document.line },
            rule: null,
            action: 'hint',
            message: 'this document uses YAML anchors or merge keys where nlb-guard changed it, so it is printed expanded (its comments are lost)',
          })
        }
        return d.document.toString(style)
      })
      const joined = texts.map((t, i) => (i > 0 && !t.startsWith('---') ? `---\n${t}` : t)).join('')
      return (document.index === 0 ? leadingBlank(original) : '') + joined
    })
    .join('')
  return { name: source.name, text }
}

/** The edited document (or, for a split document, one per part), checked against the value it must read as. */
function renderYaml(document: ManifestDocument, edit: Edit, expected: unknown): Array<{ document: Document; expanded: boolean }> {
  const ast = parseAgain(document)
  const whole = edit.splits.find((s) => s.pointer === '')
  if (whole !== undefined) {
    return whole.parts.map((part) => settle(ast.clone(), part.value, (clone) => applyToDocument(clone, part.ops)))
  }
  return [
    settle(ast, expected, () => {
      applyToDocument(ast, edit.ops)
      for (const split of [...edit.splits].sort(bySplitIndexDescending)) {
        const path = tokens(split.pointer)
        const items = ast.getIn(path.slice(0, -1), true)
        if (isSeq(items)) items.items.splice(Number(path.at(-1)), 1, ...split.parts.map((p) => ast.createNode(p.value)))
      }
    }),
  ]
}

/**
 * An edit through an alias or a merge key would change what the anchor's other users read, or
 * nothing at all: when the document does not read as the value it must have, it is rewritten whole.
 */
function settle(document: Document, expected: unknown, edit: (document: Document) => void): { document: Document; expanded: boolean } {
  try {
    edit(document)
    if (isDeepStrictEqual(document.toJS(), expected)) return { document, expanded: false }
  } catch {
    // yaml refuses to edit through an alias ("Expected YAML collection"): rewritten whole below.
  }
  document.contents = document.createNode(expected)
  return { document, expanded: true }
}

/** Blank lines before the first document, which the yaml library does not keep. */
function leadingBlank(text: string): string {
  return /^\s*/.exec(text)?.[0].replace(/[^\n]/g, '') ?? ''
}
