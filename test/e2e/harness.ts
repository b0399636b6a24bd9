// A real etcd + kube-apiserver for the end-to-end suite, started the way
// controller-runtime's envtest does, with only Node builtins.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface KubectlResult {
  code: number
  stdout: string
  stderr: string
}

export interface KubectlOptions {
  input?: string
  /** Resolve with a non-zero code instead of rejecting. */
  allowFail?: boolean
  timeoutMs?: number
  /** Another kubectl binary, e.g. the one built beside an old kube-apiserver ({@link ControlPlane.eraKubectl}). */
  bin?: string
}

export interface ControlPlaneOptions {
  /** Kubernetes version to run, e.g. '1.19.16' (built by build.sh); default: the newest. */
  version?: string
  /** Folder holding kube-apiserver and etcd; default: {@link assetsDir} of `version`. */
  assets?: string
  /** Extra kube-apiserver flags, appended last so they win over the defaults. */
  apiserverArgs?: string[]
  etcdArgs?: string[]
  /** Per component; default 60 s. */
  startTimeoutMs?: number
}

export interface ControlPlane {
  /** Path of an admin (system:masters) kubeconfig inside {@link dir}. */
  kubeconfig: string
  /** https://127.0.0.1:PORT */
  server: string
  /** Temp folder holding data, certs, logs; removed by stop(). */
  dir: string
  /** Bearer token of the admin user. */
  token: string
  /** The version kube-apiserver reports, e.g. { major: 1, minor: 19, patch: 16 }. */
  version: KubeVersion
  /** The folder of the binaries. */
  assets: string
  /**
   * kubectl of the apiserver's own release when build.sh builds one beside it (the old versions:
   * their kustomize and client-side validation are what users of those versions run), else undefined.
   */
  eraKubectl: string | undefined
  /** PEM of the apiserver's self-signed serving chain (trust it as CA). */
  ca: string
  /** Live pids (process-group leaders); undefined once stopped. */
  readonly pids: { etcd: number | undefined; apiserver: number | undefined }
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>
  /**
   * Stops and starts kube-apiserver on the same port and etcd data; `apiserverArgs`, when given,
   * replace the extra flags the control plane was started with (e.g. a feature gate switched).
   */
  restartApiserver(apiserverArgs?: string[]): Promise<void>
  /** Stops kube-apiserver only (etcd keeps the data), for outage tests. */
  stopApiserver(): Promise<void>
  /** Starts it again on the same port, certificate and data; waits until ready. */
  startApiserver(): Promise<void>
  /** Kills both processes and removes dir; safe to call more than once. */
  stop(): Promise<void>
}

export interface KubeVersion {
  major: number
  minor: number
  patch: number
  /** As the server reports it, e.g. 'v1.19.16'. */
  gitVersion: string
}

const buildScript = fileURLToPath(new URL('./assets/build.sh', import.meta.url))

const assetsPromises = new Map<string, Promise<string>>()

/**
 * The folder with kube-apiserver and etcd of `version` (default: the newest build.sh knows):
 * for the newest, KUBEBUILDER_ASSETS when set; else whatever build.sh builds (cached) and prints
 * as its last line. `npm test` builds every version first (the pretest script), so a test only
 * waits here on a machine where someone deleted the cache since.
 * Rejects when they cannot be had, so the e2e suite fails rather than skips.
 */
export function assetsDir(version?: string): Promise<string> {
  const key = version ?? ''
  let promise = assetsPromises.get(key)
  if (promise === undefined) {
    promise = locateAssets(version)
    assetsPromises.set(key, promise)
    // A failed build should be retried by the next caller, not cached.
    promise.catch(() => assetsPromises.delete(key))
  }
  return promise
}

async function locateAssets(version: string | undefined): Promise<string> {
  const fromEnv = version === undefined ? process.env['KUBEBUILDER_ASSETS'] : undefined
  const dir = fromEnv !== undefined && fromEnv !== '' ? fromEnv : await runBuildScript(version)
  for (const bin of ['kube-apiserver', 'etcd']) {
    if (!existsSync(join(dir, bin))) {
      throw new Error(
        `${bin} not found in ${dir}` +
          (fromEnv ? ' (from KUBEBUILDER_ASSETS)' : ' (from test/e2e/assets/build.sh)'),
      )
    }
  }
  return dir
}

