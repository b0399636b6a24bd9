// Kubernetes Events end to end on a real kube-apiserver: `kubectl describe replicaset` shows
// nlb-guard's Event for the pod it gave a sidecar (the pod's controlling owner, known by uid),
// `kubectl describe deployment` the one for a Deployment's pod (its ReplicaSet's owner), and
// `kubectl describe service` shows the Event of an UPDATE nlb-guard mutated. A Service's CREATE
// gets none: the mutating webhook sees it before it has a uid, so describe could not match it.
// Events still waiting at SIGTERM are sent before nlb-guard exits.
import t from 'tap'
import { eventually, startControlPlane, type ControlPlane } from './harness.js'
import { metricsText, pointAt, renderManifests, startNlbGuard, toYaml } from './nlb-guard.js'

t.setTimeout(15 * 60_000)

const NS = 'shop'
const IP_TARGETS = { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' }
const template = {
  metadata: { labels: { app: 'sip' } },
  spec: { containers: [{ name: 'sip', image: 'example/sip', ports: [{ name: 'sip-udp', containerPort: 5060, protocol: 'UDP' }] }] },
}

t.test('Events on a real kube-apiserver', async (t) => {
  const cp: ControlPlane = await startControlPlane()
  t.teardown(() => cp.stop())
  const manifests = await renderManifests(cp)
  const guard = await startNlbGuard(['--kubeconfig', cp.kubeconfig], { readyTimeoutMs: 180_000 })
  t.teardown(() => guard.stop())
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(pointAt(manifests, guard)) })
  await cp.kubectl(['create', 'namespace', NS])
  const json = (object: unknown) => ({ input: JSON.stringify(object) })

  await eventually('the UDP Service admitted', async () => {
    const r = await cp.kubectl(['apply', '-n', NS, '-f', '-'], { ...json({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'sip', annotations: IP_TARGETS }, spec: { type: 'LoadBalancer', selector: { app: 'sip' }, ports: [{ name: 'sip', port: 5060, protocol: 'UDP', targetPort: 'sip-udp' }] } }), allowFail: true })
    return r.code === 0 ? r : undefined
  })
  const replicaSet = { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'sip-7d9f' }, spec: { replicas: 1, selector: { matchLabels: { app: 'sip' } }, template } }
  await cp.kubectl(['apply', '-n', NS, '-f', '-'], json(replicaSet))
  const rsUid = (await cp.kubectl(['get', 'replicaset', 'sip-7d9f', '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim()
  t.match(rsUid, /^[0-9a-f-]{36}$/)

  // No controller-manager runs: the pod its ReplicaSet would create, made here with its ownerReference.
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'sip-7d9f-', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'sip-7d9f', uid: rsUid, controller: true, blockOwnerDeletion: true }], labels: { app: 'sip' } }, spec: template.spec }
  // The informer sees the Service through its watch: until then the pod is admitted without a sidecar.
  await eventually('a pod with the sidecar', async () => {
    const r = await cp.kubectl(['create', '-n', NS, '-o', 'json', '-f', '-'], json(pod))
    const created = JSON.parse(r.stdout) as { spec: { initContainers?: unknown[] } }
    return created.spec.initContainers?.length ? created : undefined
  })
  const rs = await eventually('the ReplicaSet shows the Event', async () => {
    const r = await cp.kubectl(['describe', 'replicaset', 'sip-7d9f', '-n', NS])
    return /nlb-guard/.test(r.stdout) ? r.stdout : undefined
  })
  t.match(rs, /Normal\s+Mutated\s+.*nlb-guard\s+Pod sip-7d9f-\*: .*sidecar/, '`kubectl describe replicaset` shows what nlb-guard did to its pod')

  // A second pod of the same ReplicaSet: the same Event, patched (count 2), not a second one.
  await cp.kubectl(['create', '-n', NS, '-f', '-'], json(pod))
  const rsEvents = await eventually('the Event counted twice', async () => {
    const r = await cp.kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.uid=${rsUid}`, '-o', 'json'])
    const items = (JSON.parse(r.stdout) as { items: Array<{ count?: number; source?: { component?: string } }> }).items.filter((e) => e.source?.component === 'nlb-guard')
    return items.some((e) => e.count === 2) ? items : undefined
  })
  t.equal(rsEvents.length, 1, 'one Event for the ReplicaSet, its count 2 (a JSON Patch accepted by the apiserver)')
  t.match((await cp.kubectl(['describe', 'replicaset', 'sip-7d9f', '-n', NS])).stdout, /\(x2 over [^)]*\)\s+nlb-guard/, 'describe shows it as x2')

  // A Deployment's pods: their ReplicaSet's Event goes up to the Deployment (what `kubectl describe
  // deployment` shows), through one GET of the ReplicaSet. The chain a deployment controller makes,
  // made here: the Deployment, its ReplicaSet (controller reference with its uid), the pod.
  const uidOf = async (kind: string, name: string) => (await cp.kubectl(['get', kind, name, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim()
  const web = { metadata: { labels: { app: 'sip', release: 'web' } }, spec: template.spec }
  await cp.kubectl(['apply', '-n', NS, '-f', '-'], json({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 1, selector: { matchLabels: web.metadata.labels }, template: web } }))
  const deploymentUid = await uidOf('deployment', 'web')
  const podOf = async (replicaSetName: string) => {
    const owner = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: deploymentUid, controller: true, blockOwnerDeletion: true }
    await cp.kubectl(['apply', '-n', NS, '-f', '-'], json({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: replicaSetName, ownerReferences: [owner] }, spec: { replicas: 1, selector: { matchLabels: web.metadata.labels }, template: web } }))
    const uid = await uidOf('replicaset', replicaSetName)
    const created = await cp.kubectl(['create', '-n', NS, '-o', 'json', '-f', '-'], json({ apiVersion: 'v1', kind: 'Pod', metadata: { generateName: `${replicaSetName}-`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: replicaSetName, uid, controller: true, blockOwnerDeletion: true }], labels: web.metadata.labels }, spec: web.spec }))
    t.ok((JSON.parse(created.stdout) as { spec: { initContainers?: unknown[] } }).spec.initContainers?.length, `${replicaSetName}'s pod got the sidecar`)
  }
  await podOf('web-5d8f')
  const described = await eventually('the Deployment shows the Event', async () => {
    const r = await cp.kubectl(['describe', 'deployment', 'web', '-n', NS])
    return /nlb-guard/.test(r.stdout) ? r.stdout : undefined
  })
  t.match(described, /Normal\s+Mutated\s+.*nlb-guard\s+Pod web-5d8f-\*: .*sidecar/, '`kubectl describe deployment` shows what nlb-guard did to its pod')
  t.notMatch((await cp.kubectl(['describe', 'replicaset', 'web-5d8f', '-n', NS])).stdout, /nlb-guard/, 'moved up, not repeated on the ReplicaSet')
  // A rollout: a second ReplicaSet of the same Deployment. Its pod's Event is the Deployment's one Event, patched.
  await podOf('web-7c4b')
  const webEvents = await eventually('the Deployment Event counted twice', async () => {
    const r = await cp.kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.uid=${deploymentUid}`, '-o', 'json'])
    const items = (JSON.parse(r.stdout) as { items: Array<{ count?: number; message?: string; involvedObject: { kind?: string; name?: string }; source?: { component?: string } }> }).items.filter((e) => e.source?.component === 'nlb-guard')
    return items.some((e) => e.count === 2) ? items : undefined
  })
  t.equal(webEvents.length, 1, 'one Event for the Deployment across its two ReplicaSets')
  t.match(webEvents[0], { involvedObject: { kind: 'Deployment', name: 'web' }, message: /^Pod web-7c4b-\*: / }, 'its message the latest pod')

  // UPDATE: a ClusterIP Service turned into a UDP LoadBalancer is annotated, and its Event shown.
  await cp.kubectl(['apply', '-n', NS, '-f', '-'], json({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'dns' }, spec: { selector: { app: 'dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } }))
  const patched = await cp.kubectl(['patch', 'service', 'dns', '-n', NS, '-p', '{"spec":{"type":"LoadBalancer"}}'])
  t.match(patched.stderr, /Warning: .*aws-load-balancer-type/, 'mutated on UPDATE')
  const service = await eventually('the Service shows the Event', async () => {
    const r = await cp.kubectl(['describe', 'service', 'dns', '-n', NS])
    return /nlb-guard/.test(r.stdout) ? r.stdout : undefined
  })
  t.match(service, /Normal\s+Mutated\s+.*nlb-guard\s+.*aws-load-balancer-type/, '`kubectl describe service` shows the mutation')
  // Events go out in order: by now the CREATE of sip would have had its Event too, had the mutating
  // webhook been given a uid (eventNoteFor uses one when a CREATE carries it): this checks it is not.
  t.notMatch((await cp.kubectl(['describe', 'service', 'sip', '-n', NS])).stdout, /nlb-guard/, 'no Event for a Service on CREATE (no uid yet)')

  const metrics = await metricsText(guard.metricsPort)
  t.match(metrics, /nlb_guard_events_total\{result="emitted",reason="Mutated"\} 5\b/, 'counted: the ReplicaSet twice (created, patched), the Deployment twice, the Service')
  // sip-7d9f read once (no owner: the Event stays), then cached; web-5d8f and web-7c4b read once each.
  t.match(metrics, /nlb_guard_event_owner_lookups_total\{result="fetched"\} 3\b/)
  t.match(metrics, /nlb_guard_event_owner_lookups_total\{result="cached"\} 1\b/)
  t.notMatch(metrics, /nlb_guard_event_owner_lookups_total\{result="failed"\}/)
  t.notMatch(metrics, /nlb_guard_events_total\{result="(failed|dropped)"/, 'none failed or dropped')

  // The chart's RBAC grants exactly create and patch on events, get on replicasets (nlb-guard ran as
  // admin above; the legacy e2e tests run it as its ServiceAccount).
  const rbac = manifests.filter((m) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(String(m.kind)))
  await cp.kubectl(['apply', '-f', '-'], { input: toYaml(rbac) })
  const as = ['auth', 'can-i', '--as=system:serviceaccount:nlb-guard-system:nlb-guard']
  const can = async (...args: string[]) => (await cp.kubectl([...as, ...args], { allowFail: true })).stdout.trim()
  t.equal(await can('create', 'events', '-n', NS), 'yes')
  t.equal(await can('patch', 'events', '-n', NS), 'yes')
  t.equal(await can('list', 'events', '-n', NS), 'no', 'no reading of Events')
  t.equal(await can('delete', 'events', '-n', NS), 'no')
  t.equal(await can('get', 'replicasets.apps', '-n', NS), 'yes', "a pod's ReplicaSet, for its Deployment")
  t.equal(await can('list', 'replicasets.apps', '-n', NS), 'no')
  t.equal(await can('get', 'deployments.apps', '-n', NS), 'no', 'the Deployment is known from the reference, never read')

  // Shutdown: Events still waiting when nlb-guard is told to stop reach the apiserver before it exits.
  const ns = 'flush'
  await cp.kubectl(['create', 'namespace', ns])
  const SERVICES = 30
  const items = Array.from({ length: SERVICES }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `udp-${i}` }, spec: { type: 'LoadBalancer', selector: { app: 'udp' }, ports: [{ name: 'udp', port: 5060, protocol: 'UDP' }] } }))
  await eventually('the Services admitted, made NLBs', async () => {
    const r = await cp.kubectl(['apply', '-n', ns, '-o', 'json', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), allowFail: true })
    return r.code === 0 && r.stdout.includes('"nlb"') ? r : undefined
  })
  // One kubectl drops the type of all 30 (30 UPDATEs in quick succession), nlb-guard restores each:
  // 30 Events to send, at most 10 a second, so most still wait when SIGTERM follows at once.
  const dropped = await cp.kubectl(['annotate', 'service', '--all', '-n', ns, 'service.beta.kubernetes.io/aws-load-balancer-type-'])
  t.match(dropped.stderr, /Warning: restored annotation/, 'restored (kubectl prints a repeated warning once)')
  await guard.stop()
  // 'exit' can come before the end of its stderr: the last line it writes is "closed".
  await eventually('its log read to the end', async () => (guard.log().includes('"msg":"closed"') ? true : undefined))
  t.equal(guard.admissions().filter((a) => a['namespace'] === ns && a['operation'] === 'UPDATE' && a['decision'] === 'patched').length, SERVICES, 'every UPDATE restored')

  const flushed = guard.log().split('\n').filter((line) => line.includes('Kubernetes Events sent before exit')).map((line) => JSON.parse(line) as { pending: number; unsent: number })
  t.equal(flushed.length, 1, `the shutdown flushed Events: ${guard.log().slice(-2000)}`)
  t.ok((flushed[0]?.pending ?? 0) > 0, `${flushed[0]?.pending} Events were still waiting at SIGTERM`)
  t.equal(flushed[0]?.unsent, 0, 'none left unsent')
  const events = JSON.parse((await cp.kubectl(['get', 'events', '-n', ns, '-o', 'json'])).stdout) as { items: Array<{ reason?: string; source?: { component?: string }; involvedObject: { name?: string } }> }
  const ours = events.items.filter((e) => e.source?.component === 'nlb-guard' && e.reason === 'Mutated')
  t.same(ours.map((e) => e.involvedObject.name).sort(), items.map((s) => s.metadata.name).sort(), 'the apiserver has an Event for every Service')
})
