import type { Service } from '../k8s/objects.js'
import { isLoadBalancer, portProtocol } from '../k8s/objects.js'

/**
 * The UDP LoadBalancer Services of a set of objects, indexed so that finding the Services that may
 * select one pod costs the pod's labels, not the number of Services: each Service is filed under
 * its namespace and the first entry of its selector, which every pod it selects carries.
 *
 * `candidates` returns a superset of the Services that select the pod (the Pod rule checks the
 * whole selector), in the order they were added, so the rule sees them as it would see them all.
 */
export class ServiceIndex {
  readonly #byNamespace = new Map<string, Map<string, Array<{ readonly order: number; readonly service: Service }>>>()
  #added = 0

  /** Keeps the Service only if it is a LoadBalancer with a UDP port and a non-empty selector. */
  add(namespace: string, service: Service): void {
    if (!isLoadBalancer(service) || !(service.spec?.ports ?? []).some((p) => portProtocol(p) === 'UDP')) return
    const first = Object.entries(service.spec?.selector ?? {})[0]
    if (first === undefined) return
    const byLabel = this.#byNamespace.get(namespace) ?? new Map()
    this.#byNamespace.set(namespace, byLabel)
    const key = labelKey(first[0], first[1])
    const list = byLabel.get(key) ?? []
    byLabel.set(key, list)
    list.push({ order: this.#added++, service })
  }

  candidates(namespace: string, labels: Readonly<Record<string, string>> | null | undefined): Service[] {
    const byLabel = this.#byNamespace.get(namespace)
    if (byLabel === undefined || labels == null) return []
    const found: Array<{ readonly order: number; readonly service: Service }> = []
    for (const [key, value] of Object.entries(labels)) for (const entry of byLabel.get(labelKey(key, value)) ?? []) found.push(entry)
    return found.sort((a, b) => a.order - b.order).map((f) => f.service)
  }
}

// A NUL cannot occur in a label key or value, so the pair is unambiguous.
const labelKey = (key: string, value: string): string => `${key}\u0000${value}`
