// The e2e suite's foundation: a real kube-apiserver + etcd built from the Go
// module proxy. Not skippable: if the assets cannot be built this fails.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { assetsDir, startControlPlane, versionFlags } from './harness.js'

// The first run builds kube-apiserver, which takes tens of minutes on 2 cores;
// on the root object this extends the whole file's timeout.
t.setTimeout(30 * 60_000)

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('real control plane starts, serves, and stops cleanly', async (t) => {
  t.setTimeout(30 * 60_000)
  const assets = await assetsDir()
  // Whatever version was built or supplied, the server must report it.
  const binVersion = spawnSync(join(assets, 'kube-apiserver'), ['--version'], {
    encoding: 'utf8',
  }).stdout.trim()
  const expected = /^Kubernetes (v1\.(\d+)\.\d+\S*)$/.exec(binVersion)
  t.ok(expected, `kube-apiserver --version: ${binVersion}`)
  t.ok(Number(expected?.[2]) >= 36, 'at least Kubernetes 1.36')

  const cp = await startControlPlane({ assets })
  t.teardown(() => cp.stop())
  const { etcd, apiserver } = cp.pids
  t.type(etcd, 'number', 'etcd runs')
  t.type(apiserver, 'number', 'kube-apiserver runs')

  const version = JSON.parse((await cp.kubectl(['version', '-o', 'json'])).stdout) as {
    serverVersion?: { gitVersion?: string }
  }
  t.equal(version.serverVersion?.gitVersion, expected?.[1], 'server reports the built version')

  await cp.kubectl(['create', 'namespace', 'e2e'])
  const service = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'plain', namespace: 'e2e' },
    spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP' }], selector: { app: 'x' } },
  })
  // The ServiceCIDR that allocates ClusterIPs is bootstrapped after /readyz.
  let created = await cp.kubectl(['create', '-f', '-'], { input: service, allowFail: true })
  for (let i = 0; created.code !== 0 && i < 60; i++) {
    await sleep(500)
    created = await cp.kubectl(['create', '-f', '-'], { input: service, allowFail: true })
  }
  t.equal(created.code, 0, `Service created ${created.stderr}`)
  const clusterIP = (
    await cp.kubectl(['get', 'service', 'plain', '-n', 'e2e', '-o', 'jsonpath={.spec.clusterIP}'])
  ).stdout
  t.match(clusterIP, /^10\.0\.0\.\d+$/, 'ClusterIP from --service-cluster-ip-range')

  await cp.stop()
  t.notOk(alive(etcd as number), 'etcd is gone')
  t.notOk(alive(apiserver as number), 'kube-apiserver is gone')
  t.notOk(existsSync(cp.dir), 'temp dir removed')
  t.same(cp.pids, { etcd: undefined, apiserver: undefined })
  await cp.stop() // idempotent: the teardown calls it again
})

t.test('flags by release: 1.19 must be told to open no insecure port; the flag is gone from 1.24', async (t) => {
  const version = (minor: number) => ({ major: 1, minor, patch: 0, gitVersion: `v1.${minor}.0` })
  t.same(versionFlags(version(19)), ['--insecure-port=0'])
  t.same(versionFlags(version(25)), [])
  t.same(versionFlags(version(37)), [])
})
