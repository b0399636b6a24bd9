import { ESLint } from 'eslint'
import t from 'tap'
import { ROOT } from '../fixtures/cli.js'

/*
 * The import directions in eslint.config.js, proven by linting one import line as if it stood in
 * a given file: every forbidden edge fails `npm run lint`, and the allowed ones beside it pass.
 */
const eslint = new ESLint({ cwd: ROOT })

async function problems(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${source}\nexport const used = x\n`, { filePath: `${ROOT}${file}` })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax').map((m) => m.message)
}

const forbidden: { file: string; source: string; reason: RegExp }[] = [
  { file: 'certs/x.ts', source: "import type { Config as x } from '../webhook/config.js'", reason: /the server .* does the wiring/ },
  { file: 'certs/x.ts', source: "import { tlsOptions as x } from '../webhook/server/app.js'", reason: /does the wiring/ },
  { file: 'certs/x.ts', source: "const x = await import('../webhook/cluster/kube.js')", reason: /not even lazily/ },
  { file: 'lib/x.ts', source: "import { ConfigError as x } from '../webhook/config.js'", reason: /lib\/ is the leaf/ },
  { file: 'webhook/rules/x.ts', source: "import type { SidecarConfig as x } from '../config.js'", reason: /own their input types/ },
  { file: 'webhook/rules/x.ts', source: "import { admit as x } from '../admission/handler.js'", reason: /own their input types/ },
  { file: 'webhook/rules/x.ts', source: "import x from 'fastify'", reason: /no I\/O/ },
  { file: 'webhook/rules/pod.ts', source: "import { annotationsOf as x } from './service.js'", reason: /webhook\/k8s\/objects.ts/ },
  { file: 'webhook/server/x.ts', source: "import { reviewFor as x } from '../../testkit/reviews.js'", reason: /production code/ },
  { file: 'bench/x.ts', source: "import { reviewFor as x } from '../test/fixtures/reviews.ts'", reason: /bench\/ imports nothing from test\// },
  { file: 'bench/results.ts', source: "import type { PodCacheOptions as x } from './pod-cache.ts'", reason: /point one way/ },
  { file: 'bench/report.ts', source: "import { measurePodCache as x } from './pod-cache.ts'", reason: /point one way/ },
  { file: 'testkit/x.ts', source: "import { ROOT as x } from '../test/fixtures/cli.ts'", reason: /imports neither/ },
]

for (const c of forbidden) {
  t.test(`${c.file} may not: ${c.source}`, async (t) => {
    const found = await problems(c.file, c.source)
    t.equal(found.length, 1, found.join('; '))
    t.match(found[0], c.reason)
  })
}

const allowed: { file: string; source: string }[] = [
  { file: 'webhook/server/x.ts', source: "import { checkKeyPair as x } from '../../certs/serving.js'" },
  { file: 'webhook/rules/x.ts', source: "import { portProtocol as x } from '../k8s/objects.js'" },
  { file: 'webhook/rules/x.ts', source: "import { isRecord as x } from '../../lib/record.js'" },
  { file: 'webhook/rules/x.ts', source: "import { bounded as x } from '../text/bounded.js'" },
  { file: 'certs/x.ts', source: "import { UsageError as x } from '../lib/args.js'" },
  { file: 'bench/x.ts', source: "import { reviewFor as x } from '../testkit/reviews.ts'" },
  { file: 'bench/pod-cache.ts', source: "import { median as x } from './report.ts'" },
  { file: 'test/x.ts', source: "import { reviewFor as x } from '../testkit/reviews.js'" },
]

for (const c of allowed) {
  t.test(`${c.file} may: ${c.source}`, async (t) => {
    t.same(await problems(c.file, c.source), [])
  })
}
