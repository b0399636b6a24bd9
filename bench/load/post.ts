import type { Agent } from 'node:https'
import { request } from 'node:https'

export interface Target {
  readonly port: number
  /** PEM of the CA that signed the server's certificate: clients verify, as the apiserver does. */
  readonly ca: Buffer
  readonly path?: string
}

export interface Answer {
  readonly status: number
  readonly body: string
  /** True when the request went out on a kept-alive connection. */
  readonly reusedSocket: boolean
}

/** POSTs one AdmissionReview and reads the whole answer. */
export function postReview(target: Target, agent: Agent | false, body: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port,
        path: target.path ?? '/mutate',
        method: 'POST',
        ca: target.ca,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reusedSocket: req.reusedSocket }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Percentiles of latencies in milliseconds (nearest-rank). */
export function percentiles(samples: readonly number[]): { p50: number; p90: number; p99: number; p999: number; max: number } {
  const sorted = Float64Array.from(samples).sort()
  const at = (p: number) => (sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN))
  return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN) }
}
