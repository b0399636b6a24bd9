import { spawn, execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { parse } from 'yaml'
import { ROOT } from '../fixtures/cli.js'

/** The YAML block the README marks with `<!-- NAME -->`, parsed. */
export async function readmeBlock(name: string): Promise<unknown> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const block = new RegExp(`<!-- ${name} -->\\n\`\`\`yaml\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1]
  if (block === undefined) throw new Error(`README.md has no ${name} block`)
  return parse(block)
}

/** This checkout's committed HEAD: what a user's CI would fetch from GitHub. */
export function headCommit(): string {
  return execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()
}

/** A user's repository: one broken UDP Service and one clean TCP Service under k8s/. */
export async function userRepository(dir: string): Promise<void> {
  await mkdir(join(dir, 'k8s', 'apps'), { recursive: true })
  await writeFile(join(dir, 'k8s', 'apps', 'dns.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: dns\nspec:\n  type: LoadBalancer\n  selector: {app: dns}\n  ports:\n  - port: 53\n    protocol: UDP\n')
  await writeFile(join(dir, 'k8s', 'web.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 443\n')
  for (const args of [['init', '-q'], ['add', '.'], ['-c', 'user.email=ci@example.com', '-c', 'user.name=ci', 'commit', '-qm', 'manifests']]) {
    execFileSync('git', args, { cwd: dir })
  }
}

/** PATH with the Node that runs the tests (24, from the npm `node` package) first, as setup-node puts it. */
export function pathWithNode(...before: string[]): string {
  return [...before, dirname(process.execPath), process.env['PATH'] ?? ''].join(':')
}

export interface ShellResult {
  readonly code: number | null
  readonly output: string
}

export function shell(command: string, options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', command], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}
