// The pre-commit hook (.pre-commit-hooks.yaml) as a user runs it: the README's
// .pre-commit-config.yaml, pointed at this checkout's HEAD instead of GitHub, on a fresh repository.
// pre-commit builds nlb-guard with npm (language: node) using the Node 24 on PATH, passes the
// manifests it finds, and fails on the broken one.
import { execFileSync } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { ROOT } from '../fixtures/cli.js'
import { headCommit, pathWithNode, readmeBlock, shell, userRepository } from './fixtures.js'

t.setTimeout(20 * 60_000)

interface PreCommitConfig {
  repos: Array<{ repo: string; rev: string; hooks: Array<{ id: string; args?: string[] }> }>
}

t.test("the README's pre-commit hook fails a broken manifest and passes a fixed one", async (t) => {
  // .ci/run installs pre-commit (Debian's package) on a fresh machine; its absence fails here.
  const version = execFileSync('pre-commit', ['--version'], { encoding: 'utf8' })
  t.match(version, /^pre-commit \d/)
  const config = (await readmeBlock('pre-commit-config')) as PreCommitConfig
  const entry = config.repos[0]
  t.equal(entry?.repo, 'https://github.com/nlb-guard/nlb-guard')
  t.same(entry?.hooks.map((h) => h.id), ['nlb-guard-check'])

  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-pre-commit-'))
  const repo = join(dir, 'repo')
  await userRepository(repo)
  await writeFile(join(repo, '.pre-commit-config.yaml'), stringify({ repos: [{ ...entry, repo: ROOT, rev: headCommit() }] }))
  const env = { ...process.env, PATH: pathWithNode(), PRE_COMMIT_HOME: join(dir, 'cache'), npm_config_audit: 'false', npm_config_fund: 'false' }

  const failed = await shell('pre-commit run --all-files', { cwd: repo, env })
  t.equal(failed.code, 1, `the hook fails: ${failed.output.slice(-3000)}`)
  t.match(failed.output, /nlb-guard check\.+Failed/)
  t.match(failed.output, /k8s\/apps\/dns\.yaml:1: Service dns: would change \(S2\): added annotation/)
  t.notMatch(failed.output, /Service web/)

  const manifest = join(repo, 'k8s', 'apps', 'dns.yaml')
  await writeFile(manifest, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: dns\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-type: nlb\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: dns}\n  ports:\n  - port: 53\n    protocol: UDP\n')
  const stillBroken = await shell('pre-commit run --all-files', { cwd: repo, env })
  t.match(stillBroken.output, /cross-zone/, 'Local without cross-zone is still a finding')
  await writeFile(manifest, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: dns\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-type: nlb\n    service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled: "true"\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: dns}\n  ports:\n  - port: 53\n    protocol: UDP\n')
  const passed = await shell('pre-commit run --all-files', { cwd: repo, env })
  t.equal(passed.code, 0, `the hook passes once fixed: ${passed.output.slice(-3000)}`)
  t.match(passed.output, /nlb-guard check\.+Passed/)
})
