import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify'
import Fastify, { LogController } from 'fastify'
import type { TLSSocket } from 'node:tls'
import type { AdmissionDeps, AdmissionMode } from '../admission/handler.js'
import { admit } from '../admission/handler.js'
import { errored, review } from '../admission/response.js'
import { decodeReview, ReviewDecodeError } from '../admission/review.js'
import { eventNoteFor } from '../events/notes.js'
import type { EventRecorder } from '../events/recorder.js'
import { bounded, boundedOptional } from '../text/bounded.js'
import type { Metrics } from './metrics.js'
import { badRequestReason, kindLabel, operationLabel } from './metrics.js'
import type { Readiness } from './readiness.js'
import { CIPHERS } from './ciphers.js'
import { watchHandshakes } from './handshakes.js'
import { lazyRequestLog } from './request-log.js'

/**
 * The kube-apiserver sends objects of up to 3 MiB (etcd's default request limit, 1.5 MiB, plus
 * its own headroom), and an UPDATE review carries two of them: 7 MiB covers both and the envelope.
 */
export const BODY_LIMIT = 7 * 1024 * 1024

/**
 * The apiserver's webhook client closes idle connections after 90 s (net/http IdleConnTimeout in
 * k8s.io/apiserver's webhook transport); staying open longer means we never close a connection it
 * is about to reuse, which would fail that request.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 120_000

/** A body that takes longer than this to arrive is not from the apiserver (its webhook timeout is at most 30 s). */
export const REQUEST_TIMEOUT_MS = 10_000

/**
 * Node enforces requestTimeout only when its connection sweep runs (every 30 s by default), and sizes
 * headersTimeout from the requestTimeout given to createServer (fastify sets it only afterwards, so
 * Node keeps 60 s): without both options a stalled request holds its socket for 30–60 s, not 10.
 */
const HTTP_TIMEOUTS = { requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000 }

/**
 * A TCP connection that never finishes its TLS handshake (never sends a ClientHello) is held for
 * Node's default 120 s: bounded like a request instead. On timeout Node only emits tlsClientError;
 * watchHandshakes then closes the socket.
 */
export const HANDSHAKE_TIMEOUT_MS = REQUEST_TIMEOUT_MS

/** fastify's options for both servers: the same request, header and keep-alive bounds on each port. */
const SERVER_TIMEOUTS = { keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS } as const

/**
 * The largest declared body that is read and thrown away after a 413 rather than cut off: twice the
 * limit. Larger ones (and bodies without a length) get the 413 and the connection closed at once.
 */
export const MAX_DRAINED_BODY = 2 * BODY_LIMIT

function drainable(contentLength: string | undefined): boolean {
  const length = Number(contentLength)
  return Number.isSafeInteger(length) && length <= MAX_DRAINED_BODY
}

/** Fastify's own 4xx errors, reworded for someone reading a webhook client's log. */
const BAD_REQUEST_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported content-type: send an AdmissionReview as application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: `request body too large: the limit is ${BODY_LIMIT} bytes`,
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty body: send an AdmissionReview as application/json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'body is not valid JSON',
}

export interface TlsMaterial {
  readonly cert: string | Buffer
  readonly key: string | Buffer
  /** CA for client certificates: when set, a client without a valid one is refused at the handshake. */
  readonly clientCa?: string | Buffer | undefined
}

export interface ServerDeps {
  readonly tls: TlsMaterial
  /** The admission routes' deps; start() leaves it out and calls registerAdmission once the cluster sources exist. */
  readonly admission?: AdmissionDeps | undefined
  readonly metrics: Metrics
  readonly readiness: Readiness
  /** pino options (`stream` lets tests capture the log), or false for none. */
  readonly logger: false | { readonly level: string; readonly stream?: { write(line: string): unknown } }
}

export function tlsOptions(tls: TlsMaterial) {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2' as const,
    ciphers: CIPHERS,
    honorCipherOrder: true,
    ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
  }
}

/** Builds the TLS admission server; it does not listen (the entry point does, tests use inject()). */
export function buildServer(deps: ServerDeps) {
  const app = Fastify({
    https: { ...tlsOptions(deps.tls), ...HTTP_TIMEOUTS, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
    bodyLimit: BODY_LIMIT,
    ...SERVER_TIMEOUTS,
    logger: deps.logger,
    // One line per admission is written by the handler itself; fastify's per-request lines would double it.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests already on an open connection are answered while closing: a 503 would fail an admission.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  })

  watchHandshakes(app.server, deps.metrics, app.log)
  // Client-initiated renegotiation (TLS 1.2; 1.3 has none) costs the server a full handshake per
  // request of the client: refused, the connection is closed (Node only limits it to 3 in 10 min).
  app.server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation())

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500
    if (status < 500) {
      // fastify's own messages can quote the request (its content type): bounded like any caller text.
      const message = BAD_REQUEST_MESSAGES[error.code] ?? bounded(error.message)
      const reason = badRequestReason(error.code)
      deps.metrics.badRequests.inc({ reason })
      request.log.warn({ code: boundedOptional(error.code), status, reason: message, url: bounded(request.url) }, 'bad request')
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && drainable(request.headers['content-length'])) {
        // fastify answers before reading the body and closes; closing with the client's bytes still
        // unread makes the kernel send a reset, which can destroy the 413 before the client reads it
        // (a `write EPIPE` or ECONNRESET instead of an answer). Keeping the connection lets Node read
        // and discard the declared remainder (bounded, and within the request timeout) first.
        reply.removeHeader('connection')
      }
      return reply.code(status).send({ code: status, message })
    }
    request.log.error({ err: error, url: bounded(request.url) }, 'request failed')
    return reply.code(500).send({ code: 500, message: 'internal error' })
  })

  if (deps.admission !== undefined) registerAdmission(app, deps.admission, deps.metrics)
  registerHealth(app, deps.readiness)
  return app
}

