// There is no Docker engine here, so this test performs the Dockerfile's steps itself, in a
// temporary folder outside the repository, taking the commands from the Dockerfile so the two
// cannot drift: the build stage's COPYs and `npm run build`, the production install, the final
// stage's COPYs. Then it runs the ENTRYPOINT with Node 24, as the image would. The same for the
// `sidecar` target: its Go build, then the one file its scratch image holds, run as its ENTRYPOINT.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, symlink } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { basename, delimiter, dirname, isAbsolute, join, posix, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort, ROOT, waitFor } from '../fixtures/cli.js'
import { httpsRequest } from '../fixtures/https.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { sidecarBinary } from '../fixtures/sidecar.js'

// About 30 s alone; more when the whole suite shares 2 cores.
t.setTimeout(180_000)

const execFileAsync = promisify(execFile)

interface Instruction {
  readonly keyword: string
  readonly args: string
}
interface Stage {
  readonly name: string
  readonly image: string
  readonly instructions: Instruction[]
}

/**
 * Just enough of the Dockerfile syntax for our Dockerfile: comments, `\` continuations, global
 * ARGs expanded in FROM, `FROM image AS name`. Anything else it does not know fails the test.
 */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = []
  let pending = ''
  for (const line of text.split('\n')) {
    // Comment lines are dropped before continuations are joined, as Docker does.
    if (/^\s*#/.test(line)) continue
    if (/\\\s*$/.test(line)) {
      pending += line.replace(/\\\s*$/, ' ')
      continue
    }
    const whole = (pending + line).trim()
    pending = ''
    if (whole !== '') logical.push(whole)
  }
  const args = new Map<string, string>()
  const stages: Stage[] = []
  for (const line of logical) {
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? []
    const upper = keyword.toUpperCase()
    if (upper === 'FROM') {
      const expanded = rest.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '')
      const [, image = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(expanded) ?? []
      stages.push({ name: name ?? `#${stages.length}`, image, instructions: [] })
    } else if (upper === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = rest.split('=', 2)
      args.set(name, value)
    } else {
      const stage = stages.at(-1)
      if (stage === undefined) throw new Error(`${upper} before FROM`)
      stage.instructions.push({ keyword: upper, args: rest })
    }
  }
  return { args, stages }
}

function stageNamed(stages: readonly Stage[], name: string): Stage {
  const stage = stages.find((s) => s.name === name)
  if (stage === undefined) throw new Error(`no stage ${name} in the Dockerfile`)
  return stage
}

const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)

function workdir(stage: Stage): string {
  const dirs = of(stage, 'WORKDIR')
  // A stage without WORKDIR (FROM scratch) works in /, as Docker does.
  if (dirs.length === 0) return '/'
  if (dirs.length !== 1 || !isAbsolute(dirs[0] ?? '')) throw new Error(`stage ${stage.name}: expected one absolute WORKDIR`)
  return dirs[0] ?? '/'
}

/** `COPY [--from=S] SRC... DEST` */
function parseCopy(text: string): { from?: string; sources: string[]; dest: string } {
  const words = text.split(/\s+/)
  const from = words[0]?.startsWith('--from=') ? words.shift()?.slice('--from='.length) : undefined
  const dest = words.pop() ?? ''
  if (words.some((w) => w.startsWith('--')) || words.length === 0) throw new Error(`COPY ${text}: unsupported`)
  return { ...(from !== undefined && { from }), sources: words, dest }
}

/** npm as the image runs it: on this Node (24), not on whatever Node `npm` on PATH would pick. */
async function npmCli(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    try {
      const cli = join(dirname(await realpath(join(dir, 'npm'))), 'npm-cli.js')
      await stat(cli)
      return cli
    } catch {
      // not in this directory
    }
  }
  throw new Error('npm is not on PATH')
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject)
  })
}

const dockerfile = parseDockerfile(await readFile(join(ROOT, 'Dockerfile'), 'utf8'))
const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
  scripts: Record<string, string>
  devDependencies: Record<string, string>
}
const final = dockerfile.stages.at(-1)
if (final === undefined) throw new Error('the Dockerfile has no stage')

const SIDECAR_STAGES = new Set(['sidecar-build', 'sidecar'])

