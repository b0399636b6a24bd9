/** A plain JSON object (not null, not an array): what a decoded Kubernetes object is at the top. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
