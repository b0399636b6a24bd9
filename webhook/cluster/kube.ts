import type { KubeConfig } from '@kubernetes/client-node'
import { VersionApi } from '@kubernetes/client-node'

export function fetchGitVersion(kubeConfig: KubeConfig): () => Promise<string> {
  const api = kubeConfig.makeApiClient(VersionApi)
  return async () => (await api.getCode()).gitVersion
}