t.test('the Dockerfile itself', async (t) => {
  t.equal(dockerfile.args.get('NODE_VERSION'), manifest.devDependencies['node'], 'NODE_VERSION is the Node that package.json pins')
  t.equal(dockerfile.args.get('NODE_VERSION')?.split('.')[0], process.versions.node.split('.')[0], 'the Node these tests run on')
  for (const stage of dockerfile.stages.filter((s) => !SIDECAR_STAGES.has(s.name))) t.equal(stage.image, `node:${dockerfile.args.get('NODE_VERSION')}-bookworm-slim`, `stage ${stage.name}: the pinned Node image`)
  t.equal(stageNamed(dockerfile.stages, 'sidecar-build').image, `golang:${dockerfile.args.get('GO_VERSION')}-bookworm`, 'the sidecar builds with the pinned Go')
  const goLine = /^go (\d+)\.(\d+)/m.exec(await readFile(join(ROOT, 'sidecar/go.mod'), 'utf8'))
  const [major = 0, minor = 0] = (dockerfile.args.get('GO_VERSION') ?? '').split('.').map(Number)
  t.ok(goLine && (major > Number(goLine[1]) || (major === Number(goLine[1]) && minor >= Number(goLine[2]))), `GO_VERSION ${dockerfile.args.get('GO_VERSION')} is at least go.mod's go line`)
  t.equal(stageNamed(dockerfile.stages, 'sidecar').image, 'scratch', 'the sidecar image is FROM scratch')
  t.not(final.name, 'sidecar', 'the default target (the last stage) is still nlb-guard itself')
  t.same(of(final, 'ENTRYPOINT').map((e) => JSON.parse(e) as unknown), [['node', '--max-semi-space-size=4', '/app/dist/bundle/bin.js']])
  t.same(of(final, 'CMD').map((e) => JSON.parse(e) as unknown), [['serve']])
  t.same(of(final, 'USER'), ['65532:65532'], 'the uid and gid the manifests run as')

  // Everything the build copies from the context must survive .dockerignore (`*`, then `!name`).
  const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  t.equal(ignore[0], '*', '.dockerignore starts by leaving everything out')
  const allowed = new Set(ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')))
  const fromContext = dockerfile.stages.flatMap((s) => of(s, 'COPY').map(parseCopy)).filter((c) => c.from === undefined).flatMap((c) => c.sources)
  for (const source of new Set(fromContext)) t.ok(allowed.has(source.split('/')[0] ?? ''), `${source} is in the build context`)
  t.ok(ignore.includes('sidecar/*_test.go'), "the sidecar's tests stay out of the context")
})

/** The files a context COPY source names: a path, or a `dir/*.ext` glob less what .dockerignore leaves out. */
async function contextFiles(source: string): Promise<string[]> {
  if (!source.includes('*')) return [source]
  const [dir = '', pattern = ''] = [posix.dirname(source), posix.basename(source)]
  const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l.includes('*') && !l.startsWith('#'))
  const toRegExp = (glob: string) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`)
  return (await readdir(join(ROOT, dir))).map((name) => `${dir}/${name}`).filter((path) => toRegExp(`${dir}/${pattern}`).test(path) && !ignored.some((glob) => toRegExp(glob).test(path)))
}

t.test('the sidecar image (target `sidecar`), built without Docker: one static binary, non-root, runs', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'nlb-guard-sidecar-image-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const build = stageNamed(dockerfile.stages, 'sidecar-build')
  const image = stageNamed(dockerfile.stages, 'sidecar')
  const rootOf = (stage: Stage) => join(tmp, stage.name)
  const inStage = (stage: Stage, path: string) => join(rootOf(stage), posix.relative(workdir(stage), posix.resolve(workdir(stage), path)))
  await mkdir(rootOf(build), { recursive: true })
  const copied: string[] = []
  for (const { keyword, args } of build.instructions) {
    if (keyword === 'COPY') {
      const copy = parseCopy(args)
      t.equal(copy.from, undefined, 'the build stage copies from the context')
      for (const source of copy.sources) {
        for (const file of await contextFiles(source)) {
          copied.push(file)
          await cp(join(ROOT, file), join(inStage(build, copy.dest), basename(file)))
        }
      }
    } else if (keyword === 'RUN') {
      t.match(args, /^CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o \S+ \.$/, 'the same go build as sidecar/build.sh')
      await execFileAsync('sh', ['-c', args], { cwd: rootOf(build) })
    }
  }
  t.ok(copied.includes('sidecar/go.mod') && copied.includes('sidecar/main.go'), 'go.mod and the sources')
  t.notOk(copied.some((f) => f.endsWith('_test.go') || f.endsWith('.sh')), 'no tests, no build script')

  await mkdir(rootOf(image), { recursive: true })
  for (const copy of of(image, 'COPY').map(parseCopy)) {
    t.equal(copy.from, 'sidecar-build', 'the image copies from the build stage only')
    for (const source of copy.sources) await cp(inStage(build, source), inStage(image, copy.dest))
  }
  const files = await readdir(rootOf(image), { recursive: true })
  t.same(files, ['nlb-guard-healthcheck'], 'the image holds one file: the binary')
  const binary = join(rootOf(image), 'nlb-guard-healthcheck')
  const size = (await stat(binary)).size
  t.ok(size <= 10e6, `the image's one layer is ${size.toLocaleString('en')} bytes (target ≤ 10 MB)`)
  t.same(of(image, 'USER'), ['65532:65532'], 'non-root: the uid and gid the injected container runs as')
  const entrypoint = JSON.parse(of(image, 'ENTRYPOINT')[0] ?? '[]') as string[]
  t.same(entrypoint, ['/nlb-guard-healthcheck'], 'the binary is the entry point: the injected args are its flags')
  t.equal(of(image, 'CMD').length, 0, 'no CMD: the Pod rule gives the arguments')
  const { stdout } = await execFileAsync(inStage(image, entrypoint[0] ?? ''), ['--help'])
  t.match(stdout, /^Usage: nlb-guard-healthcheck --port P/)
  const built = await readFile(await sidecarBinary())
  t.ok((await readFile(binary)).equals(built), 'byte for byte the binary `npm run sidecar:build` makes (tests and bench run that one)')

  const config = (await import('../../webhook/config.js')).SidecarConfig.parse({})
  t.equal(config.image, `ghcr.io/nlb-guard/nlb-guard-healthcheck:${manifest.version}`, 'sidecar.image defaults to this image, tagged like nlb-guard')
})

