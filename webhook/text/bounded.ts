/**
 * Caller-controlled text, cut to a fixed size before it goes anywhere that keeps it: a log line, a
 * denial message, a warning. A mutating webhook sees an object before the apiserver validates it, so
 * a name, a kind or an annotation value can be megabytes long (the body limit is 7 MiB).
 */

/** Longest caller-supplied field in a log line: Kubernetes names are at most 253 characters, uids 36. */
export const MAX_LOG_FIELD = 256

/**
 * The text itself when it is at most `max` characters, else its first `max` characters and how
 * many were left out. Cuts on a code point boundary: a lone surrogate would not survive JSON
 * encoding intact (Go's encoder, and so the apiserver, turns it into U+FFFD).
 */
export function bounded(text: string, max: number = MAX_LOG_FIELD): string {
  if (text.length <= max) return text
  let end = max
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}…(${text.length - end} more characters)`
}

/** `bounded` for optional values: undefined stays undefined (pino then leaves the field out). */
export function boundedOptional(text: string | undefined, max: number = MAX_LOG_FIELD): string | undefined {
  return text === undefined ? undefined : bounded(text, max)
}
