import type { TLSSocket } from 'node:tls'
import type { Metrics } from './metrics.js'
import { tlsFailureReason } from './metrics.js'

/** A refused client certificate is logged at most once per reason in this interval; every one is counted. */
export const HANDSHAKE_LOG_INTERVAL_MS = 60_000

/** OpenSSL's code when a client certificate is required and the client sent none. */
const NO_CERTIFICATE = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'

interface Emitter {
  on(event: 'tlsClientError', listener: (error: NodeJS.ErrnoException, socket: HandshakeSocket) => void): unknown
}

type HandshakeSocket = Pick<TLSSocket, 'authorizationError' | 'remoteAddress' | 'destroy'>

interface Log {
  warn(fields: object, message: string): void
  debug(fields: object, message: string): void
}

export interface HandshakeFailure {
  readonly reason: string
  /** The client certificate was missing or did not verify: a configuration error worth a warning. */
  readonly certificateRefused: boolean
}

/**
 * Why a TLS connection failed. A certificate that does not verify (another CA, expired, no clientAuth)
 * completes OpenSSL's handshake and Node then destroys the socket: the error is a bare ECONNRESET and
 * the reason (a code such as CERT_HAS_EXPIRED; typed as an Error, set as a string) is on the socket.
 * A missing certificate fails inside OpenSSL with its own code.
 */
export function handshakeFailure(error: NodeJS.ErrnoException, socket: Pick<TLSSocket, 'authorizationError'>): HandshakeFailure {
  const authorization = socket.authorizationError as unknown
  if (typeof authorization === 'string' && authorization !== '') return { reason: tlsFailureReason(authorization), certificateRefused: true }
  const reason = error.code === undefined ? 'unknown' : tlsFailureReason(error.code)
  return { reason, certificateRefused: reason === NO_CERTIFICATE }
}

/**
 * Counts failed TLS handshakes and says why. With `--client-ca`, a kube-apiserver that presents no
 * certificate or the wrong one fails every admission with a transport error on its side only: the
 * warning here names the cause on ours. Other failures (a TCP probe, plain HTTP on the TLS port) are
 * logged at debug level: they are routine and any client on the network can cause them.
 */
export function watchHandshakes(server: Emitter, metrics: Pick<Metrics, 'tlsHandshakeFailures'>, log: Log, now: () => number = Date.now): void {
  const lastLogged = new Map<string, { at: number; suppressed: number }>()
  server.on('tlsClientError', (error, socket) => {
    const { reason, certificateRefused } = handshakeFailure(error, socket)
    metrics.tlsHandshakeFailures.inc({ reason })
    // Node leaves the socket open when a handshake times out (it only emits this event): close it.
    socket.destroy()
    const fields = { reason, remoteAddress: socket.remoteAddress }
    if (!certificateRefused) {
      log.debug(fields, 'TLS handshake failed')
      return
    }
    const last = lastLogged.get(reason)
    if (last !== undefined && now() - last.at < HANDSHAKE_LOG_INTERVAL_MS) {
      last.suppressed++
      return
    }
    lastLogged.set(reason, { at: now(), suppressed: 0 })
    log.warn(
      { ...fields, suppressed: last?.suppressed ?? 0, hint: 'the client (the kube-apiserver) must present a clientAuth certificate signed by the CA of --client-ca (tls.clientCaFile): see the AdmissionConfiguration in the README' },
      'client certificate refused',
    )
  })
}
