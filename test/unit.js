// @ts-check
import { readFileSync } from 'node:fs'
import process from 'node:process'
import { URL } from 'node:url'

/**
 * The unit tier, `npm run test:unit`: tests that run in-process, with no server, cluster or child
 * process, for the edit loop (under a minute). Each test file is listed with the source files it is
 * the test of; tap counts coverage only of those (its --coverage-map), so a file is covered by its
 * own tests, not by one that happens to pass through it, and the run fails unless every line,
 * branch and function of them is covered. A line left out carries `c8 ignore` and its reason.
 * `npm test` still runs the whole suite with coverage of everything.
 */
export const UNIT = {
  'test/rules/service.test.ts': ['webhook/rules/service.ts', 'webhook/rules/controller.ts', 'webhook/rules/attributes.ts', 'webhook/rules/decision.ts', 'webhook/rules/patch.ts'],
  'test/rules/attributes.test.ts': ['webhook/rules/attributes.ts'],
  'test/rules/pod.test.ts': ['webhook/rules/pod.ts', 'webhook/rules/injection.ts', 'webhook/rules/patch.ts', 'webhook/rules/version.ts'],
  'test/rules/service-index.test.ts': ['webhook/rules/service-index.ts'],
  // Properties over the rules and the codec: they prove behaviour, the files above own the coverage.
  'test/property/service.test.ts': null,
  'test/property/pod.test.ts': null,
  'test/property/admission.test.ts': null,
  'test/property/shapes.test.ts': null,
  'test/admission/handler.test.ts': ['webhook/admission/handler.ts', 'webhook/admission/pod-rules.ts', 'webhook/admission/response.ts'],
  'test/admission/response.test.ts': ['webhook/admission/response.ts', 'webhook/admission/review.ts'],
  'test/config.test.ts': ['webhook/config.ts'],
  'test/cluster/version.test.ts': ['webhook/cluster/version.ts'],
  'test/events/owners.test.ts': ['webhook/events/owners.ts'],
  'test/lib/args.test.ts': ['lib/args.ts'],
  'test/lib/retry.test.ts': ['lib/retry.ts'],
  'test/lib/shared.test.ts': ['lib/dns.ts', 'lib/errors.ts', 'lib/record.ts'],
  'test/certs/issue.test.ts': ['certs/issue.ts', 'certs/bundle.ts'],
  'test/certs/rotation.test.ts': ['certs/rotation.ts'],
  'test/certs/rollover.test.ts': ['certs/rollover.ts', 'certs/bundle.ts'],
  'test/certs/inject.test.ts': ['certs/inject.ts'],
  'test/certs/bootstrap.test.ts': ['certs/bootstrap.ts'],
  'test/certs/command.test.ts': ['certs/command.ts', 'certs/bundle.ts'],
  'test/server/certificates.test.ts': null,
  'test/server/serve-command.test.ts': ['webhook/server/serve.ts'],
  // The report's arithmetic and printing are exercised whole by the bench smoke run (not in this tier).
  'test/bench/report.test.ts': null,
  'test/bench/settings.test.ts': ['bench/settings.ts'],
  // This map's own checks (it is not a source file of the product).
  'test/unit.test.ts': null,
}

/** tap's --coverage-map: the files a test file's coverage counts; null for none (outside the tier too). */
export default function coverageMap(/** @type {string} */ testFile) {
  const files = UNIT[/** @type {keyof typeof UNIT} */ (testFile.replaceAll('\\', '/'))]
  return files === undefined ? null : files
}

/**
 * The least coverage, in percent over the files above, that the tier may have: a little under what
 * it had when set (lines 98.2, branches 91.8, functions 96.4), so a change that leaves new code
 * untested fails `npm run test:unit`. Raise them as tests are added; never lower them to pass.
 */
export const THRESHOLDS = { lines: 97, statements: 97, branches: 90, functions: 95 }

/** What falls short in a tap json-summary report, one line per total under its threshold. */
export function shortfalls(/** @type {{ total: Record<string, { pct: number }> }} */ summary) {
  return Object.entries(THRESHOLDS)
    .filter(([metric, least]) => (summary.total[metric]?.pct ?? 0) < least)
    .map(([metric, least]) => `${metric}: ${summary.total[metric]?.pct ?? 0}% < ${least}%`)
}

// `node test/unit.js` prints the tier's test files, for the npm script to hand to tap;
// `node test/unit.js --check` fails when the coverage tap just wrote is under THRESHOLDS.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  if (process.argv[2] === '--check') {
    const summary = JSON.parse(readFileSync(new URL('../.tap/report/coverage-summary.json', import.meta.url), 'utf8'))
    const short = shortfalls(summary)
    for (const line of short) process.stderr.write(`test:unit coverage below its threshold (test/unit.js): ${line}\n`)
    process.exitCode = short.length === 0 ? 0 : 1
  } else {
    process.stdout.write(`${Object.keys(UNIT).join('\n')}\n`)
  }
}
