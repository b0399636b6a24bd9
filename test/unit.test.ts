import { existsSync } from 'node:fs'
import t from 'tap'
import { ROOT } from './fixtures/cli.js'
// @ts-expect-error: a plain ES module (tap's coverage-map loads it without a TypeScript loader); its types come from JSDoc.
import coverageMap, { shortfalls, THRESHOLDS, UNIT } from './unit.js'

t.test('the unit tier names files that exist, and each source file is some test\'s own', async (t) => {
  for (const [test, sources] of Object.entries(UNIT as Record<string, string[] | null>)) {
    t.ok(existsSync(`${ROOT}${test}`), `${test} exists`)
    for (const source of sources ?? []) t.ok(existsSync(`${ROOT}${source}`), `${source} (covered by ${test}) exists`)
  }
  t.same(coverageMap('test/rules/service.test.ts'), (UNIT as Record<string, unknown>)['test/rules/service.test.ts'])
  t.equal(coverageMap('test/e2e/rules.test.ts'), null, 'a test outside the tier covers nothing there')
})

t.test('coverage under a threshold fails the tier, naming the metric', async (t) => {
  const at = (pct: number) => ({ total: Object.fromEntries(Object.keys(THRESHOLDS).map((metric) => [metric, { pct }])) })
  t.same(shortfalls(at(100)), [])
  t.same(shortfalls({ total: { ...at(100).total, branches: { pct: 80 } } }), [`branches: 80% < ${(THRESHOLDS as Record<string, number>)['branches']}%`])
  t.equal(shortfalls(at(0)).length, Object.keys(THRESHOLDS).length)
})
