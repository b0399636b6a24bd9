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
  const kept = (attributes ?? '').replace(/[\s,]+$/, '')
  return kept.trim() === '' ? entry : `${kept},${entry}`
}

/** Go's strconv.ParseBool, which both AWS controllers use for these annotations; undefined when invalid. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  return undefined
}