/** POST /mutate and /validate: routes are added before the server listens. */
export function registerAdmission(app: { post: FastifyInstance['post']; log: FastifyBaseLogger }, admission: AdmissionDeps, metrics: Metrics, events?: EventRecorder): void {
  for (const mode of ['mutate', 'validate'] as const) {
    app.post(`/${mode}`, { childLoggerFactory: lazyRequestLog }, async (request, reply) => {
      const answer = handleReview(mode, request.body, { request: request.log, server: app.log, reqId: request.id }, admission, metrics, events)
      return reply.code(answer.status).send(answer.payload)
    })
  }
}

/**
 * The plain-HTTP server for /metrics, /healthz and /readyz (kubelet probes present no client
 * certificate): the same timeouts as the TLS port, so slow or silent connections are closed there too.
 */
export function buildMetricsServer(deps: Pick<ServerDeps, 'metrics' | 'readiness'> & { readonly serviceCacheSynced?: () => boolean }) {
  // connectionTimeout: Node's request checks start at a request's first byte, so a plain connection
  // that sends nothing is held forever without a socket timeout (the TLS port has its handshake timeout).
  const app = Fastify({ logger: false, http: HTTP_TIMEOUTS, ...SERVER_TIMEOUTS, connectionTimeout: REQUEST_TIMEOUT_MS, forceCloseConnections: 'idle' })
  app.get('/metrics', async (_request, reply) => {
    // Read at each scrape, from the same checks as /readyz; no cache kept (injection off) needs no sync.
    deps.metrics.ready.set(deps.readiness.reasons().length === 0 ? 1 : 0)
    deps.metrics.serviceCacheSynced.set(deps.serviceCacheSynced === undefined || deps.serviceCacheSynced() ? 1 : 0)
    return reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics())
  })
  registerHealth(app, deps.readiness)
  return app
}

/** /healthz and /readyz, on the TLS server and on the plain metrics server alike. */
export function registerHealth(app: { get: FastifyInstance['get'] }, readiness: Readiness): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const reasons = readiness.reasons()
    return reply.code(reasons.length === 0 ? 200 : 503).send({ ready: reasons.length === 0, reasons })
  })
}

/**
 * Where an admission logs: a problem through the request's logger (made on first use,
 * request-log.ts); its one line through the server's, with the request's reqId as the child would.
 */
interface AdmissionLog {
  readonly request: FastifyBaseLogger
  readonly server: FastifyBaseLogger
  readonly reqId: string
}

function handleReview(
  mode: AdmissionMode,
  body: unknown,
  log: AdmissionLog,
  admission: AdmissionDeps,
  metrics: Metrics,
  events: EventRecorder | undefined,
): { status: number; payload: unknown } {
  const started = process.hrtime.bigint()
  let decoded
  try {
    decoded = decodeReview(body)
  } catch (error: unknown) {
    if (!(error instanceof ReviewDecodeError)) throw error
    metrics.badRequests.inc({ reason: 'not-an-admission-review' })
    log.request.warn({ reason: bounded(error.message), uid: boundedOptional(error.uid) }, 'bad request')
    if (error.uid !== undefined) {
      return { status: 200, payload: review(error.apiVersion ?? 'admission.k8s.io/v1', errored(error.uid, 400, error.message)) }
    }
    return { status: 400, payload: { code: 400, message: error.message } }
  }
  const { request } = decoded
  const result = admit(request, mode, admission)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const kind = kindLabel(request.kind.kind)
  metrics.requests.inc({ webhook: mode, kind, operation: operationLabel(request.operation), result: result.outcome })
  metrics.duration.observe({ webhook: mode, kind }, seconds)
  // Only what was done: a patch sent, or a denial; the validating webhook's "would have" warnings are neither.
  const dryRun = request.dryRun === true ? 'true' : 'false'
  if (result.outcome === 'patched' || result.outcome === 'denied') {
    for (const rule of result.rules) (result.outcome === 'denied' ? metrics.denials : metrics.mutations).inc({ rule, dry_run: dryRun })
  } else if (result.outcome === 'warned') {
    for (const rule of result.rules) metrics.warnOnly.inc({ rule, action: result.wouldHave === 'denied' ? 'deny' : 'change', dry_run: dryRun })
  }
  // Names only: object contents can hold secrets (env values, annotations of other tools). Every
  // field the caller wrote is bounded: the apiserver has not validated the object yet.
  log.server.info(
    {
      reqId: log.reqId,
      uid: bounded(request.uid),
      webhook: mode,
      reviewVersion: decoded.apiVersion,
      kind: bounded(request.kind.kind),
      namespace: boundedOptional(request.namespace),
      name: boundedOptional(request.name),
      operation: request.operation,
      dryRun: request.dryRun ?? false,
      decision: result.outcome,
      rules: result.rules,
      durationMs: Math.round(seconds * 1e6) / 1e3,
    },
    'admission',
  )
  // Off the hot path: record() only notes it; the recorder sends later, and never fails the admission.
  if (events !== undefined) {
    const note = eventNoteFor(request, mode, result)
    if (note !== undefined) events.record(note)
  }
  return { status: 200, payload: review(decoded.apiVersion, result.response) }
}

export type WebhookServer = ReturnType<typeof buildServer>
