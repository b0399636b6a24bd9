import t from 'tap'
import type { OwnerFacts, OwnerLookupResult } from '../../webhook/events/owners.js'
import { createOwnerResolver, deploymentOf } from '../../webhook/events/owners.js'
import type { InvolvedObject } from '../../webhook/events/recorder.js'

/*
 * Where a controller-created pod's Event goes: the Deployment above its ReplicaSet, read once per
 * ReplicaSet (a fake reader counts the reads), and the ReplicaSet itself whenever that cannot be known.
 */

const rs = (name: string, uid = `uid-${name}`): InvolvedObject => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: 'shop', name, uid })
const deployment = (name: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true, blockOwnerDeletion: true, ...extra })

function fakeCluster(replicaSets: Record<string, OwnerFacts | Error>) {
  const reads: string[] = []
  const results: OwnerLookupResult[] = []
  const errors: string[] = []
  const resolve = (maxCached?: number) =>
    createOwnerResolver({
      readReplicaSet: async (namespace, name) => {
        reads.push(`${namespace}/${name}`)
        const answer = replicaSets[name]
        if (answer === undefined) throw Object.assign(new Error(`replicasets.apps "${name}" not found`), { code: 404 })
        if (answer instanceof Error) throw answer
        return answer
      },
      onLookup: (result) => results.push(result),
      onError: (error) => errors.push((error as Error).message),
      ...(maxCached === undefined ? {} : { maxCached }),
    })
  return { reads, results, errors, resolve }
}

t.test("a Deployment's ReplicaSet: the Event goes on the Deployment, read once then cached", async (t) => {
  const cluster = fakeCluster({ 'web-5d8f': { uid: 'uid-web-5d8f', ownerReferences: [deployment('web')] } })
  const resolve = cluster.resolve()
  const expected = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-web' }
  t.same(await resolve(rs('web-5d8f')), expected)
  t.same(await resolve(rs('web-5d8f')), expected)
  t.same(cluster.reads, ['shop/web-5d8f'], 'one GET for two pods')
  t.same(cluster.results, ['fetched', 'cached'])
})

t.test('the Event stays where it is', async (t) => {
  const cluster = fakeCluster({
    bare: { uid: 'uid-bare', ownerReferences: undefined },
    adopted: { uid: 'uid-adopted', ownerReferences: [deployment('other', { controller: false })] },
    custom: { uid: 'uid-custom', ownerReferences: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'r', uid: 'uid-r', controller: true }] },
    forbidden: Object.assign(new Error('replicasets.apps "forbidden" is forbidden: User cannot get resource'), { code: 403 }),
    replaced: { uid: 'uid-new', ownerReferences: [deployment('web')] },
  })
  const resolve = cluster.resolve()
  for (const [involved, why] of [
    [rs('bare'), 'a ReplicaSet of its own (no owner): fetched, cached'],
    [rs('adopted'), 'an owner that is not its controller'],
    [rs('custom'), 'a controller that is not a Deployment (an Argo Rollout)'],
    [rs('forbidden'), 'the GET refused (403): failed'],
    [rs('gone'), 'the ReplicaSet gone (404): failed'],
    [rs('replaced', 'uid-old'), "another ReplicaSet now has the pod's ReplicaSet's name: failed"],
  ] as const) {
    t.same(await resolve(involved), involved, why)
  }
  t.same(cluster.results, ['fetched', 'fetched', 'fetched', 'failed', 'failed', 'failed'])
  t.match(cluster.errors, [/forbidden/, /not found/, /now has uid uid-new, not the pod's uid-old/])
  // Other owners are not looked up at all: a DaemonSet's, a StatefulSet's, a Job's pods.
  for (const kind of ['DaemonSet', 'StatefulSet', 'Job']) {
    const owner = { apiVersion: kind === 'Job' ? 'batch/v1' : 'apps/v1', kind, namespace: 'shop', name: 'x', uid: 'uid-x' }
    t.equal(await resolve(owner), owner, `${kind}: unchanged`)
  }
  t.equal(cluster.reads.length, 6, 'no GET for them')
  // A failure is not remembered: the next pod of that ReplicaSet asks again.
  await resolve(rs('forbidden'))
  t.equal(cluster.reads.filter((r) => r === 'shop/forbidden').length, 2)
})

t.test('the cache is bounded: past maxCached the least recently used ReplicaSet is forgotten', async (t) => {
  const replicaSets = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, { uid: `uid-${n}`, ownerReferences: [deployment(`d${n}`)] }]))
  const cluster = fakeCluster(replicaSets)
  const resolve = cluster.resolve(2)
  await resolve(rs('a'))
  await resolve(rs('b'))
  await resolve(rs('a'))
  await resolve(rs('c'))
  t.same(cluster.reads, ['shop/a', 'shop/b', 'shop/c'])
  await resolve(rs('a'))
  await resolve(rs('b'))
  t.same(cluster.reads, ['shop/a', 'shop/b', 'shop/c', 'shop/b'], 'a was used last and kept; b forgotten and read again')
})

t.test('deploymentOf reads only a controller Deployment of the apps group, with sane fields', async (t) => {
  t.same(deploymentOf([deployment('web')], 'ns'), { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'ns', name: 'web', uid: 'uid-web' })
  for (const references of [undefined, 'x', [], [null], [deployment('web', { apiVersion: 'example.com/v1' })], [deployment('web', { uid: '' })], [deployment('x'.repeat(254))], [deployment('web', { name: 7 })]]) {
    t.equal(deploymentOf(references, 'ns'), undefined, JSON.stringify(references)?.slice(0, 80) ?? 'undefined')
  }
})
