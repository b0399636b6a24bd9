// The sidecar's TypeScript command still imports these from here; everything else uses lib/cli.ts.
export type { CliIo, Command } from '../../lib/cli.js'
