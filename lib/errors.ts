/**
 * Error types and helpers shared by every folder. A leaf: `webhook/cli/main.ts` tells these apart
 * with instanceof without loading zod or yaml (which config.ts needs) into the sidecar.
 */

/** The configuration (file or flags) is invalid; the message names the offending key. Exit 1. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** The message of anything thrown, for a log field or a line on stderr (never JSON.stringify an Error). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
