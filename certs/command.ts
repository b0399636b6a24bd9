import { randomBytes, X509Certificate } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { HELP_FLAG, optionsText, parseFlags, reportUsageError, UsageError, type Flags } from '../lib/args.js'
import type { CliIo, Command } from '../lib/cli.js'
import { errorMessage } from '../lib/errors.js'
import { caBundleBase64, pemCertificates } from './bundle.js'
import type { WebhookConfigurationClient } from './cluster.js'
import { WEBHOOK_KIND_NAMES, WEBHOOK_KINDS } from './cluster.js'
import { CertificateRequestError } from './errors.js'
import type { InjectionResult } from './inject.js'
import { injectCaBundle } from './inject.js'
import { issueCA, issueServingCertificate, serviceDnsNames } from './issue.js'
import { certificateInfo } from './rotation.js'

const CERTS_USAGE = `Usage: nlb-guard certs <subcommand> [options]

Subcommands:
  generate     write a new CA and a serving certificate for the webhook Service
  inject       put a CA into caBundle of nlb-guard's webhook configurations

Run \`nlb-guard certs <subcommand> --help\` for its options.
`

const GENERATE_FLAGS = {
  service: { type: 'string', value: 'S', help: "the webhook's Service name (required)" },
  namespace: { type: 'string', value: 'N', help: "the Service's namespace (required)" },
  out: { type: 'string', value: 'DIR', help: 'folder to write to, created if missing (required)' },
  dns: { type: 'string', multiple: true, value: 'D', help: 'an extra DNS name SAN; repeatable' },
  ip: { type: 'string', multiple: true, value: 'A', help: 'an extra IP address SAN, IPv4 or IPv6; repeatable' },
  'cluster-domain': { type: 'string', value: 'D', help: "the cluster's DNS domain (default: cluster.local)" },
  days: { type: 'string', value: 'N', help: "validity of the serving certificate in days (default: 365;\nnever beyond the CA's)" },
  help: HELP_FLAG,
} as const satisfies Flags

const GENERATE_USAGE = `Usage: nlb-guard certs generate --service S --namespace N --out DIR [options]

Writes a new CA (ca.crt, valid 10 years) and a serving certificate signed by it (tls.crt and its
key tls.key, mode 0600) into DIR, for the SANs S, S.N, S.N.svc and S.N.svc.<cluster domain> plus
any --dns and --ip given. Files already in DIR are replaced. Put ca.crt in the webhook
configurations' caBundle (base64) and tls.crt/tls.key in the Secret nlb-guard serves from.

Options:
${optionsText(GENERATE_FLAGS)}
`

const INJECT_FLAGS = {
  name: { type: 'string', value: 'NAME', help: "the webhook configurations' name (required)" },
  'ca-file': { type: 'string', value: 'FILE', help: 'PEM CA certificate(s), e.g. ca.crt from `certs generate` (required)' },
  kubeconfig: { type: 'string', value: 'FILE', help: 'cluster to write to (default: in-cluster, then ~/.kube/config)' },
  help: HELP_FLAG,
} as const satisfies Flags

const INJECT_USAGE = `Usage: nlb-guard certs inject --name NAME --ca-file FILE [--kubeconfig FILE]

Sets caBundle on every webhook of the MutatingWebhookConfiguration and the
ValidatingWebhookConfiguration called NAME, whichever exist (an error if neither does), to the
certificates in FILE. Webhooks already holding that bundle are left alone. Other configurations
are never touched. Not needed with \`serve --cert-mode bootstrap\`, which keeps caBundle itself.

Options:
${optionsText(INJECT_FLAGS)}
`

interface Subcommand {
  readonly usage: string
  readonly run: (argv: readonly string[], io: CliIo) => Promise<number>
}

export interface CertsCommandDeps {
  /** The webhook configuration client for a kubeconfig file (undefined: client-node's defaults). */
  readonly webhookConfigurations: (kubeconfig: string | undefined) => Promise<WebhookConfigurationClient>
}

const defaultDeps: CertsCommandDeps = {
  // Loaded on use: `certs generate` needs no Kubernetes client.
  /* c8 ignore next 4: talks to a real cluster; tests inject an in-memory one (createCertsCommand) */
  async webhookConfigurations(kubeconfig) {
    const { kubeWebhookConfigurationClient, loadKubeConfig } = await import('./kube-client.js')
    return kubeWebhookConfigurationClient(loadKubeConfig(kubeconfig))
  },
}

/** `nlb-guard certs …` with its cluster access injected (tests pass an in-memory fake). */
export function createCertsCommand(deps: CertsCommandDeps): Command {
  const subcommands: Readonly<Record<string, Subcommand>> = {
    generate: { usage: GENERATE_USAGE, run: generate },
    inject: { usage: INJECT_USAGE, run: (argv, io) => inject(argv, io, deps) },
  }
  return (argv, io) => runCerts(subcommands, argv, io)
}

/** `nlb-guard certs …`: argv is what follows `certs`. */
export const certsCommand: Command = createCertsCommand(defaultDeps)

async function runCerts(subcommands: Readonly<Record<string, Subcommand>>, argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(CERTS_USAGE)
    return 0
  }
  if (name === undefined) return reportUsageError(io.stderr, 'nlb-guard certs', 'a subcommand is required', CERTS_USAGE)
  const subcommand = subcommands[name]
  if (subcommand === undefined) return reportUsageError(io.stderr, 'nlb-guard certs', `unknown subcommand "${name}"`, CERTS_USAGE)
  try {
    return await subcommand.run(rest, io)
  } catch (error: unknown) {
    if (error instanceof UsageError || error instanceof CertificateRequestError) return reportUsageError(io.stderr, `nlb-guard certs ${name}`, error.message, subcommand.usage)
    throw error
  }
}

