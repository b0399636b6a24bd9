import type { CliIo, Command } from '../../lib/cli.js'
import { reportUsageError, UsageError } from '../../lib/args.js'
import { ConfigError } from '../../lib/errors.js'
import { packageVersion } from './version.js'

/**
 * Commands load lazily: `fix` and `check` must not pay for fastify, client-node or node-forge. The
 * health-check sidecar is not a command: it is its own static binary (sidecar/, its own image).
 */
const COMMANDS: Record<string, { readonly summary: string; readonly load: () => Promise<Command> }> = {
  serve: { summary: 'run the admission webhook', load: async () => (await import('../server/serve.js')).serveCommand },
  fix: { summary: 'print manifests corrected by the rules', load: async () => (await import('../offline/command.js')).fixCommand },
  check: { summary: 'report what the rules would change or deny', load: async () => (await import('../offline/command.js')).checkCommand },
  audit: { summary: 'report what the rules would change or deny in a live cluster', load: async () => (await import('../audit/command.js')).auditCommand },
  certs: { summary: 'generate or inject webhook certificates', load: async () => (await import('../../certs/command.js')).certsCommand },
}

export const USAGE = `Usage: nlb-guard <command> [options]

Makes bare TCP/UDP LoadBalancer Services work on AWS: a Kubernetes admission webhook and the
same rules offline.

Commands:
${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(12)} ${summary}`)
  .join('\n')}

Run \`nlb-guard <command> --help\` for a command's options.
`

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ;(name === undefined ? io.stderr : io.stdout).write(USAGE)
    return name === undefined ? 2 : 0
  }
  if (name === '--version') {
    io.stdout.write(`${await packageVersion()}\n`)
    return 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    io.stderr.write(`nlb-guard: unknown command "${name}"\n\n${USAGE}`)
    return 2
  }
  try {
    return await (await command.load())(rest, io)
  } catch (error: unknown) {
    if (error instanceof UsageError) return reportUsageError(io.stderr, `nlb-guard ${name}`, error.message, error.usage)
    if (error instanceof ConfigError) {
      io.stderr.write(`nlb-guard ${name}: ${error.message}\n`)
      return 1
    }
    throw error
  }
}
