// The PrometheusRule and the Grafana dashboard the chart ships: promtool (built from the Go module
// proxy) accepts the rules, and every metric they and the dashboard query exists in the /metrics
// of a running nlb-guard, so no alert or panel waits forever on a name that is never exported.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { serve } from '../fixtures/serve.js'
import { CHART, helmTools, only, run, template, type K8sObject } from '../fixtures/helm.js'

t.setTimeout(60 * 60_000)

interface Rule {
  alert: string
  expr: string
  for?: string
  labels: Record<string, string>
  annotations: Record<string, string>
}
type PrometheusRule = K8sObject & { spec: { groups: Array<{ name: string; rules: Rule[] }> } }
interface Panel {
  title: string
  targets: Array<{ expr: string }>
}

const rules = only<PrometheusRule>(await template(['--set', 'prometheusRule.enabled=true']), 'PrometheusRule')
const dashboard = JSON.parse(await readFile(join(CHART, 'files/dashboard.json'), 'utf8')) as { panels: Panel[]; uid: string; title: string }

/** Metric names in a PromQL expression: identifiers followed by `{`, and bare names (the chart's all carry a selector). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\{/g)].map((m) => m[1] ?? '')
}

t.test('promtool accepts the rules', async (t) => {
  const { promtool } = await helmTools()
  if (promtool === undefined) {
    t.fail('promtool was not built (test/helm/tools/build.sh): the rules are checked below by metric names only')
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'rules.yaml')
  await writeFile(file, stringify({ groups: rules.spec.groups }))
  const checked = await run(promtool, ['check', 'rules', file])
  t.equal(checked.code, 0, `${checked.stdout}${checked.stderr}`)
  t.match(checked.stdout, /SUCCESS: 6 rules found/)
})

t.test('each alert has a severity, a summary and a runbook section in the README', async (t) => {
  const readme = await readFile(join(CHART, '../../README.md'), 'utf8')
  const headings = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => (m[1] ?? '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')))
  for (const rule of rules.spec.groups.flatMap((g) => g.rules)) {
    t.match(rule.labels, { severity: /^(critical|warning)$/ }, rule.alert)
    t.ok(rule.annotations['summary'], `${rule.alert}: a summary`)
    const anchor = /#([a-z0-9-]+)$/.exec(rule.annotations['runbook_url'] ?? '')?.[1]
    t.ok(anchor !== undefined && headings.has(anchor), `${rule.alert}: its runbook_url points at README heading #${anchor}`)
  }
})

t.test('every metric the rules and the dashboard query is exported by nlb-guard', async (t) => {
  const served = await serve(t)
  const body = await new Promise<string>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: served.metricsPort, path: '/metrics' }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
  const exported = new Set([...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap((m) => {
    const name = m[1] ?? ''
    return m[2] === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]
  }))
  // `up` is Prometheus's own, written for every scrape target.
  const queried = [
    ...rules.spec.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ...dashboard.panels.flatMap((p) => p.targets.map((target) => ({ where: `panel "${p.title}"`, expr: target.expr }))),
  ]
  t.ok(queried.length > 15, `${queried.length} queries`)
  for (const { where, expr } of queried) {
    const names = metricNames(expr).filter((name) => name !== 'up')
    t.ok(names.length > 0, `${where} queries a metric`)
    for (const name of names) t.ok(exported.has(name), `${where}: ${name} is exported`)
  }
  t.equal(dashboard.uid, 'nlb-guard', 'a fixed uid, so a re-import replaces the dashboard')
})
