import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { selfSignedForLocalhost } from '../../certs/issue.js'
import { certificateInfo } from '../../certs/rotation.js'
import type { CliIo, Command } from '../../lib/cli.js'
import { UsageError } from '../../lib/cli.js'
import type { KubeConfig } from '@kubernetes/client-node'
import { podRules } from '../admission/pod-rules.js'
import type { ClusterConnection } from '../cluster/connection.js'
import type { ServiceCache } from '../cluster/services.js'
import type { VersionSource } from '../cluster/version.js'
import { fixedVersion, polledVersion } from '../cluster/version.js'
import type { Config, ConfigInput } from '../config.js'
import { loadConfig, runningInCluster } from '../config.js'
import { parseKubeVersion, type KubeVersion } from '../rules/version.js'
import type { TlsMaterial, WebhookServer } from './app.js'
import { buildServer, registerHealth } from './app.js'
import type { CertMode } from './certificates.js'
import { placeholderCertificate, resolveCertMode, startCertificateSource } from './certificates.js'
import { createMetrics, type Metrics } from './metrics.js'
import { reportedMixedProtocolCapability } from './mixed-protocol.js'
import { Readiness } from './readiness.js'
import { errorMessage } from '../../lib/errors.js'

export const SERVE_USAGE = `Usage: nlb-guard serve [options]

Runs the admission webhook: POST /mutate and /validate, GET /healthz and /readyz over TLS;
GET /metrics, /healthz and /readyz over plain HTTP on the metrics port.

Options:
  --config FILE          YAML configuration (keys in the README); flags override it
  --port N               TLS port (default 8443)
  --address A            address to bind (default 0.0.0.0)
  --metrics-port N       plain-HTTP metrics/probe port (default 9090)
  --tls-cert FILE        serving certificate (PEM), reloaded when the file changes
  --tls-key FILE         its private key (PEM)
  --cert-mode M          auto|files|bootstrap|self-signed (default auto: files with --tls-cert,
                         else bootstrap with --kubeconfig or in a pod without --kube-version,
                         else a self-signed certificate for localhost/127.0.0.1/::1 made at start)
  --cert-secret NAME     bootstrap: Secret holding the CA and certificate (default nlb-guard-tls)
  --namespace NS         nlb-guard's namespace: the Secret's and Service's (default nlb-guard-system)
  --webhook-name NAME    bootstrap: the Mutating/ValidatingWebhookConfiguration whose caBundle
                         is kept (default nlb-guard)
  --cert-ip A, --cert-dns D  bootstrap: extra SANs on the serving certificate (repeatable), for a
                         webhook also reached by URL
  --client-ca FILE       require client certificates signed by this CA
  --kubeconfig FILE      cluster to read /version from and to ask, with a dry-run, whether it
                         accepts mixed-protocol LoadBalancer Services (default: in-cluster, then
                         ~/.kube/config)
  --kube-version X.Y.Z   assume this Kubernetes version (and its default for mixed protocols: no
                         probe); without --kubeconfig, run without a cluster
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent (default info)
  --shutdown-delay S     seconds to keep serving, not ready, after SIGTERM (default 5)
  -h, --help             show this help
`

export const serveCommand: Command = async (argv, io) => {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        address: { type: 'string' },
        'metrics-port': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'cert-mode': { type: 'string' },
        'cert-secret': { type: 'string' },
        namespace: { type: 'string' },
        'webhook-name': { type: 'string' },
        'cert-ip': { type: 'string', multiple: true },
        'cert-dns': { type: 'string', multiple: true },
        'client-ca': { type: 'string' },
        kubeconfig: { type: 'string' },
        'kube-version': { type: 'string' },
        'log-level': { type: 'string' },
        'shutdown-delay': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (error: unknown) {
    io.stderr.write(`nlb-guard serve: ${(error as Error).message}\n\n${SERVE_USAGE}`)
    return 2
  }
  if (values.help) {
    io.stdout.write(SERVE_USAGE)
    return 0
  }
  const flags: ConfigInput = {
    ...(values.port !== undefined && { port: toNumber('--port', values.port) }),
    ...(values.address !== undefined && { address: values.address }),
    ...(values['metrics-port'] !== undefined && { metricsPort: toNumber('--metrics-port', values['metrics-port']) }),
    tls: {
      ...(values['tls-cert'] !== undefined && { certFile: values['tls-cert'] }),
      ...(values['tls-key'] !== undefined && { keyFile: values['tls-key'] }),
      ...(values['client-ca'] !== undefined && { clientCaFile: values['client-ca'] }),
    },
    ...(values['cert-mode'] !== undefined && { certMode: values['cert-mode'] as Config['certMode'] }),
    ...(values['cert-secret'] !== undefined && { certSecret: values['cert-secret'] }),
    ...(values.namespace !== undefined && { namespace: values.namespace }),
    ...(values['webhook-name'] !== undefined && { webhookConfigurationName: values['webhook-name'] }),
    ...(values['cert-ip'] !== undefined && { certIPAddresses: values['cert-ip'] }),
    ...(values['cert-dns'] !== undefined && { certDNSNames: values['cert-dns'] }),
    ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }),
    ...(values['kube-version'] !== undefined && { kubeVersion: values['kube-version'] }),
    ...(values['log-level'] !== undefined && { logLevel: values['log-level'] as Config['logLevel'] }),
    ...(values['shutdown-delay'] !== undefined && { shutdownDelaySeconds: toNumber('--shutdown-delay', values['shutdown-delay']) }),
  }
  const config = await loadConfig(values.config, flags)
  const running = await startServer(config, io)
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

