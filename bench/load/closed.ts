import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/*
 * Closed-loop load (each connection sends its next request when the previous answer arrives):
 * throughput, the 2 MiB UPDATE's latency, the memory phase and the soak.
 *
 * wrk (Debian's `wrk`) is the tool when it is installed: C and OpenSSL, so one client core
 * saturates one server core even for the floor, and its latency histogram resolves microseconds.
 * autocannon is the fallback, so the bench still runs where wrk is missing: a Node client that
 * spends more CPU per request than wrk (it may become the bottleneck and compress the ratios),
 * and that records latency in whole milliseconds.
 */

export interface ClosedLoop {
  readonly port: number
  readonly bodyFiles: readonly string[]
  readonly connections: number
  readonly seconds: number
  /** False: `Connection: close`, a new TLS connection (full handshake) per request. */
  readonly keepAlive: boolean
  /** CPU the load generator is pinned to. */
  readonly cpu: number
}

export interface ClosedLoopResult {
  readonly requests: number
  readonly seconds: number
  readonly rps: number
  /** Connection, read, write and timeout errors, and answers other than 2xx. */
  readonly errors: number
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
}

export interface LoadGenerator {
  readonly name: string
  /** Smallest latency step the tool records. */
  readonly resolutionMs: number
  run(load: ClosedLoop): Promise<ClosedLoopResult>
}

const WRK_SCRIPT = `
-- Written by bench/load/closed.ts. Bodies come from BENCH_BODIES (comma-separated files).
local files = {}
for path in string.gmatch(os.getenv("BENCH_BODIES"), "[^,]+") do table.insert(files, path) end
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end
wrk.method = "POST"
wrk.path = "/mutate"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_CLOSE") == "1" then wrk.headers["Connection"] = "close" end
if #files == 1 then
  wrk.body = slurp(files[1])
else
  -- Several bodies: prebuilt requests, taken in turn (a request() function makes wrk call Lua per
  -- request). Built in init(): wrk.host, which wrk.format needs for the Host header, is set by then.
  local prebuilt = {}
  local turn = 0
  init = function()
    for _, path in ipairs(files) do table.insert(prebuilt, wrk.format(nil, nil, nil, slurp(path))) end
  end
  request = function()
    turn = turn % #prebuilt + 1
    return prebuilt[turn]
  end
end
done = function(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"errors":%d,"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`

/** Load generators running now, for an interrupted benchmark to end them. */
export const loadProcesses = new Set<ChildProcess>()

/** Runs `command` to completion, pinned to `cpu`; rejects with its output when it fails. */
export function runPinned(cpu: number, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', String(cpu), command, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    loadProcesses.add(child)
    child.on('exit', () => loadProcesses.delete(child))
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(stdout)
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${(stderr || stdout).trim().slice(-2000)}`))
    })
  })
}

/** The JSON object a child printed on a line starting with `prefix`. */
export function jsonLine<T>(output: string, prefix = ''): T {
  const line = output.split('\n').find((l) => l.startsWith(prefix) && l.slice(prefix.length).trimStart().startsWith('{'))
  if (line === undefined) throw new Error(`no JSON result in: ${output.slice(-1000)}`)
  return JSON.parse(line.slice(prefix.length)) as T
}

export async function wrkGenerator(workDir: string, version: string): Promise<LoadGenerator> {
  const script = join(workDir, 'bench.lua')
  await writeFile(script, WRK_SCRIPT)
  return {
    name: version,
    resolutionMs: 0.001,
    async run(load) {
      const output = await runPinned(
        load.cpu,
        'wrk',
        ['-t1', `-c${load.connections}`, `-d${Math.max(1, Math.round(load.seconds))}s`, '--timeout', '10s', '-s', script, `https://127.0.0.1:${load.port}/mutate`],
        { BENCH_BODIES: load.bodyFiles.join(','), BENCH_CLOSE: load.keepAlive ? '0' : '1' },
      )
      const r = jsonLine<{ requests: number; durationUs: number; errors: number; latencyUs: Record<'p50' | 'p90' | 'p99' | 'max', number> }>(output, 'BENCH_JSON ')
      const secs = r.durationUs / 1e6
      const ms = (us: number) => us / 1000
      return {
        requests: r.requests,
        seconds: secs,
        rps: r.requests / secs,
        errors: r.errors,
        latencyMs: { p50: ms(r.latencyUs.p50), p90: ms(r.latencyUs.p90), p99: ms(r.latencyUs.p99), max: ms(r.latencyUs.max) },
      }
    },
  }
}

export function autocannonGenerator(): LoadGenerator {
  const child = fileURLToPath(new URL('./cannon.ts', import.meta.url))
  return {
    name: 'autocannon 8 (wrk not found)',
    resolutionMs: 1,
    async run(load) {
      return jsonLine<ClosedLoopResult>(await runPinned(load.cpu, process.execPath, [child, JSON.stringify(load)]))
    },
  }
}

/** wrk when it is on PATH, else autocannon. */
export async function loadGenerator(workDir: string): Promise<LoadGenerator> {
  try {
    const banner = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
      child.on('error', reject)
      child.on('close', () => resolve(out))
    })
    const version = /^wrk\s+(\S+)/.exec(banner)?.[1] ?? 'unknown'
    return await wrkGenerator(workDir, `wrk ${version}`)
  } catch {
    return autocannonGenerator()
  }
}