async function generate(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(GENERATE_FLAGS, argv)
  if (values.help === true) {
    io.stdout.write(GENERATE_USAGE)
    return 0
  }
  const service = required(values.service, '--service')
  const namespace = required(values.namespace, '--namespace')
  const out = resolve(required(values.out, '--out'))
  const days = values.days === undefined ? 365 : positiveInteger(values.days, '--days')

  const dnsNames = [...serviceDnsNames(service, namespace, values['cluster-domain']), ...(values.dns ?? [])]
  const now = new Date()
  // RFC 5280 caps a CN at 64 characters; the name is only there for people reading the certificate.
  const ca = issueCA({ commonName: `nlb-guard CA for ${service}.${namespace}`.slice(0, 64), now })
  const serving = issueServingCertificate({ ca, dnsNames, ipAddresses: values.ip ?? [], now, validityDays: days })

  const files = [
    { name: 'ca.crt', content: ca.certPem, mode: 0o644 },
    { name: 'tls.crt', content: serving.certPem, mode: 0o644 },
    { name: 'tls.key', content: serving.keyPem, mode: 0o600 },
  ]
  try {
    await mkdir(out, { recursive: true })
    for (const file of files) await writeFileAtomically(join(out, file.name), file.content, file.mode)
  } catch (error: unknown) {
    const reason = errorMessage(error)
    io.stderr.write(`nlb-guard certs generate: could not write to ${out}: ${reason}\n`)
    return 1
  }

  const caInfo = certificateInfo(ca.certPem)
  const info = certificateInfo(serving.certPem)
  io.stdout.write(
    [
      `wrote ${join(out, 'ca.crt')} (CA, valid until ${caInfo.notAfter.toISOString()})`,
      `wrote ${join(out, 'tls.crt')} (valid until ${info.notAfter.toISOString()})`,
      `wrote ${join(out, 'tls.key')} (mode 0600)`,
      `DNS names: ${info.dnsNames.join(', ')}`,
      ...(info.ipAddresses.length > 0 ? [`IP addresses: ${info.ipAddresses.join(', ')}`] : []),
      '',
    ].join('\n'),
  )
  return 0
}

async function inject(argv: readonly string[], io: CliIo, deps: CertsCommandDeps): Promise<number> {
  const { values } = parseFlags(INJECT_FLAGS, argv)
  if (values.help === true) {
    io.stdout.write(INJECT_USAGE)
    return 0
  }
  const name = required(values.name, '--name')
  const caFile = required(values['ca-file'], '--ca-file')
  let certificates: string[]
  try {
    certificates = pemCertificates(await readFile(caFile, 'utf8'), caFile)
  } catch (error: unknown) {
    io.stderr.write(`nlb-guard certs inject: ${errorMessage(error)}\n`)
    return 1
  }
  // tls.crt given for ca.crt is the usual slip; the apiserver would trust only that one certificate.
  for (const pem of certificates) {
    if (!new X509Certificate(pem).ca) {
      io.stderr.write(`nlb-guard certs inject: warning: ${JSON.stringify(new X509Certificate(pem).subject)} in ${caFile} is not a CA certificate\n`)
    }
  }

  let results: InjectionResult[]
  try {
    results = await injectCaBundle(await deps.webhookConfigurations(values.kubeconfig), name, caBundleBase64(certificates))
  } catch (error: unknown) {
    io.stderr.write(`nlb-guard certs inject: cannot update the webhook configurations ${JSON.stringify(name)}: ${errorMessage(error)}\n`)
    return 1
  }
  if (!results.some((result) => result.found)) {
    io.stderr.write(`nlb-guard certs inject: there is no ${WEBHOOK_KINDS.map((kind) => WEBHOOK_KIND_NAMES[kind]).join(' or ')} named ${JSON.stringify(name)}\n`)
    return 1
  }
  const count = certificates.length === 1 ? '1 CA certificate' : `${certificates.length} CA certificates`
  for (const result of results) {
    const what = `${WEBHOOK_KIND_NAMES[result.kind]} ${name}`
    if (!result.found) io.stdout.write(`${what}: not found, skipped\n`)
    else if (result.webhooks.length === 0) io.stdout.write(`${what}: has no webhooks, nothing to set\n`)
    else if (result.changed.length === 0) io.stdout.write(`${what}: caBundle already holds ${count} on ${result.webhooks.join(', ')}\n`)
    else {
      const unchanged = result.webhooks.filter((webhook) => !result.changed.includes(webhook))
      io.stdout.write(
        `${what}: caBundle set to ${count} on ${result.changed.join(', ')}${unchanged.length > 0 ? ` (already set on ${unchanged.join(', ')})` : ''}\n`,
      )
    }
  }
  return 0
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`)
  return value
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`${flag} must be a positive whole number, got ${JSON.stringify(text)}`)
  }
  return value
}

/**
 * Write to a fresh temporary file created with the final mode, then rename over the target: the key
 * is never readable by others, not even briefly, and a server hot-reloading DIR never sees half a file.
 */
async function writeFileAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const handle = await open(temporary, 'wx', mode)
    try {
      await handle.writeFile(content)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, path)
  } catch (error: unknown) {
    await rm(temporary, { force: true })
    throw error
  }
}

