// The README's GitHub Actions example, run as written: its `run:` steps in order, on a fresh user
// repository, with one change: the clone of nlb-guard comes from this checkout (at HEAD) instead of
// GitHub. The gate fails on the broken Service with a GitHub annotation, then passes once
// `nlb-guard fix` has corrected it.
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
  t.same(steps.filter((s) => s.uses !== undefined).map((s) => s.uses), ['actions/checkout@v4'], 'only the checkout comes from an action')
  const runs = steps.flatMap((s) => (s.run === undefined ? [] : [s.run]))
  const source = '--depth 1 --branch v0.1.0 https://github.com/nlb-guard/nlb-guard "$RUNNER_TEMP/nlb-guard"'
  t.ok(runs[0]?.includes(source), 'the first step clones nlb-guard from GitHub')
  const local = runs.map((run) => run.replace(source, `${ROOT} "$RUNNER_TEMP/nlb-guard" && git -C "$RUNNER_TEMP/nlb-guard" checkout --quiet ${headCommit()}`))

  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-ci-'))
  const repo = join(dir, 'repo')
  await userRepository(repo)
  // A runner has some Node and npm; nlb-guard brings its own Node 24.
  const env = { ...process.env, RUNNER_TEMP: dir, PATH: pathWithNode() }
  for (const run of local.slice(0, -1)) {
    const setup = await shell(run, { cwd: repo, env })
    t.equal(setup.code, 0, `${run}: ${setup.output.slice(-2000)}`)
  }
  const gate = local.at(-1) ?? 'false'
  const failed = await shell(gate, { cwd: repo, env })
  t.equal(failed.code, 1, `the gate fails on the broken Service: ${failed.output.slice(-3000)}`)
  t.match(failed.output, /^::error file=k8s\/apps\/dns\.yaml,line=1,title=nlb-guard%3A would change \(S2\)::Service dns: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/m)
  t.notMatch(failed.output, /Service web/, 'the clean Service is not mentioned')

  const manifest = join(repo, 'k8s', 'apps', 'dns.yaml')
  const fixed = await shell(`"$RUNNER_TEMP/nlb-guard/scripts/nlb-guard" fix -f ${manifest} > ${manifest}.fixed && mv ${manifest}.fixed ${manifest}`, { cwd: repo, env })
  t.equal(fixed.code, 0, fixed.output)
  t.match(await readFile(manifest, 'utf8'), /aws-load-balancer-type: nlb/)
  const passed = await shell(gate, { cwd: repo, env })
  t.equal(passed.code, 0, `the gate passes once fixed: ${passed.output}`)
})
