import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ROOT } from './build.ts'
import { markdownReport, README_MARKERS, textReport, withBenchResults } from './report.ts'
import type { Results } from './results.ts'
import type { Settings } from './settings.ts'

/**
 * Where a run's results go: the JSON and markdown files, the terminal, and, for a full run to the
 * default file, README.md's Performance section.
 */
export async function writeOutputs(results: Results, settings: Settings, log: (line: string) => void): Promise<void> {
  const markdown = markdownReport(results)
  const out = settings.out
  const markdownFile = out.endsWith('.json') ? out.replace(/\.json$/, '.md') : `${out}.md`
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`)
  await writeFile(markdownFile, markdown)
  process.stdout.write(textReport(results))
  process.stdout.write(`\n--- markdown for the README's Performance section (also in ${markdownFile}) ---\n\n${markdown}\n`)
  log(`wrote ${out} and ${markdownFile}`)
  // Only a full run with the default output speaks for the project: --quick and --out runs leave the README alone.
  if (!settings.quick && out === join(ROOT, 'bench/results.json')) {
    log((await updateReadme(markdown)) ? 'updated the Performance figures in README.md' : `README.md has no ${README_MARKERS.begin} … ${README_MARKERS.end} markers: not updated`)
  }
}

/** Puts a full run's markdown into the README's Performance section; false when it has no markers. */
async function updateReadme(markdown: string): Promise<boolean> {
  const file = join(ROOT, 'README.md')
  const updated = withBenchResults(await readFile(file, 'utf8'), markdown)
  if (updated === undefined) return false
  await writeFile(file, updated)
  return true
}