function toNumber(flag: string, text: string): number {
  const value = Number(text)
  if (!Number.isFinite(value)) throw new UsageError(`${flag} expects a number, got "${text}"`)
  return value
}

export interface RunningServer {
  readonly app: WebhookServer
  readonly metrics: Metrics
  readonly readiness: Readiness
  readonly log: WebhookServer['log']
  /** Readiness false, wait the shutdown delay, finish in-flight requests, close. */
  close(): Promise<void>
}

/** Starts the webhook and metrics servers from a parsed configuration. */
export async function startServer(config: Config, io: CliIo): Promise<RunningServer> {
  const logger = { level: config.logLevel, stream: io.stderr }
  const metrics = createMetrics()
  const readiness = new Readiness()
  const certMode = resolveCertMode(config, runningInCluster())
  const { tls, generatedCaFile } = await loadTls(config, certMode)

  // `--kube-version` alone means no cluster: nothing to read Services from, and client-node unloaded.
  const hasCluster = config.kubeVersion === undefined || config.kubeconfig !== undefined
  const cluster = hasCluster || certMode === 'bootstrap' ? await import('../cluster/connection.js') : undefined
  const kubeConfig = hasCluster ? cluster?.loadKubeConfig(config.kubeconfig) : undefined
  const serviceCache =
    cluster !== undefined && kubeConfig !== undefined && config.sidecar.injection !== 'never'
      ? createServiceCache(cluster, kubeConfig, metrics, () => app.log)
      : undefined
  const app = buildServer({
    tls,
    metrics,
    readiness,
    logger,
    admission: {
      config,
      clusterVersion: () => versionSource.current(),
      mixedProtocolGate: () => mixedProtocol.current().gate,
      ...(serviceCache === undefined ? {} : { rules: podRules(serviceCache, config.sidecar) }),
    },
  })
  const log = app.log
  metrics.certificateNotAfter.set(certificateInfo(String(tls.cert)).notAfter.getTime() / 1000)
  if (generatedCaFile !== undefined) {
    log.warn({ caFile: generatedCaFile }, 'no --tls-cert/--tls-key: serving a self-signed certificate for localhost, 127.0.0.1 and ::1')
  }

  const versionSource = createVersionSource(config, cluster, kubeConfig, app.log, metrics, {
    onChange: () => mixedProtocol.versionChanged(),
    afterRefresh: (version) => mixedProtocol.refresh(version.text),
  })
  readiness.add('cluster version', () => (versionSource.current() === undefined ? 'not known yet' : null))
  // The probe asks the cluster whose version the rules judge by: with --kube-version it is another one.
  const mixedProtocol = reportedMixedProtocolCapability({
    setting: config.mixedProtocolLBService,
    probe: cluster !== undefined && kubeConfig !== undefined && versionSource.origin === 'cluster'
      ? cluster.dryRunMixedProtocolService(kubeConfig, config.namespace, PROBE_TIMEOUT_MS)
      : undefined,
    version: () => versionSource.current(),
    log,
    metrics,
  })
  readiness.add('mixed-protocol probe', () => (mixedProtocol.settled() ? null : 'not answered yet'))
  const certificates = startCertificateSource({ mode: certMode, config, kubeConfig, cluster, server: app.server, tls, metrics, readiness, log })
  if (serviceCache !== undefined) {
    readiness.add('service cache', () => (serviceCache.synced() ? null : 'not synced yet'))
  } else {
    log.info(
      { injection: config.sidecar.injection },
      kubeConfig === undefined
        ? 'Pod injection is off: no cluster connection (--kube-version without --kubeconfig), so no Services to match pods against'
        : 'Pod injection is off: sidecar.injection is never',
    )
  }

  const metricsApp = Fastify({ logger: false })
  metricsApp.get('/metrics', async (_request, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  )
  registerHealth(metricsApp, readiness)

  serviceCache?.start()
  await app.listen({ port: config.port, host: config.address })
  // After listen: the first version read is followed by the mixed-protocol dry-run, which the
  // apiserver may send through nlb-guard's own webhook (and fail, with failurePolicy Fail, if no one answers).
  versionSource.start()
  await metricsApp.listen({ port: config.metricsPort, host: config.address })
  log.info(
    { port: config.port, metricsPort: config.metricsPort, address: config.address, clientCertificates: tls.clientCa !== undefined },
    'nlb-guard serving',
  )

  let closing: Promise<void> | undefined
  return {
    app,
    metrics,
    readiness,
    log,
    close() {
      closing ??= (async () => {
        readiness.startShutdown()
        await new Promise((resolve) => setTimeout(resolve, config.shutdownDelaySeconds * 1000))
        versionSource.stop()
        await certificates.close()
        await serviceCache?.stop()
        await Promise.all([app.close(), metricsApp.close()])
        log.info('closed')
      })()
      return closing
    },
  }
}

async function loadTls(config: Config, mode: CertMode): Promise<{ tls: TlsMaterial; generatedCaFile?: string }> {
  const clientCa = config.tls.clientCaFile === undefined ? undefined : await readFile(config.tls.clientCaFile)
  if (config.tls.certFile !== undefined && config.tls.keyFile !== undefined) {
    const [cert, key] = await Promise.all([readFile(config.tls.certFile), readFile(config.tls.keyFile)])
    return { tls: { cert, key, clientCa } }
  }
  if (mode === 'bootstrap') {
    const placeholder = placeholderCertificate(new Date())
    return { tls: { cert: placeholder.certPem, key: placeholder.keyPem, clientCa } }
  }
  // The embedded default: a fresh CA and certificate per start, its CA written out for clients to trust.
  const { ca, serving } = selfSignedForLocalhost(new Date())
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-'))
  const generatedCaFile = join(dir, 'ca.crt')
  await writeFile(generatedCaFile, ca.certPem)
  return { tls: { cert: serving.certPem, key: serving.keyPem, clientCa }, generatedCaFile }
}

function createVersionSource(
  config: Config,
  cluster: ClusterConnection | undefined,
  kubeConfig: KubeConfig | undefined,
  log: WebhookServer['log'],
  metrics: Metrics,
  hooks: { onChange: () => void; afterRefresh: (version: KubeVersion) => Promise<void> },
): VersionSource {
  if (config.kubeVersion !== undefined) {
    const version = parseKubeVersion(config.kubeVersion)
    metrics.clusterVersion.set({ version: version.text, source: 'override' }, 1)
    log.info({ version: version.text }, 'cluster version set by configuration')
    return fixedVersion(version)
  }
  if (cluster === undefined || kubeConfig === undefined) throw new Error('a cluster connection is required to read its version')
  const fetch = cluster.fetchGitVersion(kubeConfig)
  let previous: string | undefined
  return polledVersion({
    fetch,
    refreshMs: config.versionRefreshSeconds * 1000,
    retry: { initialMs: 1000, maxMs: 5000 },
    onChange(version) {
      if (previous !== undefined) metrics.clusterVersion.remove({ version: previous, source: 'cluster' })
      previous = version.text
      metrics.clusterVersion.set({ version: version.text, source: 'cluster' }, 1)
      log.info({ version: version.text }, 'cluster version')
      hooks.onChange()
    },
    afterRefresh: hooks.afterRefresh,
    onError(error, known, retryInMs) {
      const reason = errorMessage(error)
      if (known === undefined) log.warn({ reason, retryInMs }, 'not ready: cannot read the cluster version from /version; retrying')
      else log.warn({ reason, version: known.text }, 'cannot refresh the cluster version; keeping the last one')
    },
  })
}

/** The dry-run probe's own limit: the apiserver gives a slow webhook up to 30 s, we wait less. */
const PROBE_TIMEOUT_MS = 10_000

function createServiceCache(cluster: ClusterConnection, kubeConfig: KubeConfig, metrics: Metrics, log: () => WebhookServer['log']): ServiceCache {
  return cluster.startServiceCache(kubeConfig, {
    onSynced: (count) => log().info({ services: count }, 'service cache synced: UDP LoadBalancer Services'),
    onSize: (count) => metrics.serviceCacheSize.set(count),
    onError: (error, retryInMs) =>
      log().warn({ reason: errorMessage(error), retryInMs }, 'service cache: list or watch failed; retrying'),
  })
}
