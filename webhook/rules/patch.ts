import type { JsonPatchOp } from './decision.js'

/** RFC 6901: `~` becomes `~0` and `/` becomes `~1` in a JSON Pointer token (annotation keys have `/`). */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1')
}

export function unescapePointerToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~')
}

/**
 * Operations that set `updates` in a string map at `mapPath` (e.g. `/metadata/annotations`).
 *
 * A missing or null map is added whole: an `add` below a missing parent fails (RFC 6902 §4.1), and
 * the apiserver rejects the whole patch. Existing keys are replaced, new ones added.
 */
export function setMapEntries(
  mapPath: string,
  current: Readonly<Record<string, string>> | null | undefined,
  updates: ReadonlyMap<string, string>,
): JsonPatchOp[] {
  const changed = [...updates].filter(([key, value]) => current?.[key] !== value)
  if (changed.length === 0) return []
  if (current == null) return [{ op: 'add', path: mapPath, value: Object.fromEntries(changed) }]
  return changed.map(([key, value]) => ({
    op: Object.hasOwn(current, key) ? 'replace' : 'add',
    path: `${mapPath}/${escapePointerToken(key)}`,
    value,
  }))
}

/**
 * Operations that set annotations on an object whose `metadata` may be missing; `basePath` is where
 * the object sits in the patched document ('' for the object itself, '/spec/template' for a
 * Deployment's pod template).
 */
export function setAnnotations(
  metadata: { annotations?: Readonly<Record<string, string>> | null | undefined } | null | undefined,
  updates: ReadonlyMap<string, string>,
  basePath = '',
): JsonPatchOp[] {
  if (metadata == null) {
    return updates.size === 0 ? [] : [{ op: 'add', path: `${basePath}/metadata`, value: { annotations: Object.fromEntries(updates) } }]
  }
  return setMapEntries(`${basePath}/metadata/annotations`, metadata.annotations, updates)
}
