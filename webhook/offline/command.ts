import { readFile } from 'node:fs/promises'
import { text as readStream } from 'node:stream/consumers'
import { parseArgs } from 'node:util'
import type { CliIo, Command } from '../../lib/cli.js'
import { ConfigError, loadConfig } from '../config.js'
import { parseKubeVersion } from '../rules/version.js'
import type { FixResult, ManifestSource } from './fix.js'
import { describeReport, fixManifests, ManifestError } from './fix.js'

/**
 * Without --kube-version or a kubeVersion in the config, assume a cluster that supports
 * mixed-protocol Services (GA since 1.26) and native sidecars (1.29): the oldest minor still under
 * standard support on EKS at the time of writing.
 */
export const DEFAULT_OFFLINE_KUBE_VERSION = '1.30.0'

const usage = (name: 'fix' | 'check'): string => `Usage: nlb-guard ${name} [-f FILE]... [--kube-version X.Y.Z] [--config FILE]

${
  name === 'fix'
    ? 'Reads Kubernetes manifests (files, or stdin when no -f is given or -f -) and prints them corrected by\nthe rules, keeping comments, key order and untouched documents as they are. Each change is explained\non stderr. Exits 1, naming the reasons, when any object would be denied.'
    : 'Reads Kubernetes manifests like fix and reports what the rules would change or deny.\nExits 0 when nothing would change, 1 otherwise.'
}

Options:
  -f, --filename FILE    a YAML file with one or more documents; repeatable; - for stdin
  --kube-version X.Y.Z   the cluster version the rules assume (default: config, else ${DEFAULT_OFFLINE_KUBE_VERSION})
  --config FILE          nlb-guard configuration (mixedProtocolLBService, unbuildableMixedProtocol, …)
  -h, --help             show this help
`

interface Parsed {
  readonly sources: ManifestSource[]
  readonly result: FixResult
}

async function run(name: 'fix' | 'check', argv: readonly string[], io: CliIo): Promise<Parsed | number> {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        'kube-version': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (error: unknown) {
    io.stderr.write(`nlb-guard ${name}: ${(error as Error).message}\n\n${usage(name)}`)
    return 2
  }
  if (values.help) {
    io.stdout.write(usage(name))
    return 0
  }
  let config
  try {
    config = await loadConfig(values.config, values['kube-version'] === undefined ? {} : { kubeVersion: values['kube-version'] })
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error
    io.stderr.write(`nlb-guard ${name}: ${error.message}\n`)
    return 1
  }
  const version = parseKubeVersion(config.kubeVersion ?? DEFAULT_OFFLINE_KUBE_VERSION)
  const files = values.filename ?? ['-']
  const sources: ManifestSource[] = []
  for (const file of files) {
    try {
      sources.push({ name: file === '-' ? '<stdin>' : file, text: file === '-' ? await readStream(io.stdin) : await readFile(file, 'utf8') })
    } catch (error: unknown) {
      io.stderr.write(`nlb-guard ${name}: cannot read ${file}: ${(error as Error).message}\n`)
      return 1
    }
  }
  try {
    return { sources, result: fixManifests(sources, { version, config }) }
  } catch (error: unknown) {
    if (!(error instanceof ManifestError)) throw error
    io.stderr.write(`nlb-guard ${name}: ${error.message}\n`)
    return 1
  }
}

export const fixCommand: Command = async (argv, io) => {
  const parsed = await run('fix', argv, io)
  if (typeof parsed === 'number') return parsed
  const { result } = parsed
  for (const report of result.reports) for (const line of describeReport(report)) io.stderr.write(`${line}\n`)
  const denied = result.reports.filter((r) => !r.decision.allowed)
  if (denied.length > 0) {
    io.stderr.write(`nlb-guard fix: ${denied.length} object(s) would be denied; nothing printed\n`)
    return 1
  }
  for (const output of result.outputs) io.stdout.write(output.text)
  return 0
}

export const checkCommand: Command = async (argv, io) => {
  const parsed = await run('check', argv, io)
  if (typeof parsed === 'number') return parsed
  let findings = 0
  for (const report of parsed.result.reports) {
    const { decision } = report
    if (decision.allowed && decision.ops.length === 0) {
      // Nothing to change; hints still help.
      for (const hint of decision.hints) io.stdout.write(`${report.source}: ${report.kind} ${report.name}: hint: ${hint}\n`)
      continue
    }
    findings++
    const where = `${report.source}: ${report.kind} ${report.name}`
    if (!decision.allowed) io.stdout.write(`${where}: would be denied: ${decision.message}\n`)
    else for (const change of decision.changes) io.stdout.write(`${where}: would change: ${change.message}\n`)
  }
  io.stdout.write(findings === 0 ? 'nlb-guard check: nothing to change\n' : `nlb-guard check: ${findings} object(s) would be changed or denied\n`)
  return findings === 0 ? 0 : 1
}
