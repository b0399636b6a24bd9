import type { SecretClient, SecretObject, WebhookConfigurationClient, WebhookKind } from './cluster.js'
import { WEBHOOK_KIND_NAMES } from './cluster.js'
import { ConflictError } from './errors.js'
import type { CertificateAndKey } from './issue.js'
import { injectCaBundle } from './inject.js'
import type { CertificateState, PlanStep } from './rollover.js'
import { caBundleOf, planCertificates, secretDataFromState, stateFromSecretData } from './rollover.js'
import type { Log } from './serving.js'
import { errorMessage } from '../lib/errors.js'
import { backoff, type Backoff } from '../lib/retry.js'

/** A labelled counter (prom-client's Counter is one). */
export interface LabelledCounter<Label extends string> {
  inc(labels: Partial<Record<Label, string>>): void
}

/** What bootstrap counts; the server passes its Prometheus metrics (webhook/server/metrics.ts). */
export interface BootstrapMetrics {
  readonly certificateRotations: LabelledCounter<'certificate'>
  readonly caBundleInjections: LabelledCounter<'configuration'>
  readonly caBundleDriftRepairs: LabelledCounter<'configuration'>
}

export interface BootstrapOptions {
  readonly secrets: SecretClient
  readonly webhookConfigurations: WebhookConfigurationClient
  /** Where the Secret lives: nlb-guard's own namespace. */
  readonly namespace: string
  readonly secretName: string
  /** The name of our MutatingWebhookConfiguration and ValidatingWebhookConfiguration. */
  readonly webhookConfigurationName: string
  /** SANs of the serving certificate: the Service's names (serviceDnsNames). */
  readonly dnsNames: readonly string[]
  /** Extra IP SANs (certIPAddresses). */
  readonly ipAddresses?: readonly string[]
  readonly caCommonName: string
  readonly now: () => Date
  readonly servingLookaheadMs: number
  readonly caLookaheadMs: number
  /** See PlanOptions.propagationMs; at least a few sync periods. */
  readonly propagationMs: number
  /** Time between syncs (Secret read, swap, caBundle check). */
  readonly syncMs: number
  readonly servingValidityDays?: number
  readonly caValidityDays?: number
  /** Puts the Secret's serving certificate into service; throws to refuse it. */
  readonly serve: (pair: CertificateAndKey) => void
  readonly metrics: BootstrapMetrics
  readonly log: Log
}

// Each conflict means another replica wrote the Secret in between; they all converge on its state,
// so a handful of rounds is plenty.
const SECRET_ATTEMPTS = 5

// Until the first success, retry sooner than the steady sync period: readiness waits on it.
const STARTUP_RETRY_MS = 2000

/**
 * In-cluster certificate bootstrap: keeps the CA and serving certificate in a Secret shared by all
 * replicas, serves what the Secret holds, and keeps caBundle of our webhook configurations equal to
 * its CA bundle. Every sync reads the Secret afresh, so a certificate rotated by another replica is
 * picked up within one period, and a caBundle changed by hand is put back within one period.
 *
 * Replicas coordinate only through the apiserver: a create that finds the Secret already there (409)
 * reads it back and uses it; a replace carries the resourceVersion it read and, on 409, reads again
 * and re-plans. Whichever replica wins, all end up serving certificates of one CA.
 */
export class CertificateBootstrap {
  private readonly options: BootstrapOptions
  private served: string | undefined
  private confirmedBundle: string | undefined
  private everInjected = false
  private readonly injected = new Map<WebhookKind, string>()
  private problem = 'not synced yet'
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private readonly startupRetry: Backoff

  constructor(options: BootstrapOptions) {
    this.options = options
    this.startupRetry = backoff({ initialMs: Math.min(STARTUP_RETRY_MS, options.syncMs), maxMs: options.syncMs })
  }

