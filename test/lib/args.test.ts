import t from 'tap'
import { configFromFlags, HELP_FLAG, optionsText, parseFlags, reportUsageError, UsageError, type Flags } from '../../lib/args.js'

const FLAGS = {
  port: { type: 'string', value: 'N', config: 'port', number: true, help: 'TLS port' },
  'tls-cert': { type: 'string', value: 'FILE', config: 'tls.certFile', help: 'serving certificate,\nreloaded on change' },
  'cert-ip': { type: 'string', multiple: true, value: 'A', config: 'certIPAddresses', help: 'an extra SAN' },
  own: { type: 'string', help: 'a flag of the command itself, no config key' },
  help: HELP_FLAG,
} as const satisfies Flags

t.test('parseFlags: the values parseArgs reads, typed by the table', async (t) => {
  const { values } = parseFlags(FLAGS, ['--port', '9443', '--cert-ip', '10.0.0.1', '--cert-ip', '::1', '-h'])
  t.same(values, { port: '9443', 'cert-ip': ['10.0.0.1', '::1'], help: true })
})

t.test('parseFlags: every parse error is a UsageError carrying the usage', async (t) => {
  for (const argv of [['--bogus'], ['--port'], ['stray'], ['--help=yes']]) {
    const error = t.throws(() => parseFlags(FLAGS, argv, { usage: 'Usage: x' }), argv.join(' '))
    t.type(error, UsageError)
    t.equal((error as UsageError).usage, 'Usage: x')
  }
  t.same(parseFlags(FLAGS, ['stray'], { positionals: true }).positionals, ['stray'], 'positionals when the command takes them')
})

t.test('configFromFlags: the keys the table names, nested where dotted, numbers parsed', async (t) => {
  const { values } = parseFlags(FLAGS, ['--port', '9443', '--tls-cert', '/tls.crt', '--cert-ip', '::1', '--own', 'x'])
  t.same(configFromFlags(FLAGS, values), { port: 9443, tls: { certFile: '/tls.crt' }, certIPAddresses: ['::1'] })
  t.same(configFromFlags(FLAGS, {}), {}, 'flags not given set nothing')
  t.throws(() => configFromFlags(FLAGS, { port: 'eighty' }), new UsageError('--port expects a number, got "eighty"'))
  t.throws(() => configFromFlags(FLAGS, { port: ' ' }), /--port expects a number/)
})

t.test('reportUsageError: the command, the problem, the usage; exit 2', async (t) => {
  let written = ''
  const stderr = { write: (chunk: string) => (written += chunk) }
  t.equal(reportUsageError(stderr, 'nlb-guard certs generate', '--service is required', 'Usage: u\n'), 2)
  t.equal(written, 'nlb-guard certs generate: --service is required\n\nUsage: u\n')
  written = ''
  t.equal(reportUsageError(stderr, 'nlb-guard serve', '--port expects a number, got "x"', undefined), 2)
  t.equal(written, 'nlb-guard serve: --port expects a number, got "x"\n', 'no usage: the message alone')
})

t.test('optionsText: one aligned entry per flag, continuation lines under the first', async (t) => {
  t.equal(
    optionsText(FLAGS),
    [
      '  --port N         TLS port',
      '  --tls-cert FILE  serving certificate,',
      '                   reloaded on change',
      '  --cert-ip A      an extra SAN',
      '  --own            a flag of the command itself, no config key',
      '  -h, --help       show this help',
    ].join('\n'),
  )
})
