import type { FastifyBaseLogger } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]
type Log = (...args: unknown[]) => void

/**
 * A request's logger made on first use. fastify gives every request a pino child logger (its reqId
 * binding serialised up front: 1% of an admission's CPU time, bench/ profile), but an admission
 * logs through it only when something goes wrong: its one line per admission is written by the
 * server's logger with the same `reqId` field, the same line. Used by the admission routes only.
 */
class LazyRequestLog {
  #log: FastifyBaseLogger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildOptions

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get #child(): FastifyBaseLogger {
    return (this.#log ??= this.#parent.child(this.#bindings, this.#options))
  }

  get level(): string {
    return this.#child.level
  }

  set level(level: string) {
    this.#child.level = level
  }

  fatal(...args: unknown[]): void {
    ;(this.#child.fatal as Log)(...args)
  }
  error(...args: unknown[]): void {
    ;(this.#child.error as Log)(...args)
  }
  warn(...args: unknown[]): void {
    ;(this.#child.warn as Log)(...args)
  }
  info(...args: unknown[]): void {
    ;(this.#child.info as Log)(...args)
  }
  debug(...args: unknown[]): void {
    ;(this.#child.debug as Log)(...args)
  }
  trace(...args: unknown[]): void {
    ;(this.#child.trace as Log)(...args)
  }
  silent(...args: unknown[]): void {
    ;(this.#child.silent as Log)(...args)
  }
  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.#child.child(bindings, options)
  }
}

/** fastify's childLoggerFactory, lazily: the child is made when the request first logs. */
export function lazyRequestLog(logger: FastifyBaseLogger, bindings: Bindings, options: ChildOptions): FastifyBaseLogger {
  return new LazyRequestLog(logger, bindings, options) as unknown as FastifyBaseLogger
}
