import { KubeConfig, VersionApi } from '@kubernetes/client-node'

/**
 * The cluster connection: a kubeconfig file when given, otherwise client-node's defaults (in-cluster
 * service account, then $KUBECONFIG and ~/.kube/config).
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig()
  if (file === undefined) kubeConfig.loadFromDefault()
  else kubeConfig.loadFromFile(file)
  return kubeConfig
}

export function fetchGitVersion(kubeConfig: KubeConfig): () => Promise<string> {
  const api = kubeConfig.makeApiClient(VersionApi)
  return async () => (await api.getCode()).gitVersion
}
