import type { DocumentOptions, ParseOptions, SchemaOptions, Tags } from 'yaml'
import { Composer, isMap, isSeq, LineCounter, parseDocument, Parser } from 'yaml'
import { errorMessage } from '../../lib/errors.js'

/**
 * Reading manifests as kubectl reads them. kubectl turns YAML into JSON with sigs.k8s.io/yaml, which
 * uses go-yaml v2: YAML 1.1, so `port: 0123` is 83, `yes`/`on` are booleans and merge keys (`<<`)
 * apply. The `yaml` package reads YAML 1.1 too; its sexagesimal numbers (`1:30` → 90) and
 * timestamps, which go-yaml v2 leaves as strings (and sigs.k8s.io/yaml never sees as numbers),
 * are turned off. Documents come one at a time (yaml's Composer), so a large stream never holds
 * more than one syntax tree.
 */

export interface ManifestSource {
  /** As the user named it (a path, or `<stdin>`). */
  readonly name: string
  readonly text: string
}

/** One document of a source: where it is, and its value as kubectl would read it. */
export interface ManifestDocument {
  readonly source: ManifestSource
  /** 0-based position in the source. */
  readonly index: number
  /** The document's text is `source.text.slice(start, end)`: up to where the next one starts. */
  readonly start: number
  readonly end: number
  /** 1-based line where its content starts. */
  readonly line: number
  /** Helm's `# Source: chart/templates/x.yaml` comment, when the stream is rendered by Helm. */
  readonly helmSource: string | undefined
  readonly json: boolean
  /** undefined for an empty document (Helm renders templates that produce nothing as one). */
  readonly value: unknown
  /** 1-based lines of the items of a List, by index, for reporting. */
  readonly itemLines: readonly number[]
  /** Why this document cannot be read; its value is then undefined. */
  readonly error: string | undefined
}

const WITHOUT_GO_YAML_V2_EXTRAS = (tags: Tags): Tags =>
  tags.filter((tag) => typeof tag === 'string' || (tag.format !== 'TIME' && tag.tag !== 'tag:yaml.org,2002:timestamp'))

/** Options of every parse of a manifest, so a document parsed again for `fix` reads the same. */
export const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  merge: true,
  customTags: WITHOUT_GO_YAML_V2_EXTRAS,
  // go-yaml v2 keeps the last of duplicate keys; an error here would refuse what kubectl applies.
  uniqueKeys: false,
}

/** At most this many aliases are expanded per document (yaml's default): a "billion laughs" stops here. */
const MAX_ALIAS_COUNT = 100

/** kubectl decodes a stream as JSON when it starts with `{` (apimachinery's YAMLOrJSONDecoder); so do we, and for `.json` files. */
export function isJson(source: ManifestSource): boolean {
  return /\.json$/i.test(source.name) || /^\s*[{[]/.test(source.text)
}

/** The documents of a source, one at a time: a caller that keeps only some keeps only their values. */
export function readDocuments(source: ManifestSource): Iterable<ManifestDocument> {
  return isJson(source) ? [readJson(source)] : readYaml(source)
}

function readJson(source: ManifestSource): ManifestDocument {
  const base = { source, index: 0, start: 0, end: source.text.length, line: 1, helmSource: undefined, json: true, itemLines: [] }
  if (source.text.trim() === '') return { ...base, value: undefined, error: undefined }
  try {
    return { ...base, value: JSON.parse(source.text) as unknown, error: undefined }
  } catch (error: unknown) {
    return { ...base, value: undefined, error: `not valid JSON: ${errorMessage(error)}` }
  }
}

function* readYaml(source: ManifestSource): Generator<ManifestDocument> {
  const { text } = source
  const lines = new LineCounter()
  const composer = new Composer(YAML_OPTIONS)
  const lineOf = (offset: number): number => lines.linePos(offset).line
  let previous: { document: import('yaml').Document.Parsed; index: number } | undefined
  let index = 0
  let start = 0
  const finish = (document: import('yaml').Document.Parsed, at: number, end: number): ManifestDocument => {
    const contents = document.contents
    const contentStart = contents?.range[0] ?? document.range[0]
    const helmSource = /^# Source: (.+)$/m.exec(text.slice(start, contentStart))?.[1]?.trim()
    const base = { source, index: at, start, end, line: lineOf(contentStart), helmSource, json: false }
    const syntax = document.errors[0]
    if (syntax !== undefined) return { ...base, value: undefined, itemLines: [], error: syntax.message }
    let value: unknown
    try {
      value = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
    } catch (error: unknown) {
      // yaml throws a ReferenceError for an alias bomb and for an alias to a missing anchor.
      return { ...base, value: undefined, itemLines: [], error: errorMessage(error) }
    }
    const items = isMap(contents) ? contents.get('items', true) : undefined
    const itemLines = isSeq(items) ? items.items.map((item) => lineOf((item as { range?: [number] }).range?.[0] ?? contentStart)) : []
    return { ...base, value, itemLines, error: undefined }
  }
  const parser = new Parser(lines.addNewLine)
  for (const document of composer.compose(parser.parse(text), false, text.length)) {
    if (previous !== undefined) {
      const end = document.range[0]
      yield finish(previous.document, previous.index, end)
      start = end
    }
    previous = { document, index: index++ }
  }
  if (previous !== undefined) yield finish(previous.document, previous.index, text.length)
}

/** Parses a document's own text again, to edit it with its comments and layout. */
export function parseAgain(document: ManifestDocument): import('yaml').Document.Parsed {
  return parseDocument(document.source.text.slice(document.start, document.end), YAML_OPTIONS)
}