/** What `kube-apiserver --version` says, e.g. "Kubernetes v1.19.16". */
export function binaryVersion(assets: string): KubeVersion {
  const out = execFileSync(join(assets, 'kube-apiserver'), ['--version'], { encoding: 'utf8' }).trim()
  const match = /^Kubernetes (v(\d+)\.(\d+)\.(\d+)\S*)$/.exec(out)
  if (!match) throw new Error(`${assets}/kube-apiserver --version printed ${JSON.stringify(out)}`)
  return { gitVersion: match[1] ?? '', major: Number(match[2]), minor: Number(match[3]), patch: Number(match[4]) }
}

/**
 * Flags whose need depends on the release: 1.19 opens an unauthenticated port 8080 unless told not
 * to (a second control plane on the machine then dies with "address already in use"); the flag is
 * gone from 1.24 on.
 */
export function versionFlags(version: KubeVersion): string[] {
  return version.major === 1 && version.minor < 20 ? ['--insecure-port=0'] : []
}

function runBuildScript(version: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = version === undefined ? [buildScript] : [buildScript, version]
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderrTail = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      // A first build runs for tens of minutes: show progress as it happens.
      process.stderr.write(d)
      stderrTail = (stderrTail + d).slice(-4000)
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const last = stdout.trimEnd().split('\n').at(-1)?.trim() ?? ''
      if (code === 0 && last !== '') resolve(last)
      else
        reject(
          new Error(
            `${buildScript} failed (${signal ?? `exit ${code}`}); last output:\n${stderrTail}`,
          ),
        )
    })
  })
}

/** Starts etcd and kube-apiserver on free loopback ports in a fresh temp dir. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const assets = opts.assets ?? (await assetsDir(opts.version))
  const version = binaryVersion(assets)
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000
  const dir = mkdtempSync(join(tmpdir(), 'nlb-guard-e2e-'))
  const cp = new Running(dir, assets, version)
  try {
    const [etcdClient, etcdPeer, securePort] = (await freePorts(3)) as [number, number, number]
    const etcdUrl = `http://127.0.0.1:${etcdClient}`
    const peerUrl = `http://127.0.0.1:${etcdPeer}`
    const server = `https://127.0.0.1:${securePort}`

    const token = randomBytes(24).toString('hex')
    // Group system:masters bypasses RBAC, so the admin needs no bindings.
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, {
      mode: 0o600,
    })
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    })
    writeFileSync(join(dir, 'sa.pub'), sa.publicKey)
    writeFileSync(join(dir, 'sa.key'), sa.privateKey, { mode: 0o600 })
    mkdirSync(join(dir, 'pki'))

    cp.startWatchdog()

    cp.etcdArgs = [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      '--name=e2e',
      `--initial-cluster=e2e=${peerUrl}`,
      // Test data is disposable; fsync makes every write wait on the disk.
      '--unsafe-no-fsync=true',
      ...(opts.etcdArgs ?? []),
    ]
    cp.etcd = cp.spawnComponent('etcd', join(assets, 'etcd'), cp.etcdArgs)
    await waitFor(
      'etcd',
      cp.etcd,
      join(dir, 'etcd.log'),
      startTimeoutMs,
      async () => (await get(`${etcdUrl}/health`)).body.includes('"health":"true"'),
    )

    cp.apiserverBin = join(assets, 'kube-apiserver')
    cp.apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${join(dir, 'pki')}`,
      `--secure-port=${securePort}`,
      '--bind-address=127.0.0.1',
      // Without it the apiserver looks for a default route to pick its
      // address and dies on machines that have none.
      '--advertise-address=127.0.0.1',
      // The default reconciler refuses a loopback endpoint; nothing here
      // reaches the apiserver through the kubernetes Service anyway.
      '--endpoint-reconciler-type=none',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      // No controller-manager runs to create default ServiceAccounts, which
      // this plugin would otherwise wait for on every Pod.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      ...versionFlags(version),
    ]
    cp.extraApiserverArgs = opts.apiserverArgs ?? []
    cp.server = server
    cp.token = token
    cp.startTimeoutMs = startTimeoutMs
    await cp.startApiserver(startTimeoutMs)
    return cp.handle()
  } catch (err) {
    await cp.stop()
    throw err
  }
}

/** Everything that must be undone, for stop() and for the exit handlers. */
class Running {
  etcd: ChildProcess | undefined
  apiserver: ChildProcess | undefined
  watchdog: ChildProcess | undefined
  etcdArgs: string[] = []
  apiserverBin = ''
  apiserverArgs: string[] = []
  extraApiserverArgs: string[] = []
  server = ''
  token = ''
  ca = ''
  startTimeoutMs = 60_000
  readonly dir: string
  readonly kubeconfig: string
  private stopping: Promise<void> | undefined

