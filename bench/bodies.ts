import { reviewFor, serviceObject } from '../testkit/reviews.ts'

/*
 * The AdmissionReview bodies the benchmark sends, shaped like what a kube-apiserver sends after
 * `kubectl apply` (last-applied annotation, managedFields) or after a ReplicaSet creates a Pod
 * (ownerReferences, the projected service-account volume, default tolerations).
 */

export type BodyName = 'service' | 'pod' | 'update'

export interface Body {
  readonly name: BodyName
  readonly description: string
  readonly json: string
  /** What a webhook implementing S2 and P1 (with the bench's fake apiserver's Services) answers: a patch, or allowed as is. */
  readonly expect: 'patched' | 'allowed'
}

const CREATED = '2026-11-24T10:00:00Z'

/** A UDP DNS Service created with `kubectl apply`: S2 adds `aws-load-balancer-type: nlb`. */
function dnsService(): Record<string, unknown> {
  const base = serviceObject({ name: 'coredns-public', udp: true })
  const metadata = base['metadata'] as Record<string, unknown>
  const spec = base['spec'] as Record<string, unknown>
  const labels = {
    'app.kubernetes.io/name': 'coredns',
    'app.kubernetes.io/instance': 'coredns-public',
    'app.kubernetes.io/part-of': 'dns',
    'app.kubernetes.io/managed-by': 'kubectl',
  }
  const ports = [
    { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 },
  ]
  const applied = { apiVersion: 'v1', kind: 'Service', metadata: { name: metadata['name'], namespace: metadata['namespace'], labels }, spec: { type: 'LoadBalancer', selector: spec['selector'], ports } }
  return {
    ...base,
    metadata: {
      ...metadata,
      uid: '5b1f3f0e-8a6c-4c8e-9a53-3f1d0c2b7a11',
      creationTimestamp: CREATED,
      labels,
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': `${JSON.stringify(applied)}\n` },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time: CREATED,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:annotations': { '.': {}, 'f:kubectl.kubernetes.io/last-applied-configuration': {} }, 'f:labels': Object.fromEntries(Object.keys(labels).map((k) => [`f:${k}`, {}])) },
            'f:spec': {
              'f:allocateLoadBalancerNodePorts': {},
              'f:externalTrafficPolicy': {},
              'f:internalTrafficPolicy': {},
              'f:ports': { '.': {}, 'k:{"port":53,"protocol":"UDP"}': { '.': {}, 'f:name': {}, 'f:port': {}, 'f:protocol': {}, 'f:targetPort': {} } },
              'f:selector': {},
              'f:sessionAffinity': {},
              'f:type': {},
            },
          },
        },
      ],
    },
    spec: {
      ...spec,
      ports,
      selector: { 'app.kubernetes.io/name': 'coredns', 'app.kubernetes.io/instance': 'coredns-public' },
      clusterIP: '10.96.41.7',
      clusterIPs: ['10.96.41.7'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None',
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      allocateLoadBalancerNodePorts: true,
    },
    status: { loadBalancer: {} },
  }
}

/** A Pod a ReplicaSet creates for a UDP DNS server. */
function dnsPod(): Record<string, unknown> {
  const labels = { 'app.kubernetes.io/name': 'coredns', 'app.kubernetes.io/instance': 'coredns-public', 'pod-template-hash': '7d9c8b6f5d' }
  const container = {
    name: 'coredns',
    image: 'registry.k8s.io/coredns/coredns:v1.12.1',
    imagePullPolicy: 'IfNotPresent',
    args: ['-conf', '/etc/coredns/Corefile'],
    ports: [
      { name: 'dns', containerPort: 53, protocol: 'UDP' },
      { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
    ],
    env: [
      { name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
    ],
    resources: { limits: { cpu: '1', memory: '170Mi' }, requests: { cpu: '100m', memory: '70Mi' } },
    livenessProbe: { httpGet: { path: '/health', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 60, timeoutSeconds: 5, periodSeconds: 10, successThreshold: 1, failureThreshold: 5 },
    readinessProbe: { httpGet: { path: '/ready', port: 8181, scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
    securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] }, readOnlyRootFilesystem: true },
    volumeMounts: [
      { name: 'config-volume', mountPath: '/etc/coredns', readOnly: true },
      { name: 'kube-api-access-8x2kq', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'coredns-public-7d9c8b6f5d-',
      namespace: 'demo',
      uid: '0c6f7a1e-2b3d-4e5f-8a9b-1c2d3e4f5a6b',
      creationTimestamp: CREATED,
      labels,
      annotations: { 'kubectl.kubernetes.io/restartedAt': CREATED },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'coredns-public-7d9c8b6f5d', uid: '9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4', controller: true, blockOwnerDeletion: true }],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          time: CREATED,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:generateName': {}, 'f:labels': { '.': {}, 'f:app.kubernetes.io/instance': {}, 'f:app.kubernetes.io/name': {}, 'f:pod-template-hash': {} }, 'f:ownerReferences': { '.': {}, 'k:{"uid":"9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4"}': {} } },
            'f:spec': { 'f:containers': { 'k:{"name":"coredns"}': { '.': {}, 'f:args': {}, 'f:image': {}, 'f:imagePullPolicy': {}, 'f:livenessProbe': {}, 'f:name': {}, 'f:ports': {}, 'f:readinessProbe': {}, 'f:resources': {}, 'f:securityContext': {}, 'f:volumeMounts': {} } }, 'f:dnsPolicy': {}, 'f:priorityClassName': {}, 'f:restartPolicy': {}, 'f:volumes': {} },
          },
        },
      ],
    },
    spec: {
      containers: [container],
      volumes: [
        { name: 'config-volume', configMap: { name: 'coredns-public', items: [{ key: 'Corefile', path: 'Corefile' }], defaultMode: 420 } },
        {
          name: 'kube-api-access-8x2kq',
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
            ],
            defaultMode: 420,
          },
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'Default',
      serviceAccountName: 'coredns',
      serviceAccount: 'coredns',
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'CriticalAddonsOnly', operator: 'Exists' },
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priorityClassName: 'system-cluster-critical',
      priority: 2000000000,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: { phase: 'Pending', qosClass: 'Burstable' },
  }
}

