import type { KubeConfig, V1Service } from '@kubernetes/client-node'
import { ApiException, CoreV1Api, VersionApi } from '@kubernetes/client-node'
import { z } from 'zod'
import { errorMessage } from '../../lib/errors.js'
import { bounded } from '../text/bounded.js'
import { probeService, type ProbeAnswer } from './mixed-protocol.js'

export function fetchGitVersion(kubeConfig: KubeConfig): () => Promise<string> {
  const api = kubeConfig.makeApiClient(VersionApi)
  return async () => (await api.getCode()).gitVersion
}

// The apiserver answers every refusal with a metav1.Status; client-node hands its body over as text.
const ApiStatus = z.looseObject({ code: z.number().optional(), reason: z.string().optional(), message: z.string().optional() })

/**
 * The mixed-protocol probe's request: a server-side dry-run (dryRun=All: admission and validation
 * run, nothing is stored) create of {@link probeService} in `namespace`. Needs `create` on Services
 * there (manifests/base/rbac.yaml); never throws.
 */
export function dryRunMixedProtocolService(kubeConfig: KubeConfig, namespace: string, timeoutMs: number): () => Promise<ProbeAnswer> {
  const api = kubeConfig.makeApiClient(CoreV1Api)
  return async () => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs)
      timer.unref()
    })
    try {
      await Promise.race([api.createNamespacedService({ namespace, body: probeService(namespace) as V1Service, dryRun: 'All' }), timeout])
      return { kind: 'accepted' }
    } catch (error: unknown) {
      return probeFailure(error)
    } finally {
      clearTimeout(timer)
    }
  }
}

function probeFailure(error: unknown): ProbeAnswer {
  if (!(error instanceof ApiException)) {
    // fetch reports a refused connection or a TLS failure as "fetch failed" with the reason in `cause`.
    const cause = error instanceof Error && error.cause !== undefined ? `: ${errorMessage(error.cause)}` : ''
    return { kind: 'failed', message: `${errorMessage(error)}${cause}` }
  }
  // ApiException's own message carries the response headers: keep to the Status, or the bare code.
  const status = apiStatus(error.body)
  return { kind: 'status', code: error.code, reason: status.reason, message: status.message ?? `HTTP ${error.code}` }
}

function apiStatus(body: unknown): { reason?: string | undefined; message?: string | undefined } {
  if (typeof body !== 'string') return {}
  try {
    const parsed = ApiStatus.safeParse(JSON.parse(body))
    return parsed.success ? parsed.data : {}
  } catch {
    // Not JSON: a proxy's error page, say. Bounded, it goes to the log.
    return { message: bounded(body, 300) }
  }
}
