import t from 'tap'
import { auditCluster } from '../../webhook/audit/audit.js'
import { parseConfig } from '../../webhook/config.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

const TYPE = 'service.beta.kubernetes.io/aws-load-balancer-type'
const options = { version: parseKubeVersion('1.30.0'), config: parseConfig({}) }

const service = (namespace: string, name: string, ports: Array<[number, string]>, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace, name, annotations, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: ports.map(([port, protocol]) => ({ port, protocol })) },
})
const controller = (kind: string, name: string) => [{ apiVersion: 'apps/v1', kind, name, uid: `uid-${name}`, controller: true }]
const pod = (name: string, app: string, extra: { owner?: ReturnType<typeof controller>; phase?: string; sidecar?: boolean; namespace?: string } = {}) => ({
  metadata: { namespace: extra.namespace ?? 'demo', name, labels: { app }, ...(extra.owner ? { ownerReferences: extra.owner } : {}) },
  spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 5060, protocol: 'UDP' }] }, ...(extra.sidecar ? [{ name: 'nlb-guard-healthcheck', image: 'x' }] : [])] },
  status: { phase: extra.phase ?? 'Running' },
})

t.test('Services: each judged as a CREATE; excluded namespaces skipped; a mixed one the provider never builds is pending', async (t) => {
  const findings = auditCluster({
    services: [
      service('demo', 'dns', [[53, 'UDP']]),
      service('demo', 'web', [[443, 'TCP']]),
      service('demo', 'echo', [[1, 'TCP'], [1, 'UDP']], { [TYPE]: 'nlb' }),
      service('kube-system', 'kube-dns', [[53, 'UDP']]),
      { metadata: { namespace: 'demo', name: 'broken' }, spec: { type: 'LoadBalancer', ports: [{ port: '53' }] } },
    ],
    pods: [],
    owners: [],
  }, options)
  t.same(findings.filter((f) => f.action !== 'hint').map((f) => [f.object?.name, f.action, f.rule]), [
    ['dns', 'change', 'S2'],
    ['echo', 'pending', 'S1'],
    ['broken', 'error', null],
  ])
  t.ok(findings.every((f) => f.where.file === 'cluster'))
  t.match(findings.find((f) => f.action === 'pending')?.message, /in-tree AWS cloud provider never builds .*Recreate it as one Service per protocol \(nlb-guard fix --split writes them\)\.$/)
})

t.test('Pods: without the sidecar the Pod rule would add, once per workload, through ReplicaSets to Deployments', async (t) => {
  const ipTargets = { [TYPE]: 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' }
  const findings = auditCluster({
    services: [service('demo', 'sip', [[5060, 'UDP']], ipTargets), service('demo', 'rtp', [[5060, 'UDP']], ipTargets)],
    pods: [
      pod('sip-abc-1', 'sip', { owner: controller('ReplicaSet', 'sip-abc') }),
      pod('sip-abc-2', 'sip', { owner: controller('ReplicaSet', 'sip-abc') }),
      pod('sip-done', 'sip', { owner: controller('ReplicaSet', 'sip-abc'), phase: 'Succeeded' }),
      pod('sip-ok', 'sip', { sidecar: true }),
      pod('rtp-0', 'rtp', { owner: controller('StatefulSet', 'rtp') }),
      pod('bare', 'rtp'),
      pod('elsewhere', 'sip', { namespace: 'other' }),
    ],
    owners: [{ kind: 'ReplicaSet', metadata: { namespace: 'demo', name: 'sip-abc', ownerReferences: controller('Deployment', 'sip') } }],
  }, options)
  const missing = findings.filter((f) => f.action === 'missing-sidecar')
  t.same(missing.map((f) => `${f.object?.kind} ${f.object?.namespace}/${f.object?.name}`), ['Deployment demo/sip', 'StatefulSet demo/rtp', 'Pod demo/bare'])
  t.match(missing[0]?.message, /^2 running pod\(s\) \(sip-abc-1, sip-abc-2\) lack what the Pod rule would have added at creation: added .*nlb-guard-healthcheck.* kubectl -n demo rollout restart deployment\/sip$/)
  t.match(missing[2]?.message, /recreate the pod\.$/)
  const never = auditCluster({ services: [service('demo', 'sip', [[5060, 'UDP']], ipTargets)], pods: [pod('sip-1', 'sip')], owners: [] }, { ...options, config: parseConfig({ sidecar: { injection: 'never' } }) })
  t.same(never.filter((f) => f.action === 'missing-sidecar'), [], 'the injection policy is the Pod rule\'s: never means no finding')
})