/**
 * A Service that grew to about `bytes` of JSON the way real ones do: labels (up to 63-character
 * values) and annotations (Kubernetes caps their total at 256 KiB).
 */
function bigService(bytes: number, type: string): Record<string, unknown> {
  const service = dnsService()
  const metadata = service['metadata'] as Record<string, unknown>
  const annotations: Record<string, string> = { ...(metadata['annotations'] as Record<string, string>) }
  for (let i = 0; i < 200; i++) annotations[`bench.nlb-guard.io/note-${String(i).padStart(3, '0')}`] = 'a'.repeat(1000)
  const labels: Record<string, string> = { ...(metadata['labels'] as Record<string, string>) }
  const object = { ...service, metadata: { ...metadata, annotations, labels }, spec: { ...(service['spec'] as object), type } }
  let size = JSON.stringify(object).length
  // Each label adds its key, its value and JSON punctuation: about 100 bytes.
  for (let i = 0; size < bytes; i++) {
    const key = `team-${String(i).padStart(5, '0')}.bench.nlb-guard.io/owner`
    const value = `v${String(i).padStart(62, '0')}`
    labels[key] = value
    size += key.length + value.length + 6
  }
  return object
}

/**
 * The object as a mutating webhook sees it on CREATE: the apiserver gives it its uid only after
 * mutating admission (rest.BeforeCreate), so there is none yet.
 */
function asCreated(object: Record<string, unknown>): Record<string, unknown> {
  const { uid: _uid, ...metadata } = object['metadata'] as Record<string, unknown>
  return { ...object, metadata }
}

export function makeBodies(): Record<BodyName, Body> {
  const service = reviewFor(asCreated(dnsService()), { uid: '3c7a1c2e-0000-4000-8000-000000000001' })
  const pod = reviewFor(asCreated(dnsPod()), { uid: '3c7a1c2e-0000-4000-8000-000000000002', kind: { group: '', version: 'v1', kind: 'Pod' } })
  // A ClusterIP Service turned into a LoadBalancer: S2 adds the type on that UPDATE too.
  const half = 1024 * 1024
  const update = reviewFor(bigService(half, 'LoadBalancer'), { uid: '3c7a1c2e-0000-4000-8000-000000000003', operation: 'UPDATE', oldObject: bigService(half, 'ClusterIP') })
  update.request.options = { apiVersion: 'meta.k8s.io/v1', kind: 'UpdateOptions' }
  const describe = (label: string, json: string) => `${label} (${formatBytes(Buffer.byteLength(json))})`
  const bodies = {
    service: { name: 'service', json: JSON.stringify(service), expect: 'patched', description: '' },
    pod: { name: 'pod', json: JSON.stringify(pod), expect: 'patched', description: '' },
    update: { name: 'update', json: JSON.stringify(update), expect: 'patched', description: '' },
  } as const
  return {
    service: { ...bodies.service, description: describe('Service CREATE, UDP', bodies.service.json) },
    pod: { ...bodies.pod, description: describe('Pod CREATE', bodies.pod.json) },
    update: { ...bodies.update, description: describe('Service UPDATE, 2 × 1 MiB', bodies.update.json) },
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}
