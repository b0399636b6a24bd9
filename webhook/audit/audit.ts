import { isRecord } from '../../lib/record.js'
import type { Config } from '../config.js'
import { objectName, Pod, Service } from '../k8s/objects.js'
import type { Decision } from '../rules/decision.js'
import { NO_CHANGE } from '../rules/decision.js'
import { mutatePod } from '../rules/pod.js'
import { ServiceIndex } from '../rules/service-index.js'
import type { KubeVersion } from '../rules/version.js'
import { firstIssue } from '../admission/handler.js'
import type { ClusterInventory } from '../cluster/inventory.js'
import type { Finding, ObjectId, Where } from '../offline/findings.js'
import { decisionFindings, judgeService } from '../offline/judge.js'

/**
 * `nlb-guard audit`: the objects of a live cluster that the rules would change or deny, judged by
 * the same rules as admission. An admission webhook never sees what was created before it was
 * registered (or while it was down, with failurePolicy Ignore): this finds those.
 *
 * - Each Service, as if created now: what the Service rule would change or deny, and a
 *   mixed-protocol Service whose load balancer would never be built.
 * - Each running pod, as the Pod rule would see it at creation against the stored Services: a pod
 *   the rule would give the health-check sidecar does not have it. Reported once per workload
 *   (Deployment, StatefulSet, DaemonSet, CronJob, ...), since restarting it is the fix.
 *
 * Namespaces the webhook skips (`excludedNamespaces`) are skipped here too.
 */

export interface AuditOptions {
  readonly version: KubeVersion
  readonly config: Pick<Config, 'mixedProtocolLBService' | 'unbuildableMixedProtocol' | 'sidecar' | 'excludedNamespaces'>
}

const CLUSTER: Where = { file: 'cluster' }

export function auditCluster(inventory: ClusterInventory, options: AuditOptions): Finding[] {
  const excluded = new Set(options.config.excludedNamespaces)
  const findings: Finding[] = []
  const index = new ServiceIndex()

  for (const raw of inventory.services) {
    const id = idOf(raw, 'v1', 'Service')
    if (excluded.has(id.namespace ?? '')) continue
    const service = Service.safeParse(raw)
    if (!service.success) {
      findings.push({ where: CLUSTER, object: id, rule: null, action: 'error', message: `not a valid v1 Service: ${firstIssue(service.error)}` })
      continue
    }
    // The admission cache holds Services as stored: pods are matched against these, not corrected copies.
    index.add(id.namespace ?? 'default', service.data)
    findings.push(...judgeService(service.data, CLUSTER, id, options, 'Recreate it as one Service per protocol (nlb-guard fix --split writes them).').findings)
  }

  const owners = ownerIndex(inventory.owners)
  const byWorkload = new Map<string, { owner: ObjectId; pods: string[]; decision: Decision }>()
  for (const raw of inventory.pods) {
    const id = idOf(raw, 'v1', 'Pod')
    if (excluded.has(id.namespace ?? '') || isFinished(raw)) continue
    const pod = Pod.safeParse(raw)
    if (!pod.success) {
      findings.push({ where: CLUSTER, object: id, rule: null, action: 'error', message: `not a valid v1 Pod: ${firstIssue(pod.error)}` })
      continue
    }
    const namespace = id.namespace ?? 'default'
    const decision = mutatePod({
      pod: pod.data,
      basePath: '',
      subject: `Pod ${objectName({ name: id.name, namespace })}`,
      services: index.candidates(namespace, pod.data.metadata?.labels),
      version: options.version,
      sidecar: options.config.sidecar,
    })
    if (decision === NO_CHANGE) continue
    const owner = ownerOf(raw, id, owners)
    const key = `${owner.kind}\u0000${owner.namespace ?? ''}\u0000${owner.name}`
    const group = byWorkload.get(key) ?? { owner, pods: [], decision }
    group.pods.push(id.name)
    byWorkload.set(key, group)
  }
  for (const { owner, pods, decision } of byWorkload.values()) {
    if (!decision.allowed || decision.changes.length === 0) {
      findings.push(...decisionFindings(CLUSTER, owner, decision, null))
      continue
    }
    const shown = pods.slice(0, 5).join(', ') + (pods.length > 5 ? ` and ${pods.length - 5} more` : '')
    for (const change of decision.changes) {
      findings.push({
        where: CLUSTER,
        object: owner,
        rule: change.rule,
        action: 'missing-sidecar',
        message:
          `${pods.length} running pod(s) (${shown}) lack what the Pod rule would have added at creation: ${change.message} ` +
          `${restartAdvice(owner)}`,
      })
    }
    findings.push(...decision.hints.map((message): Finding => ({ where: CLUSTER, object: owner, rule: null, action: 'hint', message })))
  }
  return findings
}

