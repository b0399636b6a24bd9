import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * nlb-guard's Prometheus metrics, on a registry of their own (never prom-client's global one, so
 * tests and several servers in one process do not share counters).
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'nlb_guard_' })
  const registers = [registry]
  return {
    registry,
    requests: new Counter({
      name: 'nlb_guard_admission_requests_total',
      help: 'Admission requests by webhook, kind, operation and result (allowed, patched, denied, error).',
      labelNames: ['webhook', 'kind', 'operation', 'result'] as const,
      registers,
    }),
    // Our own work is a fraction of a millisecond: sub-millisecond buckets, up to the apiserver's 10 s timeout.
    duration: new Histogram({
      name: 'nlb_guard_admission_duration_seconds',
      help: 'Time from a decoded review to its encoded answer.',
      labelNames: ['webhook', 'kind'] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 10],
      registers,
    }),
    mutations: new Counter({
      name: 'nlb_guard_mutations_total',
      help: 'Objects changed, by rule.',
      labelNames: ['rule'] as const,
      registers,
    }),
    denials: new Counter({
      name: 'nlb_guard_denials_total',
      help: 'Objects denied, by rule.',
      labelNames: ['rule'] as const,
      registers,
    }),
    badRequests: new Counter({
      name: 'nlb_guard_bad_requests_total',
      help: 'Requests answered 4xx before any rule ran, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    tlsHandshakeFailures: new Counter({
      name: 'nlb_guard_tls_handshake_failures_total',
      help: 'TLS connections that failed before any request, by reason (a client certificate verification error, or the TLS error code).',
      labelNames: ['reason'] as const,
      registers,
    }),
    certificateNotAfter: new Gauge({
      name: 'nlb_guard_certificate_not_after_timestamp_seconds',
      help: 'When the serving certificate expires (Unix time).',
      registers,
    }),
    certificateReloads: new Counter({
      name: 'nlb_guard_certificate_reloads_total',
      help: 'Serving certificates swapped in live, by source (files, secret), and pairs refused (result="rejected").',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    certificateRotations: new Counter({
      name: 'nlb_guard_certificate_rotations_total',
      help: 'Certificates this replica issued to replace one in the bootstrap Secret, by certificate (serving, ca).',
      labelNames: ['certificate'] as const,
      registers,
    }),
    caBundleInjections: new Counter({
      name: 'nlb_guard_ca_bundle_injections_total',
      help: 'Patches of caBundle into our webhook configuration, by configuration (mutating, validating); drift repairs included.',
      labelNames: ['configuration'] as const,
      registers,
    }),
    caBundleDriftRepairs: new Counter({
      name: 'nlb_guard_ca_bundle_drift_repairs_total',
      help: 'caBundle patches that undid a change made by someone else after we had set it, by configuration.',
      labelNames: ['configuration'] as const,
      registers,
    }),
    serviceCacheSize: new Gauge({
      name: 'nlb_guard_service_cache_size',
      help: 'LoadBalancer Services with UDP ports held in the informer cache.',
      registers,
    }),
    mixedProtocolCapability: new Gauge({
      name: 'nlb_guard_mixed_protocol_capability',
      help: 'Whether the rules take the cluster to accept mixed-protocol LoadBalancer Services (1) or not (0), by where that comes from: source="config" (mixedProtocolLBService), "probe" (the apiserver answered a dry-run), "version-table" (the probe could not run). One series at a time.',
      labelNames: ['source'] as const,
      registers,
    }),
    clusterVersion: new Gauge({
      name: 'nlb_guard_cluster_version_info',
      help: 'The Kubernetes version the rules assume (value 1).',
      labelNames: ['version', 'source'] as const,
      registers,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
