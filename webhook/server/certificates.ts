import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SecureContextOptions } from 'node:tls'
import type { KubeConfig } from '@kubernetes/client-node'
import { CertificateBootstrap } from '../../certs/bootstrap.js'
import { CertificateError } from '../../certs/errors.js'
import type { CertificateAndKey } from '../../certs/issue.js'
import { selfSignedForLocalhost, serviceDnsNames } from '../../certs/issue.js'
import { watchCertificateFiles } from '../../certs/reload.js'
import type { CertificateInfo } from '../../certs/rotation.js'
import type { Log } from '../../certs/serving.js'
import { checkKeyPair } from '../../certs/serving.js'
import { ConfigError } from '../../lib/errors.js'
import type { ClusterConnection } from '../cluster/connection.js'
import type { Config } from '../config.js'
import type { TlsMaterial } from './app.js'
import { tlsOptions } from './app.js'
import type { Metrics } from './metrics.js'
import type { Readiness } from './readiness.js'

/*
 * The server's certificate wiring: which source the serving certificate comes from, and swapping it
 * into the live TLS server. certs/ holds the pure parts (issuing, planning, checking a pair) and
 * small interfaces; this file connects them to the config, metrics and readiness.
 */

export type CertMode = 'files' | 'bootstrap' | 'self-signed'

const DAY_MS = 24 * 3600_000

/**
 * The certificate mode `auto` stands for, and a check that the settings agree with an explicit one.
 * `inCluster` is config.ts's runningInCluster().
 */
export function resolveCertMode(config: Pick<Config, 'certMode' | 'tls' | 'kubeconfig' | 'kubeVersion'>, inCluster: boolean): CertMode {
  const hasFiles = config.tls.certFile !== undefined
  switch (config.certMode) {
    case 'auto':
      if (hasFiles) return 'files'
      if (config.kubeconfig !== undefined) return 'bootstrap'
      // `--kube-version` without `--kubeconfig` is serve's "no cluster" switch (serve.ts).
      return inCluster && config.kubeVersion === undefined ? 'bootstrap' : 'self-signed'
    case 'files':
      if (!hasFiles) throw new ConfigError('certMode files needs tls.certFile and tls.keyFile (--tls-cert, --tls-key)')
      return 'files'
    case 'bootstrap':
    case 'self-signed':
      if (hasFiles) throw new ConfigError(`certMode ${config.certMode} makes its own certificate: drop tls.certFile and tls.keyFile`)
      return config.certMode
  }
}

/**
 * What bootstrap serves until the Secret's certificate is loaded. Readiness is false meanwhile, so
 * nothing is sent here that would need to trust it; it only lets the TLS port open at once.
 */
export function placeholderCertificate(now: Date): CertificateAndKey {
  return selfSignedForLocalhost(now).serving
}

/**
 * The certificate the TLS server starts with: the files; bootstrap's placeholder until the
 * Secret's is loaded; or, for local runs, a fresh CA and certificate whose CA is written out.
 */