  constructor(
    dir: string,
    readonly assets: string,
    readonly version: KubeVersion,
  ) {
    this.dir = dir
    this.kubeconfig = join(dir, 'kubeconfig')
    live.add(this)
    installExitHandlers()
  }

  spawnComponent(name: string, bin: string, args: string[]): ChildProcess {
    // Straight into a file: the logs survive however the test process ends,
    // and no pipe can fill up and block the child.
    const log = openSync(join(this.dir, `${name}.log`), 'a')
    try {
      // Own process group, so the whole tree can be killed with one signal
      // and a Ctrl-C aimed at the test does not race our own shutdown.
      const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log] })
      child.on('error', () => {})
      // Without a pid the spawn failed (ENOENT, EACCES) and nothing will run.
      if (child.pid === undefined) throw new Error(`cannot start ${bin}`)
      this.writePids(child)
      return child
    } finally {
      closeSync(log)
    }
  }

  private writePids(extra?: ChildProcess): void {
    const pids = [this.etcd?.pid, this.apiserver?.pid, extra?.pid].filter(
      (p): p is number => p !== undefined,
    )
    writeFileSync(join(this.dir, 'pids'), pids.join('\n') + '\n')
  }

  /**
   * SIGKILL of the test process (tap's last resort on a timeout) runs no
   * handler at all; a detached shell polling our pid cleans up after it.
   */
  startWatchdog(): void {
    const script =
      'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
      'for p in $(cat "$2/pids" 2>/dev/null); do kill -KILL "-$p" 2>/dev/null; done; ' +
      'rm -rf "$2"'
    this.watchdog = spawn(
      '/bin/sh',
      ['-c', script, 'nlb-guard-e2e-watchdog', String(process.pid), this.dir],
      { detached: true, stdio: 'ignore' },
    )
    this.watchdog.on('error', () => {})
    this.watchdog.unref()
  }

  async startApiserver(timeoutMs: number): Promise<void> {
    const log = join(this.dir, 'kube-apiserver.log')
    // The extra flags come last so they win over the defaults.
    const args = [...this.apiserverArgs, ...this.extraApiserverArgs]
    const child = this.spawnComponent('kube-apiserver', this.apiserverBin, args)
    this.apiserver = child
    const caFile = join(this.dir, 'pki', 'apiserver.crt')
    await waitFor('kube-apiserver', child, log, timeoutMs, async () => {
      // It writes a self-signed chain (leaf, then CA) here before serving.
      if (!existsSync(caFile)) return false
      const ca = readFileSync(caFile, 'utf8')
      const res = await get(`${this.server}/readyz`, { ca, token: this.token })
      if (res.status !== 200) return false
      this.ca = ca
      return true
    })
    this.writeKubeconfig()
    await waitFor('kube-apiserver', child, log, timeoutMs, async () => {
      const res = await get(`${this.server}/api/v1/namespaces/default`, {
        ca: this.ca,
        token: this.token,
      })
      return res.status === 200
    })
  }

  private writeKubeconfig(): void {
    const caData = Buffer.from(this.ca).toString('base64')
    // JSON is valid YAML, and kubectl and client-node both read it.
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'e2e', cluster: { server: this.server, 'certificate-authority-data': caData } },
      ],
      users: [{ name: 'admin', user: { token: this.token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'admin' } }],
      'current-context': 'e2e',
      preferences: {},
    }
    writeFileSync(this.kubeconfig, JSON.stringify(config, null, 2), { mode: 0o600 })
  }

  async restartApiserver(apiserverArgs?: string[]): Promise<void> {
    await this.stopApiserver()
    if (apiserverArgs !== undefined) this.extraApiserverArgs = apiserverArgs
    await this.startApiserver(this.startTimeoutMs)
  }

  async stopApiserver(): Promise<void> {
    if (this.apiserver) await terminate(this.apiserver)
    this.apiserver = undefined
  }

  kubectl(args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
    const fullArgs = [
      `--kubeconfig=${this.kubeconfig}`,
      // Discovery is cached per host:port; a port reused by a later control
      // plane must not see this one's cache.
      `--cache-dir=${join(this.dir, 'kube-cache')}`,
      ...args,
    ]
    return new Promise((resolve, reject) => {
      const child = spawn(opts.bin ?? 'kubectl', fullArgs, {
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
      })
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      child.on('error', reject)
      child.on('close', (code, signal) => {
        const result = { code: code ?? 128, stdout, stderr }
        if (result.code === 0 || opts.allowFail === true) resolve(result)
        else
          reject(
            new Error(
              `kubectl ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderr || stdout}`,
            ),
          )
      })
      child.stdin.on('error', () => {}) // kubectl may exit before reading it
      child.stdin.end(opts.input ?? '')
    })
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // apiserver first: it would otherwise log etcd errors while dying.
      if (this.apiserver) await terminate(this.apiserver)
      if (this.etcd) await terminate(this.etcd)
      if (this.watchdog?.pid !== undefined) killGroup(this.watchdog.pid, 'SIGKILL')
      rmSync(this.dir, { recursive: true, force: true })
      live.delete(this)
      uninstallExitHandlersIfIdle()
    })()
    return this.stopping
  }

  /** For exit and signal handlers: no awaiting possible there. */
  killSync(): void {
    for (const child of [this.apiserver, this.etcd]) {
      if (child?.pid !== undefined && isRunning(child)) killGroup(child.pid, 'SIGKILL')
    }
    // The watchdog stays alive: it removes what a process still writing
    // at this instant may recreate.
    try {
      rmSync(this.dir, { recursive: true, force: true })
    } catch {
      // best effort while the process is going away
    }
  }

  handle(): ControlPlane {
    const pid = (c: ChildProcess | undefined) =>
      c?.pid !== undefined && isRunning(c) ? c.pid : undefined
    const pids = () => ({ etcd: pid(this.etcd), apiserver: pid(this.apiserver) })
    return {
      kubeconfig: this.kubeconfig,
      server: this.server,
      dir: this.dir,
      token: this.token,
      ca: this.ca,
      version: this.version,
      assets: this.assets,
      eraKubectl: existsSync(join(this.assets, 'kubectl')) ? join(this.assets, 'kubectl') : undefined,
      get pids() {
        return pids()
      },
      kubectl: (args, opts) => this.kubectl(args, opts),
      restartApiserver: (args) => this.restartApiserver(args),
      stopApiserver: () => this.stopApiserver(),
      startApiserver: () => this.startApiserver(this.startTimeoutMs),
      stop: () => this.stop(),
    }
  }
}

