import { CROSS_ZONE_ATTRIBUTE } from './annotations.js'

/**
 * `service.beta.kubernetes.io/aws-load-balancer-attributes` is a comma-separated `key=value` list
 * (AWS Load Balancer Controller: split on ",", then on the first "=", both sides trimmed).
 */
export function crossZoneAttributeValue(attributes: string | undefined): string | undefined {
  if (attributes === undefined) return undefined
  for (const entry of attributes.split(',')) {
    const at = entry.indexOf('=')
    if (at < 0) continue
    if (entry.slice(0, at).trim() === CROSS_ZONE_ATTRIBUTE) return entry.slice(at + 1).trim()
  }
  return undefined
}

/** The list with cross-zone enabled appended: the other attributes, their order and spacing are kept. */
export function withCrossZoneAttribute(attributes: string | undefined): string {
  const entry = `${CROSS_ZONE_ATTRIBUTE}=true`
  // A loop, not .replace(/[\s,]+$/, ''): that regex backtracks quadratically on a long run of spaces
  // followed by anything else (40 KB took over a second), and a mutating webhook sees the object before
  // the apiserver checks its size, so one Service could stall every admission.
  const current = attributes ?? ''
  let end = current.length
  while (end > 0 && /[\s,]/.test(current.charAt(end - 1))) end--
  const kept = current.slice(0, end)
  return kept.trim() === '' ? entry : `${kept},${entry}`
}

/** Go's strconv.ParseBool, which both AWS controllers use for these annotations; undefined when invalid. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  return undefined
}
