import { bounded } from '../text/bounded.js'
import { CROSS_ZONE_ATTRIBUTE } from './annotations.js'

/** Longest caller-written text quoted in a message. */
const MAX_QUOTED = 120

/**
 * `service.beta.kubernetes.io/aws-load-balancer-attributes` read exactly as the AWS Load Balancer
 * Controller reads it: `ParseStringMapAnnotation` with `splitCommaSeparatedString` in
 * kubernetes-sigs/aws-load-balancer-controller pkg/annotations/parser.go. The list is split on ","
 * and each entry is trimmed (Go's strings.TrimSpace) and skipped when empty; the entry is then cut at
 * its first "=" with nothing trimmed around it (`a = b` is the key "a " with the value " b"); an entry
 * without "=", or with an empty key, fails the whole annotation; a repeated key keeps its LAST value
 * (a Go map assignment). EKS Auto Mode reads the same annotation with the same format.
 */
export type AttributeList =
  | { readonly readable: true; readonly values: ReadonlyMap<string, string> }
  | { readonly readable: false; readonly entry: string }

export function parseAttributes(raw: string): AttributeList {
  const values = new Map<string, string>()
  for (const part of raw.split(',')) {
    const entry = goTrimSpace(part)
    if (entry === '') continue
    const at = entry.indexOf('=')
    if (at <= 0) return { readable: false, entry }
    values.set(entry.slice(0, at), entry.slice(at + 1))
  }
  return { readable: true, values }
}

/** What the attributes list says about cross-zone load balancing. */
export type CrossZoneAttribute =
  | { readonly state: 'absent' }
  | { readonly state: 'on' | 'off'; readonly value: string }
  /** The controller would fail on it (an unreadable list), or pass AWS a value that is not true or false. */
  | { readonly state: 'unreadable'; readonly problem: string }

/**
 * The controller hands the value to the ELBv2 API as it is (no ParseBool on this path), and AWS
 * documents `true` and `false` as this attribute's values: anything else is unreadable here.
 */
export function crossZoneAttribute(raw: string | undefined): CrossZoneAttribute {
  if (raw === undefined) return { state: 'absent' }
  const list = parseAttributes(raw)
  if (!list.readable) {
    return { state: 'unreadable', problem: `the entry "${bounded(list.entry, MAX_QUOTED)}" is not key=value, so the controller cannot read the annotation at all` }
  }
  const value = list.values.get(CROSS_ZONE_ATTRIBUTE)
  if (value === undefined) return { state: 'absent' }
  if (value === 'true') return { state: 'on', value }
  if (value === 'false') return { state: 'off', value }
  return { state: 'unreadable', problem: `${CROSS_ZONE_ATTRIBUTE} is "${bounded(value, MAX_QUOTED)}" (the controller keeps the last value of a repeated key, untrimmed), which is neither true nor false` }
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

/** Go's strconv.ParseBool, which both AWS controllers use for the legacy annotation; undefined when invalid. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  return undefined
}

/** Go's unicode.IsSpace: differs from JavaScript's trim() on U+0085 (a space in Go) and U+FEFF (not one). */
function isGoSpace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) || code === 0x20 || code === 0x85 || code === 0xa0 || code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000
  )
}

/** strings.TrimSpace, by index (an anchored regex would backtrack on long runs of spaces). */
export function goTrimSpace(text: string): string {
  let start = 0
  let end = text.length
  while (start < end && isGoSpace(text.charCodeAt(start))) start++
  while (end > start && isGoSpace(text.charCodeAt(end - 1))) end--
  return text.slice(start, end)
}
