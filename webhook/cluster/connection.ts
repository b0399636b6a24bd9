/**
 * Everything that talks to the kube-apiserver, in one module that `serve` imports only when it has
 * a cluster: @kubernetes/client-node alone costs about 88 MB resident (2,700 generated modules),
 * more than the whole webhook without it.
 */
export { kubeSecretClient, kubeWebhookConfigurationClient, loadKubeConfig } from '../../certs/kube-client.js'
export { dryRunMixedProtocolService, fetchGitVersion } from './kube.js'
export { startServiceCache } from './services.js'
export { kubeEventSink, kubeReplicaSetReader } from './events.js'
export { startWarnNamespaces } from './namespaces.js'

export type ClusterConnection = typeof import('./connection.js')
