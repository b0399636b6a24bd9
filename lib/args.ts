import { parseArgs, type ParseArgsOptionDescriptor } from 'node:util'
import type { CliIo } from './cli.js'

/**
 * The one way a command reads its flags: a table of flags gives node's parseArgs its options, the
 * usage text its Options section, and (for `serve`) the configuration key each flag sets.
 *
 * No value imports: bench/ runs this file with Node's type stripping, which does not map the
 * `.js` of a relative import to its `.ts` source (type-only imports are erased).
 */

/** A usage error: the CLI prints the message, then the command's usage when known, and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly usage: string | undefined

  constructor(message: string, options: { readonly cause?: unknown; readonly usage?: string | undefined } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.usage = options.usage
  }
}

export interface Flag extends ParseArgsOptionDescriptor {
  /** What the value looks like in the usage text: `N`, `FILE`. */
  readonly value?: string
  /** One line, or several joined by \n: the usage text indents the rest under the first. */
  readonly help: string
  /** The configuration key the flag sets, dotted for nested keys (`tls.certFile`). */
  readonly config?: string
  /** The value is a number (parseArgs knows only strings and booleans). */
  readonly number?: boolean
}

export type Flags = Readonly<Record<string, Flag>>

/** Every command's --help. */
export const HELP_FLAG = { type: 'boolean', short: 'h', help: 'show this help' } as const satisfies Flag

/**
 * Parses argv against the flags; an unknown flag, a missing value or a stray argument is a
 * UsageError that carries the command's usage.
 */
export function parseFlags<const F extends Flags>(flags: F, argv: readonly string[], options: { readonly usage?: string; readonly positionals?: boolean } = {}) {
  try {
    return parseArgs({ args: [...argv], options: flags, strict: true, allowPositionals: options.positionals ?? false })
  } catch (error: unknown) {
    // parseArgs throws only TypeErrors (code ERR_PARSE_ARGS_*: node docs, util.parseArgs).
    throw new UsageError((error as Error).message, { cause: error, usage: options.usage })
  }
}

/** The Options section of a usage text, one entry per flag, in the table's order. */
export function optionsText(flags: Flags): string {
  const left = Object.entries(flags).map(([name, flag]) => `${flag.short === undefined ? '' : `-${flag.short}, `}--${name}${flag.value === undefined ? '' : ` ${flag.value}`}`)
  const width = Math.max(...left.map((l) => l.length)) + 2
  return Object.values(flags)
    .map((flag, i) => {
      const [first, ...rest] = flag.help.split('\n')
      return [`  ${(left[i] ?? '').padEnd(width)}${first}`, ...rest.map((line) => `  ${' '.repeat(width)}${line}`)].join('\n')
    })
    .join('\n')
}

/**
 * The configuration the flags given on the command line set, keyed as in the config file (flags
 * without a `config` key are the command's own). A number that does not parse is a UsageError.
 */
export function configFromFlags(flags: Flags, values: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const config: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const value = values[name]
    if (flag.config === undefined || value === undefined) continue
    const path = flag.config.split('.')
    let node = config
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>
    node[path[path.length - 1] as string] = flag.number === true ? toNumber(`--${name}`, String(value)) : value
  }
  return config
}

function toNumber(flag: string, text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${flag} expects a number, got "${text}"`)
  return value
}

/**
 * How every command reports a usage error: the command as typed (`nlb-guard certs generate`), the
 * problem, then its usage, on stderr; the exit code is 2.
 */
export function reportUsageError(stderr: CliIo['stderr'], command: string, message: string, usage: string | undefined): number {
  stderr.write(`${command}: ${message}\n${usage === undefined ? '' : `\n${usage}`}`)
  return 2
}
