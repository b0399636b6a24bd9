import { HELP_FLAG, optionsText, parseFlags, UsageError, type Flags } from '../../lib/args.js'
import type { Command } from '../../lib/cli.js'
import { errorMessage } from '../../lib/errors.js'
import { ConfigError, loadConfig } from '../config.js'
import type { Finding } from '../offline/findings.js'
import { EXIT, exitCode } from '../offline/findings.js'
import { EXIT_CODES_HELP, summary, writeFindings } from '../offline/command.js'
import type { OutputFormat } from '../offline/report.js'
import { OUTPUT_FORMATS } from '../offline/report.js'
import { parseKubeVersion } from '../rules/version.js'
import { auditCluster } from './audit.js'

const FLAGS = {
  kubeconfig: { type: 'string', value: 'FILE', help: 'kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)' },
  context: { type: 'string', value: 'NAME', help: 'the kubeconfig context to use (default: its current context)' },
  'kube-version': { type: 'string', value: 'X.Y.Z', help: "the version the rules assume (default: config, else the cluster's /version)" },
  config: { type: 'string', value: 'FILE', help: 'nlb-guard configuration (as given to serve)' },
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'text (default), json (one JSON object per finding and line) or github' },
  help: HELP_FLAG,
} as const satisfies Flags

const USAGE = `Usage: nlb-guard audit [--kubeconfig FILE] [--context NAME] [--kube-version X.Y.Z] [--config FILE] [-o text|json|github]

Reads a live cluster (read-only: it lists Services, Pods, ReplicaSets and Jobs) and reports what the
rules would change or deny in the objects already there, which an admission webhook never sees: those
created before nlb-guard was registered. Each Service is judged as if created now; each running pod
that lacks the health-check sidecar the Pod rule would give it is reported once per workload, with the
command that restarts it. Namespaces in the config's excludedNamespaces are skipped, as the webhook
skips them. In a pod, it uses the pod's service account (manifests/audit grants it the lists).

Options:
${optionsText(FLAGS)}

${EXIT_CODES_HELP.replace('a file, document or object that cannot be read', 'the cluster cannot be reached or read, an object that cannot be read')}`

export const auditCommand: Command = async (argv, io) => {
  const { values } = parseFlags(FLAGS, argv, { usage: USAGE })
  if (values.output !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(values.output)) {
    throw new UsageError(`--output must be one of ${OUTPUT_FORMATS.join(', ')}, not "${values.output}"`, { usage: USAGE })
  }
  if (values.help) {
    io.stdout.write(USAGE)
    return EXIT.clean
  }
  const format = (values.output ?? 'text') as OutputFormat
  const fail = (message: string): number => {
    io.stderr.write(`nlb-guard audit: ${message}\n`)
    return EXIT.input
  }
  let config
  try {
    config = await loadConfig(values.config, {
      ...(values['kube-version'] === undefined ? {} : { kubeVersion: values['kube-version'] }),
      ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
    })
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error
    return fail(error.message)
  }
  // client-node (88 MB) only for the command that talks to a cluster.
  const { loadKubeConfig, fetchGitVersion, readInventory } = await import('./cluster.js')
  let kubeConfig
  try {
    kubeConfig = loadKubeConfig(config.kubeconfig)
    if (values.context !== undefined) kubeConfig.setCurrentContext(values.context)
    if (kubeConfig.getCurrentCluster() === null) return fail('no cluster: give --kubeconfig, set $KUBECONFIG, or run in a pod')
  } catch (error: unknown) {
    return fail(`cannot load the kubeconfig: ${errorMessage(error)}`)
  }
  let findings: Finding[]
  try {
    const version = parseKubeVersion(config.kubeVersion ?? (await fetchGitVersion(kubeConfig)()))
    findings = auditCluster(await readInventory(kubeConfig), { version, config })
  } catch (error: unknown) {
    // fetch reports a refused connection or a TLS failure as "fetch failed" with the reason in `cause`.
    const cause = error instanceof Error && error.cause !== undefined ? `: ${errorMessage(error.cause)}` : ''
    return fail(`${errorMessage(error)}${cause} (the audit needs list on services, pods, replicasets and jobs: manifests/audit)`)
  }
  const failing = (f: Finding): boolean => f.action !== 'hint' && f.action !== 'error'
  writeFindings(findings, io.stdout, format, 'would', failing)
  if (format !== 'json') io.stdout.write(summary('audit', findings, failing))
  return exitCode(findings, failing)
}