  /** Syncs now, then every syncMs until stop(). Failures are logged and retried. */
  start(): void {
    const loop = async (): Promise<void> => {
      let delay = this.options.syncMs
      try {
        await this.sync()
      } catch (error: unknown) {
        // Once ready, a failed sync waits for the next period: the served certificate stays valid.
        if (!this.ready()) delay = this.startupRetry.next()
        this.options.log.warn(
          { secret: this.secretRef(), reason: errorMessage(error), retryInMs: delay },
          'certificate bootstrap: sync failed; retrying',
        )
      }
      if (this.stopped) return
      this.timer = setTimeout(() => void (this.running = loop()), delay)
      this.timer.unref()
    }
    this.running = loop()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** null once a certificate from the Secret is served and the CA is in our webhook configurations. */
  notReadyReason(): string | null {
    return this.ready() ? null : this.problem
  }

  /** One round: bring the Secret up to date, serve its certificate, inject its CA bundle. */
  async sync(): Promise<void> {
    try {
      const state = await this.reconcileSecret()
      this.serveFrom(state)
      await this.injectBundle(state)
    } catch (error: unknown) {
      if (!this.ready()) this.problem = errorMessage(error)
      throw error
    }
  }

  private ready(): boolean {
    return this.served !== undefined && this.everInjected
  }

  private async reconcileSecret(): Promise<CertificateState> {
    const { secrets, namespace, secretName: name, log } = this.options
    for (let attempt = 1; ; attempt++) {
      const existing = await secrets.read(namespace, name)
      const plan = planCertificates(existing === undefined ? undefined : stateFromSecretData(existing.data), {
        now: this.options.now(),
        dnsNames: this.options.dnsNames,
        ...(this.options.ipAddresses === undefined ? {} : { ipAddresses: this.options.ipAddresses }),
        servingLookaheadMs: this.options.servingLookaheadMs,
        caLookaheadMs: this.options.caLookaheadMs,
        propagationMs: this.options.propagationMs,
        confirmedBundle: this.confirmedBundle,
        caCommonName: this.options.caCommonName,
        ...(this.options.servingValidityDays !== undefined && { servingValidityDays: this.options.servingValidityDays }),
        ...(this.options.caValidityDays !== undefined && { caValidityDays: this.options.caValidityDays }),
      })
      if (plan.steps.length === 0) return plan.state
      try {
        await (existing === undefined ? secrets.create(this.newSecret(plan.state)) : secrets.replace(this.updatedSecret(existing, plan.state)))
      } catch (error: unknown) {
        if (!(error instanceof ConflictError) || attempt >= SECRET_ATTEMPTS) throw error
        log.info({ secret: this.secretRef(), attempt }, 'the Secret was written by another replica first; reading it again')
        continue
      }
      for (const step of plan.steps) this.record(step)
      return plan.state
    }
  }

  private serveFrom(state: CertificateState): void {
    if (state.certPem === this.served) return
    this.options.serve({ certPem: state.certPem, keyPem: state.keyPem })
    this.served = state.certPem
  }

  private async injectBundle(state: CertificateState): Promise<void> {
    const { webhookConfigurations, webhookConfigurationName: name, metrics, log } = this.options
    const bundle = caBundleOf(state)
    const results = await injectCaBundle(webhookConfigurations, name, bundle)
    for (const result of results) {
      if (!result.found) {
        this.injected.delete(result.kind)
        continue
      }
      const kind = WEBHOOK_KIND_NAMES[result.kind]
      if (result.changed.length > 0) {
        metrics.caBundleInjections.inc({ configuration: result.kind })
        if (this.injected.get(result.kind) === bundle) {
          metrics.caBundleDriftRepairs.inc({ configuration: result.kind })
          log.warn({ kind, name, webhooks: result.changed }, 'caBundle drift repaired: it had been changed since we set it')
        } else {
          log.info({ kind, name, webhooks: result.changed, cas: state.previousCaPem === undefined ? 1 : 2 }, 'caBundle injected')
        }
      }
      this.injected.set(result.kind, bundle)
    }
    if (results.some((result) => result.found)) {
      this.confirmedBundle = bundle
      this.everInjected = true
    } else {
      this.confirmedBundle = undefined
      const kinds = Object.values(WEBHOOK_KIND_NAMES).join(' or ')
      this.problem = `no ${kinds} named ${name} to inject the CA into`
      if (!this.ready()) log.warn({ name }, `certificate bootstrap: ${this.problem} yet`)
    }
  }

  private record(step: PlanStep): void {
    const { metrics, log } = this.options
    const fields = { secret: this.secretRef(), reason: step.reason }
    switch (step.kind) {
      case 'created':
        log.info(fields, 'certificate bootstrap: new CA and serving certificate stored in the Secret')
        return
      case 'serving-rotated':
        metrics.certificateRotations.inc({ certificate: 'serving' })
        log.info(fields, 'serving certificate rotated')
        return
      case 'ca-rollover-started':
        metrics.certificateRotations.inc({ certificate: 'ca' })
        log.info(fields, 'CA rollover started: a new CA joins the caBundle; the serving certificate switches to it once injected')
        return
      case 'serving-switched':
        metrics.certificateRotations.inc({ certificate: 'serving' })
        log.info(fields, 'CA rollover: serving certificate reissued by the new CA')
        return
      case 'ca-rollover-finished':
        log.info(fields, 'CA rollover finished: the previous CA leaves the caBundle')
        return
    }
  }

  private newSecret(state: CertificateState): SecretObject {
    return {
      metadata: { name: this.options.secretName, namespace: this.options.namespace, labels: { 'app.kubernetes.io/managed-by': 'nlb-guard' } },
      // kubernetes.io/tls makes tools (kubectl describe, cert-manager's cainjector) read tls.crt and
      // tls.key; other keys are allowed next to them.
      type: 'kubernetes.io/tls',
      data: secretDataFromState(state),
    }
  }

  private updatedSecret(existing: SecretObject, state: CertificateState): SecretObject {
    // The whole object read, resourceVersion included, goes back: a replace that raced another
    // writer fails with 409 instead of overwriting it, and fields we do not own are kept.
    return { ...existing, data: secretDataFromState(state, existing.data) }
  }

  private secretRef(): string {
    return `${this.options.namespace}/${this.options.secretName}`
  }
}