const live = new Set<Running>()
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'] as const
let handlersInstalled = false

function onExit(): void {
  for (const cp of live) cp.killSync()
}

function onSignal(signal: NodeJS.Signals): void {
  onExit()
  uninstallExitHandlers()
  // Prepended and now removed, so any other listener (tap's signal-exit)
  // still runs for this signal and decides how to die; alone, re-raise so
  // the default action ends the process as the signal intended.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function installExitHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', onExit)
  for (const s of signals) process.prependListener(s, onSignal)
}

function uninstallExitHandlers(): void {
  if (!handlersInstalled) return
  handlersInstalled = false
  process.off('exit', onExit)
  for (const s of signals) process.off(s, onSignal)
}

function uninstallExitHandlersIfIdle(): void {
  if (live.size === 0) uninstallExitHandlers()
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

/** SIGTERM the process group, SIGKILL it after a grace period, await exit. */
async function terminate(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.pid === undefined || !isRunning(child)) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  killGroup(child.pid, 'SIGTERM')
  const timer = setTimeout(() => {
    if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL')
  }, graceMs)
  await exited
  clearTimeout(timer)
  // Anything left in its group (none expected) must not outlive it.
  killGroup(child.pid, 'SIGKILL')
}

async function waitFor(
  name: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  ready: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastError = ''
  for (;;) {
    if (!isRunning(child)) {
      const how = child.signalCode ?? `exit code ${child.exitCode}`
      throw new Error(`${name} exited during startup (${how}); log tail:\n${tail(logFile)}`)
    }
    try {
      if (await ready()) return
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err)
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${name} not ready after ${timeoutMs} ms` +
          (lastError ? ` (last error: ${lastError})` : '') +
          `; log tail:\n${tail(logFile)}`,
      )
    }
    await new Promise((r) => setTimeout(r, 200))
  }
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

function get(
  url: string,
  auth?: { ca: string; token: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      timeout: 5_000,
      ...(auth ? { ca: auth.ca, headers: { authorization: `Bearer ${auth.token}` } } : {}),
    }
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${url}`)))
    req.on('error', reject)
    req.end()
  })
}

/** Distinct free loopback ports, held open together so none repeats. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer()
          s.on('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

/** Retries while the apiserver has not picked up a webhook configuration (or an informer lags). */
export async function eventually<T>(what: string, attempt: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await attempt()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
