// The README's GitHub Actions example, run as written: its `run:` steps in order, on a fresh user
// repository, with Node 24 on PATH (setup-node's job) and the install pointed at this checkout's
// HEAD instead of GitHub (the only change). The gate fails on the broken Service with a GitHub
// annotation, then passes once `nlb-guard fix` has corrected it.
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../fixtures/cli.js'
import { headCommit, pathWithNode, readmeBlock, shell, userRepository } from './fixtures.js'

t.setTimeout(20 * 60_000)

interface Workflow {
  jobs: Record<string, { steps: Array<{ uses?: string; run?: string }> }>
}

t.test("the README's CI example fails a broken manifest and passes a fixed one", async (t) => {
  const workflow = (await readmeBlock('ci-example')) as Workflow
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps)
  t.same(steps.filter((s) => s.uses !== undefined).map((s) => s.uses), ['actions/checkout@v4', 'actions/setup-node@v4'], 'only checkout and Node come from actions')
  const runs = steps.flatMap((s) => (s.run === undefined ? [] : [s.run]))
  const source = 'github:nlb-guard/nlb-guard#v0.1.0'
  t.ok(runs[0]?.includes(source), 'the first step installs nlb-guard from GitHub')

  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-ci-'))
  const repo = join(dir, 'repo')
  await userRepository(repo)
  const prefix = join(dir, 'prefix')
  // A global install into a prefix of its own, as on a fresh runner.
  const env = { ...process.env, PATH: pathWithNode(join(prefix, 'bin')), npm_config_prefix: prefix, npm_config_audit: 'false', npm_config_fund: 'false' }
  const local = runs.map((run) => run.replace(source, `git+file://${ROOT}#${headCommit()}`))

  const install = await shell(local[0] ?? 'false', { cwd: repo, env })
  t.equal(install.code, 0, `installed: ${install.output.slice(-2000)}`)
  const gate = local.slice(1).join('\n')
  const failed = await shell(gate, { cwd: repo, env })
  t.equal(failed.code, 1, 'the gate fails on the broken Service')
  t.match(failed.output, /^::error file=k8s\/apps\/dns\.yaml,line=1,title=nlb-guard%3A would change \(S2\)::Service dns: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/m)
  t.notMatch(failed.output, /Service web/, 'the clean Service is not mentioned')

  const manifest = join(repo, 'k8s', 'apps', 'dns.yaml')
  const fixed = await shell(`nlb-guard fix -f ${manifest} > ${manifest}.fixed && mv ${manifest}.fixed ${manifest}`, { cwd: repo, env })
  t.equal(fixed.code, 0, fixed.output)
  t.match(await readFile(manifest, 'utf8'), /aws-load-balancer-type: nlb/)
  const passed = await shell(gate, { cwd: repo, env })
  t.equal(passed.code, 0, `the gate passes once fixed: ${passed.output}`)
})
