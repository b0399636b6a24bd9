import t from 'tap'
import { resolveCertMode } from '../../webhook/server/certificates.js'
import type { Config } from '../../webhook/config.js'
import { ConfigError, parseConfig, runningInCluster } from '../../webhook/config.js'

t.test('resolveCertMode', async (t) => {
  const files = { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' }
  const cases: { name: string; config: Partial<Config>; inCluster: boolean; want: string | RegExp }[] = [
    { name: 'auto with files', config: { tls: files }, inCluster: true, want: 'files' },
    { name: 'auto in a pod', config: {}, inCluster: true, want: 'bootstrap' },
    { name: 'auto with a kubeconfig', config: { kubeconfig: '/k' }, inCluster: false, want: 'bootstrap' },
    { name: 'auto on a laptop', config: {}, inCluster: false, want: 'self-signed' },
    { name: 'auto in a pod told to run without a cluster', config: { kubeVersion: '1.30.0' }, inCluster: true, want: 'self-signed' },
    { name: 'auto with a kubeconfig and a fixed version', config: { kubeVersion: '1.30.0', kubeconfig: '/k' }, inCluster: false, want: 'bootstrap' },
    { name: 'bootstrap explicitly', config: { certMode: 'bootstrap' }, inCluster: false, want: 'bootstrap' },
    { name: 'self-signed in a pod', config: { certMode: 'self-signed' }, inCluster: true, want: 'self-signed' },
    { name: 'files without files', config: { certMode: 'files' }, inCluster: false, want: /needs tls.certFile/ },
    { name: 'bootstrap with files', config: { certMode: 'bootstrap', tls: files }, inCluster: true, want: /drop tls.certFile/ },
  ]
  for (const c of cases) {
    const config = { ...parseConfig({}), ...c.config }
    if (typeof c.want === 'string') t.equal(resolveCertMode(config, c.inCluster), c.want, c.name)
    else t.throws(() => resolveCertMode(config, c.inCluster), { name: ConfigError.name, message: c.want }, c.name)
  }
})

t.test('the bootstrap settings: defaults and validation', async (t) => {
  t.match(parseConfig({}), {
    certMode: 'auto',
    certSecret: 'nlb-guard-tls',
    namespace: 'nlb-guard-system',
    serviceName: 'nlb-guard',
    webhookConfigurationName: 'nlb-guard',
    clusterDomain: 'cluster.local',
    certRotationLookaheadDays: 30,
    caRotationLookaheadDays: 365,
    certSyncSeconds: 15,
  })
  t.throws(() => parseConfig({ certSyncSeconds: 60 }), /certSyncSeconds/, 'drift must be repaired within a minute')
  t.throws(() => parseConfig({ namespace: 'Not_A_Label' }), /namespace: expected a DNS-1123 label/)
  t.throws(() => parseConfig({ certMode: 'magic' }), /certMode/)
  t.equal(runningInCluster({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }), true)
  t.equal(runningInCluster({}), false)
})
