import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { ADMISSION_OPERATIONS } from '../admission/review.js'
import { WORKLOAD_KINDS } from '../rules/pod.js'

/*
 * Every label value comes from a closed set: a Prometheus series lives as long as the process, so a
 * label copied from request content (a 256 KiB `kind`, a new string per request) grows /metrics and
 * the heap without bound. Values outside a set are counted as `other`.
 */

/** The kinds nlb-guard has rules for: Services, Pods and the workloads whose pod templates it can mutate. */
export const KIND_LABELS: ReadonlySet<string> = new Set(['Service', ...WORKLOAD_KINDS.map((w) => w.kind)])
export const OTHER = 'other'

export function kindLabel(kind: string): string {
  return KIND_LABELS.has(kind) ? kind : OTHER
}

const OPERATION_LABELS: ReadonlySet<string> = new Set(ADMISSION_OPERATIONS)
export function operationLabel(operation: string): string {
  return OPERATION_LABELS.has(operation) ? operation : OTHER
}

/**
 * Why a request was answered 4xx before any rule ran: fastify's codes for the bodies it refuses
 * (fastify/lib/errors.js), ours for a body that is JSON but not a review.
 */
export const BAD_REQUEST_REASONS: ReadonlySet<string> = new Set([
  'not-an-admission-review',
  'FST_ERR_CTP_INVALID_MEDIA_TYPE',
  'FST_ERR_CTP_BODY_TOO_LARGE',
  'FST_ERR_CTP_EMPTY_JSON_BODY',
  'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
  'FST_ERR_CTP_EMPTY_TYPE',
  'FST_ERR_CTP_INVALID_TYPE',
  'FST_ERR_BAD_URL',
  'FST_ERR_ASYNC_CONSTRAINT',
])
export function badRequestReason(code: string | undefined): string {
  return code !== undefined && BAD_REQUEST_REASONS.has(code) ? code : OTHER
}

/**
 * A failed TLS handshake's reason is an OpenSSL or Node error code (ERR_SSL_…, an X.509 verify code
 * such as CERT_HAS_EXPIRED, ECONNRESET): a client picks which, never its text. The shape check keeps
 * anything else (a future error whose code carries text) out of the label.
 */
export function tlsFailureReason(code: string): string {
  return /^[A-Z][A-Z0-9_]{0,79}$/.test(code) ? code : OTHER
}

/**
 * nlb-guard's Prometheus metrics, on a registry of their own (never prom-client's global one, so
 * tests and several servers in one process do not share counters).
 */
export function createMetrics(options: { defaultMetrics?: boolean; version?: string } = {}) {
  const registry = new Registry()
  // Unprefixed, as every Node exporter names them, so stock Node.js dashboards and alerts work.
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const metrics = {
    registry,
    requests: new Counter({
      name: 'nlb_guard_admission_requests_total',
      help: 'Admission requests by webhook, kind (Service, Pod, a workload kind, or other), operation and result (allowed, patched, denied, error).',
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
    // dry_run: a `kubectl apply --dry-run=server` is answered like a write but stores nothing, so a
    // dashboard of what nlb-guard changed filters dry_run="false".
    mutations: new Counter({
      name: 'nlb_guard_mutations_total',
      help: 'Objects the mutating webhook changed (a patch sent), by rule and dry_run (true, false).',
      labelNames: ['rule', 'dry_run'] as const,
      registers,
    }),
    denials: new Counter({
      name: 'nlb_guard_denials_total',
      help: 'Objects denied, by rule and dry_run (true, false).',
      labelNames: ['rule', 'dry_run'] as const,
      registers,
    }),
    warnOnly: new Counter({
      name: 'nlb_guard_warn_only_total',
      help: 'enforcement: warn — objects left alone that enforce would have changed (action="change") or denied (action="deny"), by rule and dry_run.',
      labelNames: ['rule', 'action', 'dry_run'] as const,
      registers,
    }),
    events: new Counter({
      name: 'nlb_guard_events_total',
      help: 'Kubernetes Events: emitted (created or patched), aggregated into one waiting to be sent, dropped (queue full) or failed (refused by the apiserver), by reason (Mutated, Denied, WouldMutate, WouldDeny).',
      labelNames: ['result', 'reason'] as const,
      registers,
    }),
    eventOwnerLookups: new Counter({
      name: 'nlb_guard_event_owner_lookups_total',
      help: "A controller-created pod's ReplicaSet looked up to put its Event on the Deployment: cached, fetched (GET), or failed (the Event stays on the ReplicaSet; the log says why).",
      labelNames: ['result'] as const,
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
    buildInfo: new Gauge({
      name: 'nlb_guard_build_info',
      help: "nlb-guard's version and the Node.js it runs on (value 1).",
      labelNames: ['version', 'node_version'] as const,
      registers,
    }),
    ready: new Gauge({
      name: 'nlb_guard_ready',
      help: '1 when /readyz answers 200 (certificate loaded, cluster version known, Service cache synced, not shutting down), else 0.',
      registers,
    }),
    serviceCacheSynced: new Gauge({
      name: 'nlb_guard_service_cache_synced',
      help: '1 once the Service informer has listed (or when Pod injection is off and no cache is kept), 0 before.',
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
  if (options.version !== undefined) metrics.buildInfo.set({ version: options.version, node_version: process.version }, 1)
  return metrics
}

export type Metrics = ReturnType<typeof createMetrics>
