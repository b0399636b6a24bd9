// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/*
 * Which way imports may point (DESIGN.md, "Layout"). Each entry: the files, and the imports they
 * may not have, as regular expressions over the import specifier, with the reason ESLint prints.
 * test/lint/imports.test.ts proves each edge fails the lint when it comes back.
 */
const production = { regex: String.raw`(^|/)(test|bench|testkit)/`, message: 'production code imports nothing from test/, bench/ or testkit/' }
const BOUNDARIES = [
  {
    files: ['lib/**'],
    patterns: [production, { regex: String.raw`^\.\./`, message: 'lib/ is the leaf every folder shares: it imports nothing of theirs' }],
  },
  {
    files: ['certs/**'],
    patterns: [production, { regex: String.raw`(^|/)webhook/`, message: 'certs/ exposes functions and small interfaces; the server (webhook/server/) does the wiring' }],
  },
  {
    files: ['webhook/rules/**'],
    patterns: [
      production,
      { regex: String.raw`^\.\./(?!k8s/|text/|\.\./lib/)`, message: 'rules are pure: they take plain data (webhook/k8s/objects.ts) and own their input types' },
      { regex: String.raw`^(fastify|@kubernetes/client-node|prom-client|close-with-grace|node:fs|node:net|node:http|node:https)`, message: 'rules are pure: no I/O' },
      { regex: String.raw`^\./service\.js$`, message: 'shared object helpers live in webhook/k8s/objects.ts, not in the Service rule' },
    ],
  },
  { files: ['webhook/**', 'sidecar/**'], ignores: ['webhook/rules/**'], patterns: [production] },
  {
    files: ['testkit/**'],
    patterns: [{ regex: String.raw`(^|/)(test|bench)/`, message: 'testkit/ is shared by test/ and bench/: it imports neither' }],
  },
  // bench/: nothing from test/ (shared builders are in testkit/), and no import circle: results.ts
  // holds the shapes, report.ts the arithmetic and printing, the measuring modules use both.
  ...(() => {
    const noTest = { regex: String.raw`(^|/)test/`, message: 'bench/ imports nothing from test/: shared builders live in testkit/' }
    const upward = (names) => ({ regex: String.raw`^\./(${names})\.ts$`, message: 'bench imports point one way: results.ts ← report.ts ← pod-cache.ts, run.ts' })
    return [
      { files: ['bench/**'], ignores: ['bench/results.ts', 'bench/report.ts'], patterns: [noTest] },
      { files: ['bench/results.ts'], patterns: [noTest, upward('report|pod-cache|run')] },
      { files: ['bench/report.ts'], patterns: [noTest, upward('pod-cache|run')] },
    ]
  })(),
]

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/', 'bench/controller-runtime/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['test/**', 'bench/**'],
    // Tests match literal YAML, where the exact run of spaces is the point.
    rules: { 'no-console': 'off', 'no-regex-spaces': 'off' },
  },
  ...BOUNDARIES.map(({ files, ignores, patterns }) => ({
    files,
    ...(ignores === undefined ? {} : { ignores }),
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  })),
  {
    // `import()` is not an import declaration: the same boundary for certs/, written for the syntax.
    files: ['certs/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression > Literal[value=/(^|\\/)webhook\\//]', message: 'certs/ imports nothing from webhook/, not even lazily' },
      ],
    },
  },
)
