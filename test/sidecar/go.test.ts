// The sidecar's Go unit tests (sidecar/*_test.go: the socket table parser, one poll at a time, the
// HTTP answers, no allocation or descriptor per poll), run by `go test` and reported here one tap
// assertion per Go test, so they count in `npm test` and a failing one fails the run. Also gofmt and
// go vet, which a Go reviewer would run first.
import { execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT } from '../fixtures/cli.js'

// Compiling the test binary (net/http for the client side) takes ~40 s with a cold Go cache on 2 cores.
t.setTimeout(600_000)

const SIDECAR = join(ROOT, 'sidecar')
const env = { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '' }

interface TestEvent {
  readonly Action: string
  readonly Test?: string
  readonly Output?: string
  readonly Elapsed?: number
}

t.test('go test ./... in sidecar/', async (t) => {
  const child = spawn('go', ['test', '-count=1', '-json', './...'], { cwd: SIDECAR, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))

  const events = stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as TestEvent)
  const output = new Map<string, string>()
  for (const event of events) if (event.Test !== undefined && event.Output !== undefined) output.set(event.Test, (output.get(event.Test) ?? '') + event.Output)
  const results = events.filter((e) => e.Test !== undefined && !e.Test.includes('/') && (e.Action === 'pass' || e.Action === 'fail' || e.Action === 'skip'))
  t.ok(results.length >= 10, `go test reported ${results.length} tests`)
  for (const result of results) {
    if (result.Action === 'skip') t.fail(`${result.Test} was skipped: ${output.get(result.Test ?? '') ?? ''}`)
    else t.ok(result.Action === 'pass', `${result.Test} (${result.Elapsed ?? 0} s)`, result.Action === 'fail' ? { diagnostic: true, output: output.get(result.Test ?? '') } : {})
  }
  t.equal(code, 0, `go test exit code${code === 0 ? '' : `:\n${stderr}${stdout.slice(-3000)}`}`)
})

t.test('gofmt and go vet are clean', async (t) => {
  const run = promisify(execFile)
  const gofmt = await run('gofmt', ['-l', '.'], { cwd: SIDECAR, env })
  t.equal(gofmt.stdout, '', 'gofmt -l lists no file')
  const vet = await run('go', ['vet', './...'], { cwd: SIDECAR, env }).then(() => 0, (error: { code: number }) => error.code)
  t.equal(vet, 0, 'go vet')
})
