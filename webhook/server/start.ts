import type { KubeConfig } from '@kubernetes/client-node'
import { certificateInfo } from '../../certs/rotation.js'
import type { CliIo } from '../../lib/cli.js'
import { ConfigError, errorMessage } from '../../lib/errors.js'
import { podRules } from '../admission/pod-rules.js'
import type { ClusterConnection } from '../cluster/connection.js'
import type { WarnNamespaces } from '../cluster/namespaces.js'
import type { ServiceCache } from '../cluster/services.js'
import type { VersionSource } from '../cluster/version.js'
import { fixedVersion, polledVersion } from '../cluster/version.js'
import type { Config } from '../config.js'
import { metricsBindAddress, runningInCluster } from '../config.js'
import { parseKubeVersion, type KubeVersion } from '../rules/version.js'
import type { WebhookServer } from './app.js'
import { buildMetricsServer, buildServer, registerAdmission } from './app.js'
import { loadServingTls, resolveCertMode, startCertificateSource } from './certificates.js'
import { packageVersion } from '../cli/version.js'
import { createMetrics, type Metrics } from './metrics.js'
import { reportedMixedProtocolCapability } from './mixed-protocol.js'
import { Readiness } from './readiness.js'
import { hostname } from 'node:os'
import { createOwnerResolver } from '../events/owners.js'
import { createEventRecorder, type EventRecorder } from '../events/recorder.js'
import { bounded } from '../text/bounded.js'

export interface RunningServer {
  readonly app: WebhookServer
  readonly metrics: Metrics
  readonly readiness: Readiness
  readonly log: WebhookServer['log']
  /** Readiness false, wait the shutdown delay, finish in-flight requests, close. */
  close(): Promise<void>
}

/**
 * Starts the webhook and metrics servers from a parsed configuration, building each part from the
 * ones before it: TLS, the server (and with it the log), the cluster sources, the admission routes
 * that read them, the certificate source; then it listens.
 */
export async function start(config: Config, io: CliIo): Promise<RunningServer> {
  const metrics = createMetrics({ version: await packageVersion() })
  const readiness = new Readiness()
  const certMode = resolveCertMode(config, runningInCluster())
  const { tls, generatedCaFile } = await loadServingTls(config, certMode)
  const app = buildServer({ tls, metrics, readiness, logger: { level: config.logLevel, stream: io.stderr } })
  const log = app.log
  metrics.certificateNotAfter.set(certificateInfo(String(tls.cert)).notAfter.getTime() / 1000)
  if (generatedCaFile !== undefined) {
    log.warn({ caFile: generatedCaFile }, 'no --tls-cert/--tls-key: serving a self-signed certificate for localhost, 127.0.0.1 and ::1')
  }

  // `--kube-version` alone means no cluster: nothing to read Services from, and client-node unloaded.
  const hasCluster = config.kubeVersion === undefined || config.kubeconfig !== undefined
  const cluster = hasCluster || certMode === 'bootstrap' ? await import('../cluster/connection.js') : undefined
  const kubeConfig = hasCluster ? cluster?.loadKubeConfig(config.kubeconfig) : undefined
  const serviceCache =
    cluster !== undefined && kubeConfig !== undefined && config.sidecar.injection !== 'never'
      ? createServiceCache(cluster, kubeConfig, metrics, log)
      : undefined

  // The version and the mixed-protocol probe refer to each other: a version read is followed by a
  // probe, and the probe's gauge is judged by the version. Neither runs before versionSource.start().
  const versionSource: VersionSource = createVersionSource(config, cluster, kubeConfig, log, metrics, {
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

  // Only with a cluster: its namespaces' labels. Ready only once listed, so a labelled namespace is
  // never enforced because the list had not arrived yet.
  const warnNamespaces = cluster !== undefined && kubeConfig !== undefined ? createWarnNamespaces(cluster, kubeConfig, log) : undefined
  if (warnNamespaces !== undefined) readiness.add('warn-only namespaces', () => (warnNamespaces.synced() ? null : 'not listed yet'))
  const events = cluster !== undefined && kubeConfig !== undefined ? createEvents(cluster, kubeConfig, metrics, log) : undefined
  registerAdmission(
    app,
    {
      config,
      clusterVersion: () => versionSource.current(),
      mixedProtocolGate: () => mixedProtocol.current().gate,
      ...(warnNamespaces === undefined ? {} : { warnOnlyNamespace: (namespace: string) => warnNamespaces.has(namespace) }),
      ...(serviceCache === undefined ? {} : { rules: podRules(serviceCache, config.sidecar) }),
    },
    metrics,
    events,
  )
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
  const metricsApp = buildMetricsServer({ metrics, readiness, ...(serviceCache === undefined ? {} : { serviceCacheSynced: () => serviceCache.synced() }) })
  const metricsAddress = metricsBindAddress(config)

  serviceCache?.start()
  warnNamespaces?.start()
  try {
    await listenOn(app, config.port, config.address, '--port/--address (port/address)')
    // After listen: the first version read is followed by the mixed-protocol dry-run, which the
    // apiserver may send through nlb-guard's own webhook (and fail, with failurePolicy Fail, if no one answers).
    versionSource.start()
    await listenOn(metricsApp, config.metricsPort, metricsAddress, '--metrics-port/--metrics-address (metricsPort/metricsAddress)')
  } catch (error: unknown) {
    // Nothing may keep the process alive after a failed start: stop what was started, then report.
    versionSource.stop()
    events?.stop()
    await certificates.close()
    await serviceCache?.stop()
    await warnNamespaces?.stop()
    await Promise.all([app.close(), metricsApp.close()])
    throw error
  }
  log.info(
    { port: config.port, metricsPort: config.metricsPort, address: config.address, metricsAddress, clientCertificates: tls.clientCa !== undefined },
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
        await warnNamespaces?.stop()
        await Promise.all([app.close(), metricsApp.close()])
        // No admission is left to add one: what waits is sent now, within a bound of its own.
        if (events !== undefined) {
          const { pending, unsent } = await events.flush(EVENT_FLUSH_MS)
          if (pending > 0) log.info({ pending, unsent }, 'Kubernetes Events sent before exit')
        }
        log.info('closed')
      })()
      return closing
    },
  }
}

