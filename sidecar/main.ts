/*
 * Standalone entry for the sidecar container: `node dist/sidecar/main.js --port 5060 [...]` runs
 * `nlb-guard healthcheck` while loading only Node builtins, none of the webhook's dependencies.
 */
import { healthcheckCommand } from './healthcheck.js'

process.exitCode = await healthcheckCommand(process.argv.slice(2), {
  // A getter: touching process.stdin opens the stream, and the sidecar never reads it.
  get stdin() {
    return process.stdin
  },
  stdout: process.stdout,
  stderr: process.stderr,
})
