import t from 'tap'
import { configFromFlags, parseFlags } from '../../lib/args.js'
import { parseConfig } from '../../webhook/config.js'
import { main } from '../../webhook/cli/main.js'
import { SERVE_FLAGS, SERVE_USAGE } from '../../webhook/server/serve.js'
import { capture } from '../fixtures/cli.js'

t.test('every serve flag sets the config key its table names, and zod accepts it', async (t) => {
  const argv = [
    '--port', '9443', '--address', '127.0.0.1', '--metrics-port', '9091', '--metrics-address', '127.0.0.2', '--tls-cert', '/t.crt', '--tls-key', '/t.key',
    '--cert-mode', 'files', '--cert-secret', 'tls', '--namespace', 'platform', '--webhook-name', 'guard',
    '--cert-ip', '10.0.0.1', '--cert-dns', 'guard.example.com', '--client-ca', '/ca.crt', '--kubeconfig', '/k',
    '--kube-version', '1.30.2', '--log-level', 'debug', '--shutdown-delay', '2',
  ]
  const config = parseConfig(configFromFlags(SERVE_FLAGS, parseFlags(SERVE_FLAGS, argv).values))
  t.match(config, {
    port: 9443,
    address: '127.0.0.1',
    metricsPort: 9091,
    metricsAddress: '127.0.0.2',
    tls: { certFile: '/t.crt', keyFile: '/t.key', clientCaFile: '/ca.crt' },
    certMode: 'files',
    certSecret: 'tls',
    namespace: 'platform',
    webhookConfigurationName: 'guard',
    certIPAddresses: ['10.0.0.1'],
    certDNSNames: ['guard.example.com'],
    kubeconfig: '/k',
    kubeVersion: '1.30.2',
    logLevel: 'debug',
    shutdownDelaySeconds: 2,
  })
  const withKey = Object.entries(SERVE_FLAGS).filter(([, flag]) => 'config' in flag).map(([name]) => `--${name}`)
  t.same(withKey.filter((flag) => !argv.includes(flag)), [], 'the case above sets every flag that has a config key')
})

t.test('serve --help prints the usage from the flag table; a bad flag is exit 2 with it', async (t) => {
  const help = capture()
  t.equal(await main(['serve', '--help'], help), 0)
  t.equal(help.out(), SERVE_USAGE)
  for (const flag of Object.keys(SERVE_FLAGS)) t.match(SERVE_USAGE, `--${flag}`, `--${flag} is in the usage`)
  const bad = capture()
  t.equal(await main(['serve', '--bogus'], bad), 2)
  t.match(bad.err(), /^nlb-guard serve: Unknown option '--bogus'/)
  t.ok(bad.err().endsWith(`\n\n${SERVE_USAGE}`), 'the usage follows the message')
  const nan = capture()
  t.equal(await main(['serve', '--port', 'eighty'], nan), 2)
  t.equal(nan.err(), 'nlb-guard serve: --port expects a number, got "eighty"\n')
  const invalid = capture()
  t.equal(await main(['serve', '--port', '70000'], invalid), 1, 'a value zod refuses is a config error (exit 1)')
  t.match(invalid.err(), /^nlb-guard serve: invalid flags: port: /)
})
