import { X509Certificate, createPrivateKey } from 'node:crypto'
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { certsCommand, createCertsCommand } from '../../certs/command.js'
import { pemCertificates } from '../../certs/bundle.js'
import { FakeCertCluster } from '../fixtures/cert-cluster.js'
import type { CliIo } from '../../lib/cli.js'

const DAY_MS = 24 * 3600_000

function captured(): { io: CliIo; stdout: () => string; stderr: () => string } {
  let stdout = ''
  let stderr = ''
  return {
    io: {
      stdin: process.stdin,
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: (chunk: string) => (stderr += chunk) },
    },
    stdout: () => stdout,
    stderr: () => stderr,
  }
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { io, stdout, stderr } = captured()
  const code = await certsCommand(argv, io)
  return { code, stdout: stdout(), stderr: stderr() }
}

t.test('certs generate writes a CA and a serving certificate', async (t) => {
  const out = join(t.testdir(), 'nested', 'tls')
  const started = Date.now()
  const result = await run([
    'generate',
    '--service', 'nlb-guard',
    '--namespace', 'nlb-guard-system',
    '--out', out,
    '--ip', '10.96.0.10',
    '--ip', 'fd00::10',
    '--dns', 'webhook.example.com',
    '--cluster-domain', 'corp.internal',
    '--days', '30',
  ])
  t.equal(result.code, 0, result.stderr)
  t.equal(result.stderr, '')

  t.strictSame((await readdir(out)).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'exactly the three files, no temporaries')
  t.equal((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600, 'key readable by its owner only')
  for (const name of ['ca.crt', 'tls.crt']) t.ok((await stat(join(out, name))).mode & 0o400, `${name} readable`)

  const ca = new X509Certificate(await readFile(join(out, 'ca.crt')))
  const leaf = new X509Certificate(await readFile(join(out, 'tls.crt')))
  t.equal(ca.ca, true)
  t.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'tls.crt chains to ca.crt')
  t.ok(leaf.checkPrivateKey(createPrivateKey(await readFile(join(out, 'tls.key')))), 'tls.key belongs to tls.crt')
  for (const name of [
    'nlb-guard',
    'nlb-guard.nlb-guard-system',
    'nlb-guard.nlb-guard-system.svc',
    'nlb-guard.nlb-guard-system.svc.corp.internal',
    'webhook.example.com',
  ]) {
    t.ok(leaf.checkHost(name, { subject: 'never' }), `SAN ${name}`)
  }
  for (const ip of ['10.96.0.10', 'fd00::10']) t.ok(leaf.checkIP(ip), `SAN ${ip}`)
  const days = (leaf.validToDate.getTime() - started) / DAY_MS
  t.ok(days > 29.99 && days <= 30, `--days 30 gives ${days} days`)

  t.match(result.stdout, `wrote ${join(out, 'ca.crt')}`)
  t.match(result.stdout, `wrote ${join(out, 'tls.crt')}`)
  t.match(result.stdout, `wrote ${join(out, 'tls.key')} (mode 0600)`)
  t.match(result.stdout, 'DNS names: nlb-guard, nlb-guard.nlb-guard-system, nlb-guard.nlb-guard-system.svc, nlb-guard.nlb-guard-system.svc.corp.internal, webhook.example.com')
  t.match(result.stdout, 'IP addresses: 10.96.0.10, fd00::10')
})

