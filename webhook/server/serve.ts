import closeWithGrace from 'close-with-grace'
import { configFromFlags, HELP_FLAG, optionsText, parseFlags, type Flags } from '../../lib/args.js'
import type { Command } from '../../lib/cli.js'
import type { ConfigInput } from '../config.js'
import { loadConfig } from '../config.js'
import { start } from './start.js'

/** serve's flags: each sets the configuration key named beside it (the README's keys); flags override the file. */
export const SERVE_FLAGS = {
  config: { type: 'string', value: 'FILE', help: 'YAML configuration (keys in the README); flags override it' },
  port: { type: 'string', value: 'N', config: 'port', number: true, help: 'TLS port (default 8443)' },
  address: { type: 'string', value: 'A', config: 'address', help: 'address the TLS port binds (default 0.0.0.0)' },
  'metrics-port': { type: 'string', value: 'N', config: 'metricsPort', number: true, help: 'plain-HTTP metrics/probe port (default 9090)' },
  'metrics-address': {
    type: 'string',
    value: 'A',
    config: 'metricsAddress',
    help: 'address the metrics port binds (default: in a pod, its IP from the\nPOD_IP environment variable; else --address)',
  },
  'tls-cert': { type: 'string', value: 'FILE', config: 'tls.certFile', help: 'serving certificate (PEM), reloaded when the file changes' },
  'tls-key': { type: 'string', value: 'FILE', config: 'tls.keyFile', help: 'its private key (PEM)' },
  'cert-mode': {
    type: 'string',
    value: 'M',
    config: 'certMode',
    help:
      'auto|files|bootstrap|self-signed (default auto: files with --tls-cert,\n' +
      'else bootstrap with --kubeconfig or in a pod without --kube-version,\n' +
      'else a self-signed certificate for localhost/127.0.0.1/::1 made at start)',
  },
  'cert-secret': { type: 'string', value: 'NAME', config: 'certSecret', help: 'bootstrap: Secret holding the CA and certificate (default nlb-guard-tls)' },
  namespace: { type: 'string', value: 'NS', config: 'namespace', help: "nlb-guard's namespace: the Secret's and Service's (default nlb-guard-system)" },
  'webhook-name': {
    type: 'string',
    value: 'NAME',
    config: 'webhookConfigurationName',
    help: 'bootstrap: the Mutating/ValidatingWebhookConfiguration whose caBundle\nis kept (default nlb-guard)',
  },
  'cert-ip': { type: 'string', multiple: true, value: 'A', config: 'certIPAddresses', help: 'bootstrap: an extra IP address SAN on the serving certificate (repeatable)' },
  'cert-dns': { type: 'string', multiple: true, value: 'D', config: 'certDNSNames', help: 'bootstrap: an extra DNS name SAN (repeatable), for a webhook also reached by URL' },
  'client-ca': { type: 'string', value: 'FILE', config: 'tls.clientCaFile', help: 'require client certificates signed by this CA' },
  kubeconfig: { type: 'string', value: 'FILE', config: 'kubeconfig', help: 'cluster to read /version from (default: in-cluster, then ~/.kube/config)' },
  'kube-version': { type: 'string', value: 'X.Y.Z', config: 'kubeVersion', help: 'assume this Kubernetes version; without --kubeconfig, run without a cluster' },
  'log-level': { type: 'string', value: 'LEVEL', config: 'logLevel', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  'shutdown-delay': { type: 'string', value: 'S', config: 'shutdownDelaySeconds', number: true, help: 'seconds to keep serving, not ready, after SIGTERM (default 5)' },
  help: HELP_FLAG,
} as const satisfies Flags

export const SERVE_USAGE = `Usage: nlb-guard serve [options]

Runs the admission webhook: POST /mutate and /validate, GET /healthz and /readyz over TLS;
GET /metrics, /healthz and /readyz over plain HTTP on the metrics port.

Options:
${optionsText(SERVE_FLAGS)}
`

export const serveCommand: Command = async (argv, io) => {
  const { values } = parseFlags(SERVE_FLAGS, argv, { usage: SERVE_USAGE })
  if (values.help) {
    io.stdout.write(SERVE_USAGE)
    return 0
  }
  // zod checks what the flags set, naming the key, as for the file.
  const config = await loadConfig(values.config, configFromFlags(SERVE_FLAGS, values) as ConfigInput)
  const running = await start(config, io)
  return new Promise<number>((resolve) => {
    // close-with-grace: a second signal, or a close that outlasts `delay`, forces the exit.
    closeWithGrace({ delay: (config.shutdownDelaySeconds + 20) * 1000, logger: false }, async ({ signal, err }) => {
      if (err) running.log.error({ err }, 'fatal error, shutting down')
      else running.log.info({ signal }, 'shutting down: not ready, finishing in-flight requests')
      await running.close()
      resolve(err ? 1 : 0)
    })
  })
}
