import { objectName } from '../k8s/objects.js'
import type { Action, Finding } from './findings.js'

/**
 * How findings are written: `text` for people, `json` (one JSON object per line) for scripts, and
 * `github`: GitHub Actions workflow commands, which annotate the pull request's changed lines from
 * the job's own output. Chosen over SARIF because they need no upload step, no extra permission
 * (SARIF upload needs `security-events: write`, and code scanning, which private repositories get
 * only with GitHub Advanced Security) and work in any job that runs the command.
 */
export const OUTPUT_FORMATS = ['text', 'json', 'github'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

/** How each action reads in text: `check`/`audit` say what would happen, `fix` what it did. */
export type Voice = 'would' | 'did'

const TEXT: Record<Voice, Record<Action, string>> = {
  would: {
    change: 'would change',
    deny: 'would be denied',
    pending: 'would stay pending',
    split: 'split',
    'missing-sidecar': 'lacks the health-check sidecar',
    hint: 'hint',
    error: 'cannot read',
  },
  did: {
    change: 'warning',
    deny: 'denied',
    pending: 'would stay pending',
    split: 'split',
    'missing-sidecar': 'lacks the health-check sidecar',
    hint: 'warning',
    error: 'cannot read',
  },
}

export function formatFinding(finding: Finding, format: OutputFormat, voice: Voice, failing: (f: Finding) => boolean): string {
  if (format === 'json') return `${JSON.stringify(toRecord(finding))}\n`
  if (format === 'github') return githubCommand(finding, voice, failing)
  const rule = finding.rule === null || voice === 'did' || finding.action === 'hint' ? '' : ` (${finding.rule})`
  return `${location(finding)}: ${TEXT[voice][finding.action]}${rule}: ${finding.message}\n`
}

/** The JSON record of a finding: every key always present (null when unknown), for simple consumers. */
export function toRecord(finding: Finding): Record<string, unknown> {
  const { where, object } = finding
  return {
    file: where.file,
    document: where.document ?? null,
    item: where.item ?? null,
    line: where.line ?? null,
    helmSource: where.helmSource ?? null,
    apiVersion: object?.apiVersion ?? null,
    kind: object?.kind ?? null,
    namespace: object?.namespace ?? null,
    name: object?.name ?? null,
    rule: finding.rule,
    action: finding.action,
    message: finding.message,
  }
}

function location(finding: Finding): string {
  const { where } = finding
  const place = `${where.file}${where.line === undefined ? '' : `:${where.line}`}${where.helmSource === undefined ? '' : ` (${where.helmSource})`}`
  return subject(finding) === '' ? place : `${place}: ${subject(finding)}`
}

/** `Service demo/echo`, `document 3` for a document that is not an object, or '' for a whole file. */
function subject({ where, object }: Finding): string {
  if (object !== undefined) return `${object.kind} ${objectName({ name: object.name, namespace: object.namespace })}`
  return where.document === undefined ? '' : `document ${where.document}`
}

/**
 * `::error file=…,line=…,title=…::message` (docs.github.com, "Workflow commands for GitHub
 * Actions"). Values are escaped as @actions/core escapes them: %, CR and LF in the message, and also
 * `:` and `,` in properties.
 */
function githubCommand(finding: Finding, voice: Voice, failing: (f: Finding) => boolean): string {
  const level = finding.action === 'error' || failing(finding) ? 'error' : finding.action === 'hint' ? 'notice' : 'warning'
  const { where } = finding
  const properties = [
    // A file GitHub cannot map to the repository (stdin, the cluster) is left off: the annotation then goes on the job.
    ...(where.file.startsWith('<') || where.file === 'cluster' ? [] : [`file=${escapeProperty(where.file)}`]),
    ...(where.line === undefined ? [] : [`line=${where.line}`]),
    `title=${escapeProperty(`nlb-guard: ${TEXT[voice][finding.action]}${finding.rule === null ? '' : ` (${finding.rule})`}`)}`,
  ]
  const about = subject(finding)
  return `::${level} ${properties.join(',')}::${escapeData(about === '' ? finding.message : `${about}: ${finding.message}`)}\n`
}

function escapeData(text: string): string {
  return text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A')
}

function escapeProperty(text: string): string {
  return escapeData(text).replaceAll(':', '%3A').replaceAll(',', '%2C')
}
