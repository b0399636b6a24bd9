import { HELP_FLAG, optionsText, parseFlags, UsageError, type Flags } from '../../lib/args.js'
import type { CliIo, Command } from '../../lib/cli.js'
import { ConfigError, loadConfig } from '../config.js'
import { parseKubeVersion } from '../rules/version.js'
import type { Finding } from './findings.js'
import { EXIT, exitCode } from './findings.js'
import { DEFAULT_SPLIT_NAME, fixManifests } from './fix.js'
import { readInputs } from './inputs.js'
import type { OutputFormat, Voice } from './report.js'
import { formatFinding, OUTPUT_FORMATS } from './report.js'

/**
 * Without --kube-version or a kubeVersion in the config, assume a cluster that supports
 * mixed-protocol Services (GA since 1.26) and native sidecars (1.29): the oldest minor still under
 * standard support on EKS at the time of writing.
 */
export const DEFAULT_OFFLINE_KUBE_VERSION = '1.30.0'

export const EXIT_CODES_HELP = `Exit codes:
  0  nothing to change
  1  findings: an object would be changed or denied, or its load balancer would stay pending
  2  usage error (an unknown flag, a bad value)
  3  input or config error: a file, document or object that cannot be read, or a bad --config
`

/** The flags of fix and check, in one table: parseFlags reads them, the usage text lists them. */
const COMMON_FLAGS = {
  filename: { type: 'string', short: 'f', multiple: true, value: 'PATH', help: 'a file, a directory (its .yaml, .yml and .json files) or - for stdin; repeatable;\npaths may also be given without -f; default: stdin' },
  recursive: { type: 'boolean', short: 'R', help: 'read directories given with -f recursively' },
  'kube-version': { type: 'string', value: 'X.Y.Z', help: `the cluster version the rules assume (default: config, else ${DEFAULT_OFFLINE_KUBE_VERSION})` },
  config: { type: 'string', value: 'FILE', help: 'nlb-guard configuration (mixedProtocolLBService, unbuildableMixedProtocol, sidecar, ...)' },
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'text (default), json (one JSON object per finding and line) or github\n(GitHub Actions annotations on the pull request); fix writes them to stderr' },
} as const satisfies Flags

const FLAGS = {
  fix: {
    ...COMMON_FLAGS,
    split: { type: 'boolean', help: 'rewrite a mixed-protocol LoadBalancer Service that the cluster or its load\nbalancer cannot build as one Service per protocol (each gets its own address)' },
    'split-name': { type: 'string', value: 'T', help: `names of the split Services, from {name} and {protocol} (default: ${DEFAULT_SPLIT_NAME})` },
    help: HELP_FLAG,
  },
  check: { ...COMMON_FLAGS, help: HELP_FLAG },
} as const satisfies Record<string, Flags>

const usage = (name: 'fix' | 'check'): string => `Usage: nlb-guard ${name} [-f PATH]... [PATH]... [-R] [--kube-version X.Y.Z] [--config FILE] [-o text|json|github]${name === 'fix' ? ' [--split [--split-name T]]' : ''}

${
  name === 'fix'
    ? `Reads Kubernetes manifests and prints them corrected by the rules, keeping comments, key order and
untouched documents as they are (JSON in, JSON out, indented as kubectl prints it). Each change is
explained on stderr. Prints nothing and exits 1 when an object would be denied, or when a Service
would be accepted but its load balancer never built (a mixed-protocol Service the provider cannot
build: --split rewrites it as one Service per protocol).`
    : `Reads Kubernetes manifests like fix and reports what the rules would change or deny: a CI gate.`
}

Inputs are read as kubectl reads them: YAML 1.1 (port: 0123 is 83), merge keys, multi-document
streams (Helm's "# Source:" comments are reported), JSON, kind: List and typed lists (ServiceList, ...).

Options:
${optionsText(FLAGS[name])}

${EXIT_CODES_HELP}`

interface Run {
  readonly findings: readonly Finding[]
  readonly outputs: ReadonlyArray<{ readonly text: string }>
  readonly format: OutputFormat
  readonly split: string | undefined
}

