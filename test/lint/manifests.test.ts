// The manifests pass kube-score with no finding (test/lint/manifests.sh builds it on first use).
import { spawn } from 'node:child_process'
import t from 'tap'
import { ROOT } from '../fixtures/cli.js'

// A first run builds kube-score from the Go module proxy: minutes on 2 cores, then cached.
t.setTimeout(15 * 60_000)

t.test('kube-score finds nothing in any overlay', async (t) => {
  const child = spawn('bash', [`${ROOT}test/lint/manifests.sh`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  t.equal(code, 0, 'test/lint/manifests.sh exits 0', { output })
  t.match(output, /kube-score default/, 'the default overlay was scored')
  t.match(output, /kube-score cert-manager/, 'the cert-manager overlay was scored')
  t.match(output, /kube-score legacy\/1\.16-1\.20 \(Kubernetes v1\.16\)/, 'the 1.16-1.20 overlay was scored against 1.16')
  t.match(output, /kube-score legacy\/1\.21-1\.27 \(Kubernetes v1\.21\)/, 'the 1.21-1.27 overlay was scored against 1.21')
  t.notMatch(output, /\[(WARNING|CRITICAL)\]/, 'no finding')
})