/** Listening errors a person can fix (a busy port, an address not on this host) as one line naming the flag. */
const LISTEN_PROBLEMS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use (another process listens there)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this host',
}

async function listenOn(server: { listen(options: { port: number; host: string }): Promise<string> }, port: number, host: string, flags: string): Promise<void> {
  try {
    await server.listen({ port, host })
  } catch (error: unknown) {
    const problem = LISTEN_PROBLEMS[(error as NodeJS.ErrnoException).code ?? '']
    if (problem === undefined) throw error
    throw new ConfigError(`cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${problem}; choose another with ${flags}`, { cause: error })
  }
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

/**
 * How long the close waits for waiting Events: inside close-with-grace's margin (20 s past the
 * shutdown delay) and the pod's terminationGracePeriodSeconds (30 s by default), and enough for the
 * full queue (256 notes, without the pause between requests) at a few milliseconds a request.
 */
const EVENT_FLUSH_MS = 2000

/** A ReplicaSet's GET, at most: under the shutdown's flush bound, so one slow answer leaves it time. */
const OWNER_LOOKUP_TIMEOUT_MS = 1000

/** The dry-run probe's own limit: the apiserver gives a slow webhook up to 30 s, we wait less. */
const PROBE_TIMEOUT_MS = 10_000

function createWarnNamespaces(cluster: ClusterConnection, kubeConfig: KubeConfig, log: WebhookServer['log']): WarnNamespaces {
  return cluster.startWarnNamespaces(kubeConfig, {
    onSynced: (count) => log.info({ namespaces: count }, 'warn-only namespaces listed (label nlb-guard.io/enforcement=warn)'),
    onError: (error, retryInMs) => log.warn({ reason: errorMessage(error), retryInMs }, 'warn-only namespaces: list or watch failed; retrying'),
  })
}

function createEvents(cluster: ClusterConnection, kubeConfig: KubeConfig, metrics: Metrics, log: WebhookServer['log']): EventRecorder {
  return createEventRecorder({
    // In a pod, its name (the Deployment's downward API sets none, the hostname is the pod's name).
    sink: cluster.kubeEventSink(kubeConfig, bounded(hostname(), 128)),
    resolveInvolved: createOwnerResolver({
      readReplicaSet: cluster.kubeReplicaSetReader(kubeConfig, OWNER_LOOKUP_TIMEOUT_MS),
      onLookup: (result) => metrics.eventOwnerLookups.inc({ result }),
      onError: (error, involved) =>
        log.warn({ reason: errorMessage(error), replicaSet: `${involved.namespace}/${involved.name}` }, "cannot read a pod's ReplicaSet to find its Deployment; its Event goes on the ReplicaSet"),
    }),
    onResult: (result, reason) => metrics.events.inc({ result, reason }),
    onError: (error, event) =>
      log.warn({ reason: errorMessage(error), involved: `${event.involved.kind}/${event.involved.name}`, eventReason: event.reason }, 'cannot send a Kubernetes Event; the admission was not affected'),
  })
}

function createServiceCache(cluster: ClusterConnection, kubeConfig: KubeConfig, metrics: Metrics, log: WebhookServer['log']): ServiceCache {
  return cluster.startServiceCache(kubeConfig, {
    onSynced: (count) => log.info({ services: count }, 'service cache synced: UDP LoadBalancer Services'),
    onSize: (count) => metrics.serviceCacheSize.set(count),
    onError: (error, retryInMs) =>
      log.warn({ reason: errorMessage(error), retryInMs }, 'service cache: list or watch failed; retrying'),
  })
}
