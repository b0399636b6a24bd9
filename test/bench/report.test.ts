import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { README_MARKERS, withBenchResults } from '../../bench/report.ts'
import { ROOT } from '../fixtures/cli.js'

t.test('a full bench run rewrites only what lies between the README markers', async (t) => {
  const readme = `# x\n\n## Performance\n\nintro\n\n${README_MARKERS.begin}\nold figures\n${README_MARKERS.end}\n\nwhy\n`
  const once = withBenchResults(readme, '| new | figures |\n\n')
  t.equal(once, `# x\n\n## Performance\n\nintro\n\n${README_MARKERS.begin}\n| new | figures |\n${README_MARKERS.end}\n\nwhy\n`)
  t.equal(withBenchResults(once ?? '', '| new | figures |\n'), once, 'running it again changes nothing')
  t.equal(withBenchResults('# no markers\n', 'x'), undefined, 'a README without markers is left alone')
  t.equal(withBenchResults(`${README_MARKERS.end}\n${README_MARKERS.begin}\n`, 'x'), undefined, 'markers in the wrong order are left alone')
})

t.test("the README's Performance section holds the figures of bench/results.md", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const markdown = await readFile(join(ROOT, 'bench/results.md'), 'utf8')
  t.equal(withBenchResults(readme, markdown), readme, 'README and bench/results.md agree: rerun `npm run bench` or copy them together')
})
