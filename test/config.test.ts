import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../lib/errors.js'
import { loadConfig, metricsBindAddress, parseConfig, runningInCluster } from '../webhook/config.js'

t.test('excludedNamespaces follows the namespace setting unless given', async (t) => {
  t.same(parseConfig({}).excludedNamespaces, ['kube-system', 'nlb-guard-system'])
  t.same(parseConfig({ namespace: 'platform-webhooks' }).excludedNamespaces, ['kube-system', 'platform-webhooks'])
  t.same(parseConfig({ namespace: 'platform-webhooks', excludedNamespaces: ['infra'] }).excludedNamespaces, ['infra'], 'an explicit list is taken as it is')
})

t.test('an error names every offending key', async (t) => {
  const error = t.throws(() => parseConfig({ port: 0, namespace: 'Not_A_Label', sidecar: { mode: 'udp' } }))
  t.type(error, ConfigError)
  t.match((error as Error).message, /port: .*namespace: expected a DNS-1123 label.*sidecar\.mode/)
  t.throws(() => parseConfig({ nope: 1 }), /Unrecognized key/, 'unknown keys are refused')
  t.throws(() => parseConfig({ tls: { certFile: '/a' } }), /certFile and keyFile go together/)
})

t.test('loadConfig: flags over the file, tls merged key by key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-config-'))
  const file = join(dir, 'config.yaml')
  await writeFile(file, 'port: 9443\ntls:\n  clientCaFile: /ca.crt\nlogLevel: debug\n')
  const config = await loadConfig(file, { port: 10443, tls: { certFile: '/tls.crt', keyFile: '/tls.key' } })
  t.equal(config.port, 10443, 'a flag wins')
  t.equal(config.logLevel, 'debug', 'the file fills the rest')
  t.same(config.tls, { clientCaFile: '/ca.crt', certFile: '/tls.crt', keyFile: '/tls.key' })
  await t.rejects(loadConfig(join(dir, 'missing.yaml')), /cannot read config file/)
  await writeFile(file, '- a list\n')
  await t.rejects(loadConfig(file), /must hold a mapping/)
  await writeFile(file, 'port: [\n')
  await t.rejects(loadConfig(file), /not valid YAML/)
})

t.test('kubeVersion must be a Kubernetes version', async (t) => {
  t.equal(parseConfig({ kubeVersion: 'v1.30.2-eks-1a2b3c' }).kubeVersion, 'v1.30.2-eks-1a2b3c')
  t.throws(() => parseConfig({ kubeVersion: 'latest' }), /kubeVersion: expected a Kubernetes version such as 1\.30\.2/)
})

t.test('metricsBindAddress: the setting, else the pod IP in a pod, else address', async (t) => {
  const inPod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', POD_IP: '10.1.2.3' }
  t.equal(metricsBindAddress({ address: '0.0.0.0', metricsAddress: '127.0.0.1' }, inPod), '127.0.0.1')
  t.equal(metricsBindAddress({ address: '0.0.0.0', metricsAddress: undefined }, inPod), '10.1.2.3')
  t.equal(metricsBindAddress({ address: '0.0.0.0', metricsAddress: undefined }, { ...inPod, POD_IP: '' }), '0.0.0.0')
  t.equal(metricsBindAddress({ address: '::', metricsAddress: undefined }, { POD_IP: '10.1.2.3' }), '::', 'POD_IP outside a pod is not trusted')
})

t.test('runningInCluster reads the two variables the kubelet sets', async (t) => {
  t.equal(runningInCluster({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }), true)
  t.equal(runningInCluster({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }), false)
  t.equal(runningInCluster({}), false)
})