t.test('certs generate replaces earlier files and tightens a loose key', async (t) => {
  const out = t.testdir({ 'tls.key': 'old key', 'ca.crt': 'old ca' })
  await chmod(join(out, 'tls.key'), 0o644)
  const result = await run(['generate', '--service', 's', '--namespace', 'n', '--out', out])
  t.equal(result.code, 0, result.stderr)
  t.equal((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600)
  t.match(await readFile(join(out, 'ca.crt'), 'utf8'), /^-----BEGIN CERTIFICATE-----/)
  const leaf = new X509Certificate(await readFile(join(out, 'tls.crt')))
  t.equal(leaf.checkHost('s.n.svc.cluster.local', { subject: 'never' }), 's.n.svc.cluster.local', 'default cluster domain')
  t.equal(Math.round((leaf.validToDate.getTime() - Date.now()) / DAY_MS), 365, 'default 365 days')
})

t.test('help exits 0 on stdout', async (t) => {
  const cases: { argv: string[]; want: RegExp }[] = [
    { argv: ['--help'], want: /^Usage: nlb-guard certs <subcommand>/ },
    { argv: ['-h'], want: /^Usage: nlb-guard certs <subcommand>/ },
    { argv: ['help'], want: /^Usage: nlb-guard certs <subcommand>/ },
    { argv: ['generate', '--help'], want: /^Usage: nlb-guard certs generate --service S/ },
    { argv: ['generate', '-h'], want: /^Usage: nlb-guard certs generate --service S/ },
    { argv: ['generate', '--service', 's', '-h'], want: /^Usage: nlb-guard certs generate/ },
  ]
  for (const { argv, want } of cases) {
    const result = await run(argv)
    t.equal(result.code, 0, argv.join(' '))
    t.match(result.stdout, want, argv.join(' '))
    t.equal(result.stderr, '', argv.join(' '))
  }
})

t.test('bad invocations exit 2 with the reason on stderr and write nothing', async (t) => {
  const out = join(t.testdir(), 'never')
  const base = ['--service', 's', '--namespace', 'n', '--out', out]
  const cases: { name: string; argv: string[]; want: RegExp }[] = [
    { name: 'no subcommand', argv: [], want: /a subcommand is required/ },
    { name: 'unknown subcommand', argv: ['rotate'], want: /unknown subcommand "rotate"/ },
    { name: 'unknown flag', argv: ['generate', ...base, '--bogus'], want: /Unknown option '--bogus'/ },
    { name: 'positional', argv: ['generate', ...base, 'extra'], want: /Unexpected argument 'extra'/ },
    { name: 'missing --service', argv: ['generate', '--namespace', 'n', '--out', out], want: /--service is required/ },
    { name: 'missing --namespace', argv: ['generate', '--service', 's', '--out', out], want: /--namespace is required/ },
    { name: 'missing --out', argv: ['generate', '--service', 's', '--namespace', 'n'], want: /--out is required/ },
    { name: 'flag without value', argv: ['generate', ...base, '--ip'], want: /--ip/ },
    { name: 'days not a number', argv: ['generate', ...base, '--days', 'ten'], want: /--days must be a positive whole number/ },
    { name: 'zero days', argv: ['generate', ...base, '--days', '0'], want: /--days must be a positive whole number/ },
    { name: 'bad IP', argv: ['generate', ...base, '--ip', '300.1.1.1'], want: /"300.1.1.1" is not a valid IP address/ },
    { name: 'bad DNS name', argv: ['generate', ...base, '--dns', 'no_underscores'], want: /"no_underscores" is not a valid DNS name/ },
    { name: 'bad service name', argv: ['generate', ...base, '--service', 'Upper'], want: /service name "Upper" is not a valid DNS-1035 label/ },
    { name: 'bad cluster domain', argv: ['generate', ...base, '--cluster-domain', 'bad..domain'], want: /"bad..domain" is not a valid DNS name/ },
  ]
  for (const c of cases) {
    const result = await run(c.argv)
    t.equal(result.code, 2, c.name)
    t.match(result.stderr, c.want, c.name)
    t.match(result.stderr, /Usage: nlb-guard certs/, `${c.name}: usage follows`)
    t.equal(result.stdout, '', c.name)
  }
  await t.rejects(stat(out), { code: 'ENOENT' }, 'nothing written')
})

t.test('an unwritable --out exits 1', async (t) => {
  const file = join(t.testdir(), 'a-file')
  await writeFile(file, '')
  const result = await run(['generate', '--service', 's', '--namespace', 'n', '--out', file])
  t.equal(result.code, 1)
  t.match(result.stderr, `could not write to ${file}`)
})

t.test('certs inject sets caBundle on both configurations of that name and says so', async (t) => {
  const dir = t.testdir()
  t.equal((await run(['generate', '--service', 'nlb-guard', '--namespace', 'nlb-guard-system', '--out', dir])).code, 0)
  const caPem = await readFile(join(dir, 'ca.crt'), 'utf8')
  const cluster = new FakeCertCluster()
  cluster.addConfiguration('mutating', 'nlb-guard', ['services.nlb-guard.io', 'pods.nlb-guard.io'])
  cluster.addConfiguration('validating', 'nlb-guard', ['services.validate.nlb-guard.io'])
  cluster.addConfiguration('validating', 'someone-else', ['x.example.com'], 'c29tZW9uZQ==')
  const kubeconfigs: (string | undefined)[] = []
  const command = createCertsCommand({
    webhookConfigurations: async (kubeconfig) => {
      kubeconfigs.push(kubeconfig)
      return cluster.webhookClient()
    },
  })
  const inject = async (argv: string[]) => {
    const { io, stdout, stderr } = captured()
    const code = await command(argv, io)
    return { code, stdout: stdout(), stderr: stderr() }
  }

  const first = await inject(['inject', '--name', 'nlb-guard', '--ca-file', join(dir, 'ca.crt'), '--kubeconfig', '/k/config'])
  t.equal(first.code, 0, first.stderr)
  t.equal(
    first.stdout,
    'MutatingWebhookConfiguration nlb-guard: caBundle set to 1 CA certificate on services.nlb-guard.io, pods.nlb-guard.io\n' +
      'ValidatingWebhookConfiguration nlb-guard: caBundle set to 1 CA certificate on services.validate.nlb-guard.io\n',
  )
  t.strictSame(kubeconfigs, ['/k/config'])
  const expected = Buffer.from(pemCertificates(caPem).join('')).toString('base64')
  t.strictSame(cluster.caBundles('mutating', 'nlb-guard'), [expected, expected])
  t.strictSame(cluster.caBundles('validating', 'nlb-guard'), [expected])
  t.strictSame(cluster.caBundles('validating', 'someone-else'), ['c29tZW9uZQ=='], 'other configurations untouched')

  const again = await inject(['inject', '--name', 'nlb-guard', '--ca-file', join(dir, 'ca.crt')])
  t.equal(again.code, 0)
  t.match(again.stdout, 'MutatingWebhookConfiguration nlb-guard: caBundle already holds 1 CA certificate on services.nlb-guard.io, pods.nlb-guard.io')

  const onlyValidating = await inject(['inject', '--name', 'someone-else', '--ca-file', join(dir, 'ca.crt')])
  t.equal(onlyValidating.code, 0)
  t.match(onlyValidating.stdout, 'MutatingWebhookConfiguration someone-else: not found, skipped')

  const none = await inject(['inject', '--name', 'absent', '--ca-file', join(dir, 'ca.crt')])
  t.equal(none.code, 1)
  t.equal(none.stderr, 'nlb-guard certs inject: there is no MutatingWebhookConfiguration or ValidatingWebhookConfiguration named "absent"\n')

  const leaf = await inject(['inject', '--name', 'nlb-guard', '--ca-file', join(dir, 'tls.crt')])
  t.equal(leaf.code, 0)
  t.match(leaf.stderr, /warning: .* is not a CA certificate/, 'tls.crt for ca.crt is pointed out')

  const notPem = await inject(['inject', '--name', 'nlb-guard', '--ca-file', join(dir, 'tls.key')])
  t.equal(notPem.code, 1)
  t.match(notPem.stderr, /holds no PEM certificate/)

  const usage = await inject(['inject', '--ca-file', join(dir, 'ca.crt')])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /--name is required[\s\S]*Usage: nlb-guard certs inject/)

  const failing = createCertsCommand({ webhookConfigurations: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6443')) })
  const { io, stderr } = captured()
  t.equal(await failing(['inject', '--name', 'nlb-guard', '--ca-file', join(dir, 'ca.crt')], io), 1)
  t.match(stderr(), /cannot update the webhook configurations "nlb-guard": connect ECONNREFUSED/)
})
