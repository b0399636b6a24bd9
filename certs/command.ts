import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { CliIo, Command } from '../webhook/cli/io.js'
import { UsageError } from '../webhook/cli/io.js'
import { CertificateRequestError } from './errors.js'
import { issueCA, issueServingCertificate, serviceDnsNames } from './issue.js'
import { certificateInfo } from './rotation.js'

const CERTS_USAGE = `Usage: nlb-guard certs <subcommand> [options]

Subcommands:
  generate     write a new CA and a serving certificate for the webhook Service

Run \`nlb-guard certs <subcommand> --help\` for its options.
`

const GENERATE_USAGE = `Usage: nlb-guard certs generate --service S --namespace N --out DIR [options]

Writes a new CA (ca.crt, valid 10 years) and a serving certificate signed by it (tls.crt and its
key tls.key, mode 0600) into DIR, for the SANs S, S.N, S.N.svc and S.N.svc.<cluster domain> plus
any --dns and --ip given. Files already in DIR are replaced. Put ca.crt in the webhook
configurations' caBundle (base64) and tls.crt/tls.key in the Secret nlb-guard serves from.

Options:
  --service S           the webhook's Service name (required)
  --namespace N         the Service's namespace (required)
  --out DIR             folder to write to, created if missing (required)
  --dns D               an extra DNS name SAN; repeatable
  --ip A                an extra IP address SAN, IPv4 or IPv6; repeatable
  --cluster-domain D    the cluster's DNS domain (default: cluster.local)
  --days N              validity of the serving certificate in days (default: 365;
                        never beyond the CA's)
  -h, --help            print this help
`

interface Subcommand {
  readonly usage: string
  readonly run: (argv: readonly string[], io: CliIo) => Promise<number>
}

// `certs inject` (caBundle into the webhook configurations) will join this table.
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  generate: { usage: GENERATE_USAGE, run: generate },
}

/** `nlb-guard certs …`: argv is what follows `certs`. */
export const certsCommand: Command = async (argv, io) => {
  const [name, ...rest] = argv
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(CERTS_USAGE)
    return 0
  }
  if (name === undefined) {
    io.stderr.write(`nlb-guard certs: a subcommand is required\n\n${CERTS_USAGE}`)
    return 2
  }
  const subcommand = SUBCOMMANDS[name]
  if (subcommand === undefined) {
    io.stderr.write(`nlb-guard certs: unknown subcommand "${name}"\n\n${CERTS_USAGE}`)
    return 2
  }
  try {
    return await subcommand.run(rest, io)
  } catch (error: unknown) {
    if (error instanceof UsageError || error instanceof CertificateRequestError) {
      io.stderr.write(`nlb-guard certs ${name}: ${error.message}\n\n${subcommand.usage}`)
      return 2
    }
    throw error
  }
}

async function generate(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseGenerateArgs(argv)
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
    const reason = error instanceof Error ? error.message : String(error)
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

function parseGenerateArgs(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        service: { type: 'string' },
        namespace: { type: 'string' },
        out: { type: 'string' },
        dns: { type: 'string', multiple: true },
        ip: { type: 'string', multiple: true },
        'cluster-domain': { type: 'string' },
        days: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error: unknown) {
    // parseArgs reports bad input as a TypeError whose code starts with ERR_PARSE_ARGS_ (node docs, util.parseArgs).
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS_')) {
      throw new UsageError(error.message, { cause: error })
    }
    throw error
  }
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