export async function loadServingTls(config: Config, mode: CertMode): Promise<{ tls: TlsMaterial; generatedCaFile?: string }> {
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

export interface CertificateSourceDeps {
  readonly mode: CertMode
  readonly config: Config
  /** The cluster connection serve already made, if any; bootstrap loads one otherwise. */
  readonly kubeConfig: KubeConfig | undefined
  /** The cluster module, loaded by serve only when it has a cluster (bootstrap always does). */
  readonly cluster: Pick<ClusterConnection, 'loadKubeConfig' | 'kubeSecretClient' | 'kubeWebhookConfigurationClient'> | undefined
  readonly server: SecureContextTarget
  /** What the server was built with. */
  readonly tls: TlsMaterial
  readonly metrics: Metrics
  readonly readiness: Readiness
  readonly log: Log
}

export interface CertificateSource {
  close(): Promise<void>
}

/**
 * Keeps the live certificate current: files mode reloads changed files, bootstrap syncs with its
 * Secret and the webhook configurations, self-signed does nothing.
 */
export function startCertificateSource(deps: CertificateSourceDeps): CertificateSource {
  const { mode, config, server, tls, metrics, readiness, log } = deps
  const swap = { server, clientCa: tls.clientCa, metrics, log }
  if (mode === 'files') {
    const { certFile, keyFile } = config.tls
    if (certFile === undefined || keyFile === undefined) throw new ConfigError('certMode files needs tls.certFile and tls.keyFile')
    const watch = watchCertificateFiles({
      certFile,
      keyFile,
      initial: { certPem: String(tls.cert), keyPem: String(tls.key) },
      apply: (pair) => swapServingCertificate(swap, pair, 'files'),
      log,
    })
    log.info({ certFile, keyFile }, 'watching the certificate files for changes')
    return { close: async () => watch.close() }
  }
  if (mode === 'bootstrap') {
    const { cluster } = deps
    if (cluster === undefined) throw new Error('certificate bootstrap needs the cluster connection module')
    const kubeConfig = deps.kubeConfig ?? cluster.loadKubeConfig(config.kubeconfig)
    const bootstrap = new CertificateBootstrap({
      secrets: cluster.kubeSecretClient(kubeConfig),
      webhookConfigurations: cluster.kubeWebhookConfigurationClient(kubeConfig),
      namespace: config.namespace,
      secretName: config.certSecret,
      webhookConfigurationName: config.webhookConfigurationName,
      dnsNames: [...serviceDnsNames(config.serviceName, config.namespace, config.clusterDomain), ...config.certDNSNames],
      ipAddresses: config.certIPAddresses,
      // RFC 5280 caps a CN at 64 characters; it is only there for people reading the certificate.
      caCommonName: `nlb-guard CA for ${config.serviceName}.${config.namespace}`.slice(0, 64),
      now: () => new Date(),
      servingLookaheadMs: config.certRotationLookaheadDays * DAY_MS,
      caLookaheadMs: config.caRotationLookaheadDays * DAY_MS,
      // Four sync periods: the apiserver's webhook informer sees a new caBundle within seconds, and
      // every replica re-reads the Secret once per period.
      propagationMs: 4 * config.certSyncSeconds * 1000,
      syncMs: config.certSyncSeconds * 1000,
      serve: (pair) => swapServingCertificate(swap, pair, 'secret'),
      metrics,
      log,
    })
    readiness.add('serving certificate', () => bootstrap.notReadyReason())
    log.info(
      { secret: `${config.namespace}/${config.certSecret}`, webhookConfiguration: config.webhookConfigurationName },
      'certificate bootstrap: using the Secret and injecting the CA into the webhook configurations',
    )
    bootstrap.start()
    return { close: () => bootstrap.stop() }
  }
  return { close: async () => undefined }
}

/** A TLS server whose certificate can be replaced: node's tls.Server, and so https.Server. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void
}

export interface ServingCertificateSwap {
  readonly server: SecureContextTarget
  /** Kept as it is: the client-certificate CA is not part of what rotates. */
  readonly clientCa: string | Buffer | undefined
  readonly metrics: Pick<Metrics, 'certificateNotAfter' | 'certificateReloads'>
  readonly log: Log
}

/**
 * Replaces the live certificate. `setSecureContext` applies to handshakes from now on: connections
 * already open keep the context they were made with, so keep-alive requests go on undisturbed
 * (node docs, tls.Server#setSecureContext). Throws CertificateError, leaving the old certificate in
 * place, when the pair does not match or TLS refuses it.
 */
export function swapServingCertificate(target: ServingCertificateSwap, pair: CertificateAndKey, source: 'files' | 'secret'): CertificateInfo {
  let info: CertificateInfo
  try {
    info = checkKeyPair(pair)
    target.server.setSecureContext(tlsOptions({ cert: pair.certPem, key: pair.keyPem, clientCa: target.clientCa }))
  } catch (error: unknown) {
    target.metrics.certificateReloads.inc({ source, result: 'rejected' })
    if (error instanceof CertificateError) throw error
    throw new CertificateError('TLS refused the certificate', { cause: error })
  }
  target.metrics.certificateReloads.inc({ source, result: 'loaded' })
  target.metrics.certificateNotAfter.set(info.notAfter.getTime() / 1000)
  target.log.info(
    { source, serialNumber: info.serialNumber, notAfter: info.notAfter.toISOString(), dnsNames: info.dnsNames },
    'serving certificate loaded',
  )
  return info
}
