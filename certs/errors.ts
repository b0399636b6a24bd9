/**
 * The request itself is wrong (a name that is not a DNS name, an IP that does not parse, no names at
 * all, a non-positive validity). The CLI reports it as a usage error; retrying cannot help.
 */
export class CertificateRequestError extends Error {
  override name = 'CertificateRequestError'
}

/** A certificate or key could not be read or produced (bad PEM, a key forge cannot use). */
export class CertificateError extends Error {
  override name = 'CertificateError'
}

/**
 * The object changed between our read and our write (HTTP 409 Conflict: a stale resourceVersion, or
 * AlreadyExists on create; or a JSON Patch `test` op that no longer holds). Another replica got there
 * first: re-read and decide again.
 */
export class ConflictError extends Error {
  override name = 'ConflictError'
}
