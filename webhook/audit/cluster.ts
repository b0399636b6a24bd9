/** The cluster calls of `audit`, loaded only when it runs (client-node is large). */
export { loadKubeConfig } from '../../certs/kube-client.js'
export { fetchGitVersion } from '../cluster/kube.js'
export { readInventory } from '../cluster/inventory.js'
