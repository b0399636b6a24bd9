/**
 * What every command shares: the streams it talks to (the usage error and flag parsing are in
 * args.ts). A leaf module: `webhook/`, `certs/` and the sidecar all import it, and it imports
 * nothing of theirs.
 */

/**
 * The streams a command talks to. Commands take them as a parameter so tests can capture output
 * without spawning a process; only webhook/bin.ts passes the real process streams.
 */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream
  readonly stdout: { write(chunk: string): unknown }
  readonly stderr: { write(chunk: string): unknown }
}

/** A command's entry point: parsed from argv, returns the process exit code, never calls process.exit. */
export type Command = (argv: readonly string[], io: CliIo) => Promise<number>