function idOf(raw: unknown, apiVersion: string, kind: string): ObjectId {
  const metadata = isRecord(raw) && isRecord(raw['metadata']) ? raw['metadata'] : {}
  const text = (key: string): string | undefined => (typeof metadata[key] === 'string' ? metadata[key] : undefined)
  return { apiVersion, kind, namespace: text('namespace'), name: text('name') ?? '<unnamed>' }
}

/** A pod that is going away or has run to completion serves no traffic. */
function isFinished(raw: unknown): boolean {
  const metadata = isRecord(raw) && isRecord(raw['metadata']) ? raw['metadata'] : {}
  const phase = isRecord(raw) && isRecord(raw['status']) ? raw['status']['phase'] : undefined
  return metadata['deletionTimestamp'] != null || phase === 'Succeeded' || phase === 'Failed'
}

interface OwnerReference {
  readonly kind: string
  readonly name: string
}

function controllerOf(metadata: unknown): OwnerReference | undefined {
  const references = isRecord(metadata) && Array.isArray(metadata['ownerReferences']) ? metadata['ownerReferences'] : []
  const controller = references.find((r: unknown) => isRecord(r) && r['controller'] === true) as Record<string, unknown> | undefined
  return controller !== undefined && typeof controller['kind'] === 'string' && typeof controller['name'] === 'string'
    ? { kind: controller['kind'], name: controller['name'] }
    : undefined
}

/** ReplicaSets and Jobs by namespace/name, to their own controller (a Deployment, a CronJob). */
function ownerIndex(owners: ClusterInventory['owners']): Map<string, OwnerReference | undefined> {
  const index = new Map<string, OwnerReference | undefined>()
  for (const { kind, metadata } of owners) {
    if (!isRecord(metadata)) continue
    index.set(`${kind}\u0000${String(metadata['namespace'])}\u0000${String(metadata['name'])}`, controllerOf(metadata))
  }
  return index
}

/** The workload to restart for this pod: its controller, and that controller's controller (Deployment, CronJob). */
function ownerOf(raw: unknown, id: ObjectId, owners: Map<string, OwnerReference | undefined>): ObjectId {
  const direct = controllerOf(isRecord(raw) ? raw['metadata'] : undefined)
  if (direct === undefined) return id
  const above = owners.get(`${direct.kind}\u0000${id.namespace ?? ''}\u0000${direct.name}`)
  const owner = above ?? direct
  return { kind: owner.kind, namespace: id.namespace, name: owner.name }
}

function restartAdvice(owner: ObjectId): string {
  const namespace = owner.namespace === undefined ? '' : ` -n ${owner.namespace}`
  switch (owner.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
      return `With nlb-guard registered, restart them: kubectl${namespace} rollout restart ${owner.kind.toLowerCase()}/${owner.name}`
    case 'Pod':
      return 'With nlb-guard registered, recreate the pod.'
    default:
      return `With nlb-guard registered, delete the pods so the ${owner.kind} recreates them.`
  }
}
