import t from 'tap'
import type { Service } from '../../webhook/k8s/objects.js'
import { ServiceIndex } from '../../webhook/rules/service-index.js'

const service = (name: string, selector: Record<string, string> | null, protocol = 'UDP', type = 'LoadBalancer'): Service => ({
  metadata: { name },
  spec: { type, selector, ports: [{ port: 53, protocol }] },
})

t.test('candidates: every Service that selects the pod, in the order added; none from another namespace', async (t) => {
  const index = new ServiceIndex()
  index.add('demo', service('a', { app: 'dns', tier: 'edge' }))
  index.add('demo', service('b', { tier: 'edge' }))
  index.add('demo', service('c', { app: 'other' }))
  index.add('prod', service('d', { app: 'dns' }))
  index.add('demo', service('tcp', { app: 'dns' }, 'TCP'))
  index.add('demo', service('cluster-ip', { app: 'dns' }, 'UDP', 'ClusterIP'))
  index.add('demo', service('no-selector', null))
  const names = (labels: Record<string, string>) => index.candidates('demo', labels).map((s) => s.metadata?.name)
  t.same(names({ tier: 'edge', app: 'dns' }), ['a', 'b'], 'insertion order, whatever the label order')
  t.same(names({ app: 'other' }), ['c'])
  t.same(names({}), [])
  t.same(index.candidates('nowhere', { app: 'dns' }), [])
  t.same(index.candidates('demo', null), [])
})

t.test('the work per pod is its labels and the Services filed under them, not every Service', async (t) => {
  // 5,000 Services and 5,000 pods in one namespace, each pod selected by one Service: matching all
  // pods hands the rule 5,000 Services in total, where the old loop handed it 25,000,000.
  const index = new ServiceIndex()
  const n = 5_000
  for (let i = 0; i < n; i++) index.add('demo', service(`s${i}`, { app: `a${i}` }))
  let handed = 0
  for (let i = 0; i < n; i++) {
    const found = index.candidates('demo', { app: `a${i}`, team: 'voice' })
    handed += found.length
    if (found[0]?.metadata?.name !== `s${i}`) t.fail(`pod ${i} did not find its Service`)
  }
  t.equal(handed, n, 'linear: one candidate per pod')
})
