import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments, stringify } from 'yaml'
import { certsCommand } from '../../certs/command.js'
import { freePort, ROOT, spawnCli, waitFor } from '../fixtures/cli.js'
import type { ControlPlane } from './harness.js'

/** A running `nlb-guard serve` process for the end-to-end suite. */
export interface NlbGuard {
  readonly port: number
  readonly metricsPort: number
  /** PEM of the CA that signed its serving certificate (the webhook configurations' caBundle). */
  readonly ca: string
  readonly child: ChildProcess
  /** Everything it logged so far (JSON lines). */
  log(): string
  /** The parsed `admission` log lines. */
  admissions(): Array<Record<string, unknown>>
  stop(): Promise<void>
}

const quiet = { stdin: process.stdin, stdout: { write: () => true }, stderr: { write: () => true } }

export function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject)
  })
}

/** Starts `serve` from source with a CA and serving certificate for 127.0.0.1, and waits until ready. */
export async function startNlbGuard(
  args: readonly string[],
  options: {
    waitReady?: boolean
    tlsFiles?: boolean
    /** How long to wait for readiness (default 60 s; a loaded machine may need more). */
    readyTimeoutMs?: number
    /** Runs once the port and CA are known, before nlb-guard starts: to register webhooks that call it from its first request on. */
    beforeStart?: (guard: Pick<NlbGuard, 'port' | 'ca'>) => Promise<void>
  } = {},
): Promise<NlbGuard> {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-e2e-'))
  const code = await certsCommand(['generate', '--service', 'nlb-guard', '--namespace', 'nlb-guard-system', '--out', dir, '--ip', '127.0.0.1'], quiet)
  if (code !== 0) throw new Error('certs generate failed')
  const ca = await readFile(join(dir, 'ca.crt'), 'utf8')
  const [port, metricsPort] = [await freePort(), await freePort()]
  await options.beforeStart?.({ port, ca })
  const child = spawnCli([
    'serve',
    ...(options.tlsFiles === false ? [] : ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')]),
    '--address', '127.0.0.1',
    '--port', String(port),
    '--metrics-port', String(metricsPort),
    '--shutdown-delay', '0',
    ...args,
  ])
  let log = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
  child.stdout?.resume()
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(options.waitReady === false ? 'nlb-guard listening' : 'nlb-guard readiness', async () => {
      if (child.exitCode !== null) throw new Error(`nlb-guard exited: ${log}`)
      const status = await httpStatus(metricsPort, '/readyz')
      return options.waitReady === false ? status > 0 : status === 200
    }, options.readyTimeoutMs ?? 60_000)
  } catch (error) {
    await stop()
    throw new Error(`nlb-guard did not become ready: ${(error as Error).message}\n${log.slice(-3000)}`, { cause: error })
  }
  return {
    port,
    metricsPort,
    ca,
    child,
    log: () => log,
    admissions: () =>
      log
        .split('\n')
        .filter((line) => line.includes('"msg":"admission"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop,
  }
}

type Webhook = Record<string, unknown> & { clientConfig?: Record<string, unknown> }
type Manifest = Record<string, unknown> & { kind?: string; metadata?: { name?: string }; webhooks?: Webhook[] }

/** The default overlay's manifests (rendered from charts/nlb-guard) as kustomize reads them. */
export async function renderManifests(cp: ControlPlane, dir = 'manifests/overlays/default'): Promise<Manifest[]> {
  const rendered = await cp.kubectl(['kustomize', join(ROOT, dir)])
  const documents = parseAllDocuments(rendered.stdout)
  if (!Array.isArray(documents)) return []
  return documents.map((d) => d.toJS() as Manifest).filter((m) => m != null)
}

/**
 * nlb-guard's webhook configurations from manifests/, pointed at a local server: a URL clientConfig
 * on 127.0.0.1 and the generated CA, as the issue asks (the apiserver cannot reach an in-cluster
 * Service here: there are no nodes).
 */
export function pointAt(manifests: readonly Manifest[], guard: Pick<NlbGuard, 'port' | 'ca'>, transform: (webhook: Webhook) => Webhook = (w) => w): Manifest[] {
  return manifests
    .filter((m) => m.kind === 'MutatingWebhookConfiguration' || m.kind === 'ValidatingWebhookConfiguration')
    .map((m) => ({
      ...m,
      metadata: { ...m.metadata, annotations: {} },
      webhooks: (m.webhooks ?? []).map((w) => {
        const service = w.clientConfig?.['service'] as { path?: string } | undefined
        return transform({ ...w, clientConfig: { url: `https://127.0.0.1:${guard.port}${service?.path ?? '/mutate'}`, caBundle: Buffer.from(guard.ca).toString('base64') } })
      }),
    }))
}

export function toYaml(objects: readonly unknown[]): string {
  // YAML, not JSON: kubectl reads a stream that starts with `{` as one JSON document.
  return objects.map((o) => stringify(o)).join('---\n')
}

/** The plain-HTTP /metrics text of a running nlb-guard (its metrics port). */
export function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}
