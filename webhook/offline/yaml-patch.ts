import type { Document, ToStringOptions } from 'yaml'
import { isMap, isSeq } from 'yaml'
import type { JsonPatchOp } from '../rules/decision.js'
import { unescapePointerToken } from '../rules/patch.js'

/**
 * Applies the rules' JSON Patch operations to a parsed YAML document, so comments, key order and
 * quoting of everything else survive (a JSON round trip would lose them all).
 */
export function applyToDocument(document: Document, ops: readonly JsonPatchOp[]): void {
  for (const op of ops) {
    const path = op.path.split('/').slice(1).map(unescapePointerToken)
    const parentPath = path.slice(0, -1)
    const last = path.at(-1)
    if (last === undefined) throw new Error(`cannot apply ${op.op} to the document root`)
    if (op.op === 'remove') {
      document.deleteIn(path)
      continue
    }
    const node = document.createNode(op.value)
    // A new map in block style: `annotations: {}` would otherwise grow into a long flow map.
    if (isMap(node) || isSeq(node)) node.flow = false
    const parent = document.getIn(parentPath, true)
    if (op.op === 'add' && last === '-') {
      document.addIn(parentPath, node)
    } else if (isMap(parent) && parent.flow && parent.items.length === 0) {
      parent.flow = false
      document.setIn(path, node)
    } else {
      document.setIn(path, node)
    }
  }
}

/** Stringify options that follow the source's own style where the yaml library lets us. */
export function styleOf(source: string): ToStringOptions {
  // "key:\n- item" (sequence not indented under its key), as kubectl and many repos write it.
  const unindentedSequences = /^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(source)
  const paddedFlow = /[{[] [^\s}\]]/.test(source)
  return { lineWidth: 0, indentSeq: !unindentedSequences, flowCollectionPadding: paddedFlow }
}