t.test('the production image, built without Docker, serves', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'nlb-guard-image-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  const npm = await npmCli()
  const runNpm = async (cwd: string, args: readonly string[]) => {
    try {
      await execFileAsync(process.execPath, [npm, ...args], { cwd, maxBuffer: 16 << 20 })
    } catch (error: unknown) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string }
      throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error })
    }
  }

  // Each stage's WORKDIR becomes a folder of its own; container paths map into it.
  const roots = new Map(dockerfile.stages.map((stage) => [stage.name, join(tmp, stage.name.replace(/\W/g, '_'))]))
  const hostPath = (stage: Stage, path: string): string => {
    const inside = posix.resolve(workdir(stage), path)
    const rel = posix.relative(workdir(stage), inside)
    if (rel.startsWith('..')) throw new Error(`stage ${stage.name}: ${path} is outside WORKDIR ${workdir(stage)}`)
    return join(roots.get(stage.name) ?? tmp, rel)
  }
  const perform = async (stage: Stage, run: (command: string, root: string) => Promise<void>) => {
    const root = roots.get(stage.name) ?? tmp
    await mkdir(root, { recursive: true })
    for (const { keyword, args } of stage.instructions) {
      if (keyword === 'COPY') {
        const copy = parseCopy(args)
        const from = copy.from === undefined ? undefined : stageNamed(dockerfile.stages, copy.from)
        for (const source of copy.sources) {
          const src = from === undefined ? join(ROOT, source) : hostPath(from, source)
          const isDir = (await stat(src)).isDirectory()
          // Docker: a directory's contents go to DEST; a file goes into DEST/ or becomes DEST.
          const dest = isDir || !copy.dest.endsWith('/') ? hostPath(stage, copy.dest) : join(hostPath(stage, copy.dest), basename(source))
          await cp(src, dest, { recursive: true })
        }
      } else if (keyword === 'RUN') {
        await run(args, root)
      }
    }
  }

  const build = stageNamed(dockerfile.stages, 'build')
  const started = Date.now()
  await perform(build, async (command, root) => {
    if (/^npm ci\b/.test(command)) {
      // The build stage installs every dependency from the same lockfile the repository's
      // node_modules was installed from: reuse it rather than spend half a minute again.
      await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir')
      return
    }
    const [, script] = /^npm run (\S+)$/.exec(command) ?? []
    if (script === undefined || manifest.scripts[script] === undefined) throw new Error(`build stage: unexpected RUN ${command}`)
    await runNpm(root, ['run', script])
  })
  t.comment(`build stage: ${Date.now() - started} ms`)

  const dependencies = stageNamed(dockerfile.stages, 'production-dependencies')
  const installs: string[] = []
  await perform(dependencies, async (command, root) => {
    const [, args] = /^npm (ci .*)$/.exec(command) ?? []
    if (args === undefined) throw new Error(`production-dependencies stage: unexpected RUN ${command}`)
    installs.push(command)
    // --prefer-offline: from npm's cache when it has the tarballs (it does wherever the repository
    // was installed); it changes where packages come from, not which.
    await runNpm(root, [...args.split(/\s+/), '--prefer-offline'])
  })
  t.same(installs, ['npm ci --omit=dev --ignore-scripts --no-audit --no-fund'], 'the production install')
  t.comment(`production install: ${Date.now() - started} ms`)

  await perform(final, async (command) => {
    // The final stage's RUN only trims the base image (npm, yarn); it must leave the app alone.
    t.notMatch(command, new RegExp(workdir(final)), `final stage RUN leaves ${workdir(final)} alone`)
  })
  const app = roots.get(final.name) ?? tmp

  t.test('no devDependency made it in', async (t) => {
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
    const devOnly = Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.dev === true).map(([path]) => path)
    t.ok(devOnly.length > 0)
    const present = (await Promise.all(devOnly.map(async (path) => ((await stat(join(app, path)).catch(() => undefined)) ? path : undefined)))).filter(Boolean)
    t.same(present, [], 'no package that only devDependencies need')
    for (const name of ['tap', 'typescript', 'node']) t.notOk(await stat(join(app, 'node_modules', name)).catch(() => undefined), `no ${name}`)
    t.ok(await stat(join(app, 'node_modules', 'fastify')), 'the dependencies are there')
  })

  // node, its flags, the script: the flags run here too, so a flag this Node rejects fails the test.
  const [entrypointNode, ...rest] = JSON.parse(of(final, 'ENTRYPOINT')[0] ?? '[]') as string[]
  const entrypointScript = rest.pop() ?? ''
  t.equal(entrypointNode, 'node')
  t.ok(rest.every((flag) => flag.startsWith('--')), 'only Node flags between node and the script')
  const script = hostPath(final, entrypointScript)
  const entrypoint = [...rest, script, ...(JSON.parse(of(final, 'CMD')[0] ?? '[]') as string[])]
  t.match(relative(app, script), /^dist\//, 'the entry point is in the copied dist/')
  const cli = (args: readonly string[]) => execFileAsync(process.execPath, [...rest, script, ...args], { cwd: app })

  t.test('the health checker is no longer in this image', async (t) => {
    const error = await cli(['healthcheck', '--help']).then(() => undefined, (e: { code: number; stderr: string }) => e)
    t.equal(error?.code, 2)
    t.match(error?.stderr, /unknown command "healthcheck"/)
  })

  t.test('`nlb-guard --version` finds package.json', async (t) => {
    t.equal((await cli(['--version'])).stdout.trim(), manifest.version)
  })

  t.test('CMD serve: ready on the metrics port, admits over TLS, stops on SIGTERM', async (t) => {
    const [port, metricsPort] = [await freePort(), await freePort()]
    const child = spawn(process.execPath, [...entrypoint, '--kube-version', '1.30.0', '--cert-mode', 'self-signed', '--port', String(port), '--metrics-port', String(metricsPort), '--address', '127.0.0.1', '--shutdown-delay', '0'], {
      cwd: app,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let log = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    await waitFor('the generated CA in the log', async () => /"caFile":"[^"]+"/.test(log)).catch((error: unknown) => {
      throw new Error(`serve did not start:\n${log}`, { cause: error })
    })
    await waitFor('readiness on the metrics port', async () => (await httpStatus(metricsPort, '/readyz')) === 200)
    t.equal(await httpStatus(metricsPort, '/healthz'), 200)
    const ca = await readFile(/"caFile":"([^"]+)"/.exec(log)?.[1] ?? '')
    const res = await httpsRequest({ port, path: '/mutate', ca, body: JSON.stringify(reviewFor(serviceObject(), { uid: 'from-the-image' })) })
    t.equal(res.status, 200)
    t.match(JSON.parse(res.body), { response: { uid: 'from-the-image', allowed: true, patchType: 'JSONPatch' } })
    child.kill('SIGTERM')
    const [code] = (await once(child, 'exit')) as [number | null]
    t.equal(code, 0, 'a clean exit')
  })
})