async function run(name: 'fix' | 'check', argv: readonly string[], io: CliIo): Promise<Run | number> {
  const options = { usage: usage(name), positionals: true }
  // check's table has no --split: parseFlags refuses it there as any unknown flag.
  const { values, positionals } = name === 'fix' ? parseFlags(FLAGS.fix, argv, options) : parseFlags(FLAGS.check, argv, options)
  if (values.help) {
    io.stdout.write(usage(name))
    return EXIT.clean
  }
  const output = values.output ?? 'text'
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`--output must be one of ${OUTPUT_FORMATS.join(', ')}, not "${output}"`, { usage: usage(name) })
  }
  const format = output as OutputFormat
  const splitName = 'split-name' in values && typeof values['split-name'] === 'string' ? values['split-name'] : undefined
  if (splitName !== undefined && !splitName.includes('{protocol}')) {
    throw new UsageError('--split-name must contain {protocol}, or every part would get the same name', { usage: usage(name) })
  }
  let config
  try {
    config = await loadConfig(values.config, values['kube-version'] === undefined ? {} : { kubeVersion: values['kube-version'] })
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error
    io.stderr.write(`nlb-guard ${name}: ${error.message}\n`)
    return EXIT.input
  }
  const version = parseKubeVersion(config.kubeVersion ?? DEFAULT_OFFLINE_KUBE_VERSION)
  const inputs = await readInputs([...(values.filename ?? []), ...positionals], values.recursive === true, io.stdin)
  const split = 'split' in values && values.split === true ? (splitName ?? DEFAULT_SPLIT_NAME) : undefined
  const result = fixManifests(inputs.sources, { version, config, split, render: name === 'fix' })
  return { findings: [...inputs.errors, ...result.findings], outputs: result.outputs, format, split }
}

/** fix fails (exit 1, nothing printed) on what it could not correct; the changes it made are its job. */
const fixFails = (f: Finding): boolean => f.action === 'deny' || f.action === 'pending'
/** check fails on anything that is not advice. */
const checkFails = (f: Finding): boolean => f.action !== 'hint' && f.action !== 'error'

export function writeFindings(findings: readonly Finding[], io: { write(chunk: string): unknown }, format: OutputFormat, voice: Voice, failing: (f: Finding) => boolean): void {
  for (const finding of findings) io.write(formatFinding(finding, format, voice, failing))
}

/** The closing line of a text or GitHub report: counts a person reads; JSON output has none. */
export function summary(command: string, findings: readonly Finding[], failing: (f: Finding) => boolean, what = 'object(s) would be changed or denied'): string {
  const errors = findings.filter((f) => f.action === 'error').length
  const objects = new Set(findings.filter(failing).map((f) => `${f.where.file}\u0000${f.where.document ?? ''}\u0000${f.where.item ?? ''}\u0000${f.object?.kind ?? ''}\u0000${f.object?.namespace ?? ''}\u0000${f.object?.name ?? ''}`)).size
  const parts = [
    ...(objects > 0 ? [`${objects} ${what}`] : []),
    ...(errors > 0 ? [`${errors} input(s) could not be read`] : []),
  ]
  return `nlb-guard ${command}: ${parts.length === 0 ? 'nothing to change' : parts.join('; ')}\n`
}

export const fixCommand: Command = async (argv, io) => {
  const ran = await run('fix', argv, io)
  if (typeof ran === 'number') return ran
  const { findings, outputs, format, split } = ran
  writeFindings(findings, io.stderr, format, 'did', fixFails)
  const code = exitCode(findings, fixFails)
  if (code !== EXIT.clean) {
    if (format !== 'json') {
      const splitHelps = split === undefined && findings.some((f) => f.rule === 'S1' && fixFails(f))
      const advice = splitHelps ? ' (--split writes a mixed-protocol Service as one Service per protocol)' : ''
      io.stderr.write(summary('fix', findings, fixFails, 'object(s) cannot be fixed').replace(/\n$/, `; nothing printed${advice}\n`))
    }
    return code
  }
  for (const output of outputs) io.stdout.write(output.text)
  return code
}

export const checkCommand: Command = async (argv, io) => {
  const ran = await run('check', argv, io)
  if (typeof ran === 'number') return ran
  const { findings, format } = ran
  writeFindings(findings, io.stdout, format, 'would', checkFails)
  if (format !== 'json') io.stdout.write(summary('check', findings, checkFails))
  return exitCode(findings, checkFails)
}
