import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { main } from '../../webhook/cli/main.js'
import { checkCommand, fixCommand } from '../../webhook/offline/command.js'
import { capture, runCli } from '../fixtures/cli.js'

/** Every input shape a user has, read as kubectl reads it (issue 16, issue 13 defect 5). */


const NLB = 'service.beta.kubernetes.io/aws-load-balancer-type'
const udpService = (name: string, namespace = 'demo') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: '42' },
  spec: { type: 'LoadBalancer', clusterIP: '10.0.0.7', selector: { app: name }, ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53, nodePort: 31053 }] },
  status: { loadBalancer: {} },
})
const tcpService = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'demo' },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 443, protocol: 'TCP' }] },
})

t.test('kubectl get svc -A -o yaml (a List): check exits 1 and names each broken Service, with its item', async (t) => {
  const { stringify } = await import('yaml')
  const list = stringify({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: [udpService('dns'), tcpService('web'), udpService('sip', 'voice')] })
  const io = capture(list)
  t.equal(await checkCommand(['-', '--output', 'json'], io), 1)
  const records = io.out().trim().split('\n').map((l) => JSON.parse(l))
  const changed = records.filter((r) => r.action === 'change')
  t.same([...new Set(changed.map((r) => `${r.namespace}/${r.name}`))], ['demo/dns', 'voice/sip'], 'each broken Service, and only those')
  t.same(changed.map((r) => r.item), [0, 2], 'the item of the List')
  t.ok(changed.every((r) => r.file === '<stdin>' && r.document === 1 && r.kind === 'Service' && r.rule === 'S2'))
  t.equal(changed[1].line, list.split('\n').findIndex((l, i, all) => l.startsWith('  - ') && all.slice(0, i).filter((x) => x.startsWith('  - ')).length === 2) + 1, 'the line of its item')

  const fixed = capture(list)
  t.equal(await fixCommand(['-'], fixed), 0)
  const out = parse(fixed.out())
  t.equal(out.kind, 'List')
  t.equal(out.items[0].metadata.annotations[NLB], 'nlb')
  t.notOk(out.items[1].metadata.annotations, 'the TCP item untouched')
  t.equal(out.items[2].metadata.annotations[NLB], 'nlb')
})

t.test('typed lists (ServiceList, DeploymentList) whose items carry no kind, as the API returns them', async (t) => {
  const { apiVersion: _a, kind: _k, ...service } = udpService('dns')
  // IP targets: the NLB health-checks the pods, so the Pod rule (injection: auto) adds the sidecar.
  const item = { ...service, metadata: { ...service.metadata, annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } } }
  const pods = {
    apiVersion: 'apps/v1',
    kind: 'DeploymentList',
    items: [{ metadata: { name: 'dns', namespace: 'demo' }, spec: { template: { metadata: { labels: { app: 'dns' } }, spec: { containers: [{ name: 'dns', image: 'coredns', ports: [{ containerPort: 53, protocol: 'UDP' }] }] } } } }],
  }
  const io = capture(`${JSON.stringify({ apiVersion: 'v1', kind: 'ServiceList', items: [item] })}\n`)
  t.equal(await checkCommand([], io), 1)
  t.match(io.out(), /<stdin>:1: Service demo\/dns: would change \(S2\)/)
  const both = capture(`apiVersion: v1\nkind: ServiceList\nitems:\n- ${JSON.stringify(item)}\n---\n${JSON.stringify(pods)}\n`)
  t.equal(await checkCommand(['--kube-version', '1.30.0'], both), 1)
  t.match(both.out(), /Deployment demo\/dns: would change \(P1\): added native sidecar/, 'the Pod rule reads DeploymentList items too')
})

t.test('JSON in, JSON out: fix prints JSON indented as kubectl prints it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-json-'))
  const file = join(dir, 'svc.json')
  await writeFile(file, JSON.stringify(udpService('dns')))
  const io = capture()
  t.equal(await fixCommand(['-f', file], io), 0)
  const value = JSON.parse(io.out())
  t.equal(value.metadata.annotations[NLB], 'nlb')
  t.match(io.out(), /^\{\n    "apiVersion": "v1",\n    "kind": "Service",\n    "metadata": \{\n        "name": "dns",/, 'four spaces, key order kept')
  t.ok(io.out().endsWith('}\n'))
  const split = capture(JSON.stringify({ ...tcpService('echo'), spec: { type: 'LoadBalancer', ports: [{ port: 1, protocol: 'TCP' }, { port: 1, protocol: 'UDP' }] } }))
  t.equal(await fixCommand(['--split'], split), 0)
  const list = JSON.parse(split.out())
  t.equal(list.kind, 'List', 'a split JSON object becomes a List of its parts')
  t.same(list.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['echo-tcp', 'echo-udp'])
})

t.test('-f DIR reads its .yaml, .yml and .json files in name order; -R its subdirectories too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-dir-'))
  const { stringify } = await import('yaml')
  await writeFile(join(dir, 'b.yaml'), stringify(udpService('b')))
  await writeFile(join(dir, 'a.yml'), stringify(udpService('a')))
  await writeFile(join(dir, 'c.json'), JSON.stringify(udpService('c')))
  await writeFile(join(dir, 'notes.txt'), 'not a manifest: {')
  await mkdir(join(dir, 'sub'))
  await writeFile(join(dir, 'sub', 'd.yaml'), stringify(udpService('d')))
  const flat = capture()
  t.equal(await checkCommand(['-f', dir], flat), 1)
  const names = (out: string) => [...out.matchAll(/Service demo\/(\w): would change/g)].map((m) => m[1])
  t.same([...new Set(names(flat.out()))], ['a', 'b', 'c'], 'name order, other extensions and subdirectories skipped')
  const deep = capture()
  t.equal(await checkCommand(['-R', '-f', dir], deep), 1)
  t.same([...new Set(names(deep.out()))], ['a', 'b', 'c', 'd'])
  t.match(flat.out(), new RegExp(`${join(dir, 'a.yml').replaceAll('/', '\\/')}:1: Service demo/a`))
})

t.test('YAML 1.1 as kubectl reads it: port 0123 is 83, merge keys apply, yes is a boolean', async (t) => {
  const octal = capture('apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec:\n  type: LoadBalancer\n  ports: [{port: 0123, protocol: UDP}]\n')
  t.equal(await checkCommand([], octal), 1)
  t.match(octal.out(), /UDP ports \(83\/UDP\)/)
  const merged = capture(`apiVersion: v1
kind: Service
metadata:
  name: dns
x-defaults: &udp-lb
  type: LoadBalancer
  ports:
  - {port: 53, protocol: UDP}
spec:
  <<: *udp-lb
  selector: {app: dns}
`)
  t.equal(await checkCommand([], merged), 1, 'a merge key that makes a UDP LoadBalancer is a finding')
  t.match(merged.out(), /Service dns: would change \(S2\)/)
  const fixed = capture(`# keep me\napiVersion: v1\nkind: Service\nmetadata:\n  name: dns # the name\nx: &lb\n  type: LoadBalancer\n  ports: [{port: 53, protocol: UDP}]\nspec:\n  <<: *lb\n`)
  t.equal(await fixCommand([], fixed), 0)
  t.match(fixed.out(), /^# keep me\n/, 'an edit beside a merge key keeps comments')
  t.match(fixed.out(), /name: dns # the name/)
  t.match(fixed.out(), /<<: \*lb/, 'the merge key itself is kept')
  t.equal(parse(fixed.out(), { version: '1.1', merge: true }).metadata.annotations[NLB], 'nlb')
  const alias = capture('x: &meta\n  name: dns\napiVersion: v1\nkind: Service\nmetadata: *meta\nspec: {type: LoadBalancer, ports: [{port: 53, protocol: UDP}]}\n')
  t.equal(await fixCommand([], alias), 0)
  const expanded = parse(alias.out())
  t.equal(expanded.metadata.annotations[NLB], 'nlb', 'an edit through an alias is written out expanded')
  t.notOk(expanded.x.annotations, "and does not reach the anchor's other users")
  t.match(alias.err(), /printed expanded/)
  const bool = capture('apiVersion: v1\nkind: Service\nmetadata: {name: dns, labels: {enabled: yes}}\nspec: {type: LoadBalancer, ports: [{port: 53, protocol: UDP}]}\n')
  t.equal(await checkCommand([], bool), 3, 'a label value yes is a boolean, which kubectl refuses too')
  t.match(bool.out(), /<stdin>:1: Service dns: cannot read: not a valid v1 Service: metadata\.labels\.enabled: /)
})

t.test('objects that cannot be read are reported with file and document, never skipped; no stack trace', async (t) => {
  const input = `apiVersion: v1
kind: Service
metadata: {name: good}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: bad-port}
spec: {type: LoadBalancer, ports: [{port: "53", protocol: UDP}]}
---
just a string
---
metadata: {name: no-kind}
---
---
# Source: chart/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {template: {spec: {containers: "none"}}}
`
  const io = capture(input)
  t.equal(await checkCommand(['--output', 'json'], io), 3)
  const errors = io.out().trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.action === 'error')
  t.same(errors.map((e) => [e.document, e.line, e.name]), [
    [2, 6, 'bad-port'],
    [3, 11, null],
    [4, 13, 'no-kind'],
    [6, 17, 'web'],
  ])
  t.match(errors[0].message, /not a valid v1 Service: spec\.ports\.0\.port/)
  t.equal(errors[3].helmSource, 'chart/templates/deploy.yaml')
  const fixed = capture(input)
  t.equal(await fixCommand([], fixed), 3)
  t.equal(fixed.out(), '', 'fix prints nothing it could not read whole')

  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
  for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g'].entries()) bomb.push(`${name}: &${name} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)
  const run = await runCli(['check', '-'], { input: `${bomb.join('\n')}\n` })
  t.equal(run.code, 3, 'an alias bomb is an input error')
  t.match(run.stdout, /<stdin>:1: document 1: cannot read: Excessive alias count/)
  t.notMatch(`${run.stdout}${run.stderr}`, /\n\s+at /, 'no stack trace')
})

t.test('Helm output: empty documents are skipped and each finding names its template', async (t) => {
  const input = `---
# Source: dns/templates/empty.yaml
---
# Source: dns/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: dns
spec:
  type: LoadBalancer
  ports:
  - port: 53
    protocol: UDP
`
  const io = capture(input)
  t.equal(await checkCommand([], io), 1)
  t.match(io.out(), /^<stdin>:5 \(dns\/templates\/service\.yaml\): Service dns: would change \(S2\)/)
  const empty = capture('---\n# Source: x/templates/nothing.yaml\n---\n')
  t.equal(await checkCommand([], empty), 0)
  t.match(empty.out(), /nothing to change/)
})

t.test('--output github: workflow commands with file, line and escaped text', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nlb-guard-gh-'))
  const file = join(dir, 'dns.yaml')
  await writeFile(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {type: LoadBalancer, ports: [{port: 53, protocol: UDP}]}\n')
  const io = capture()
  t.equal(await checkCommand(['-o', 'github', file], io), 1)
  const lines = io.out().trim().split('\n')
  t.match(lines[0], new RegExp(`^::error file=${file.replaceAll('/', '\\/')},line=1,title=nlb-guard%3A would change \\(S2\\)::Service dns: added annotation service\\.beta\\.kubernetes\\.io\\/aws-load-balancer-type: "nlb"`))
  t.match(lines[1], /^::notice file=.*,line=1,title=nlb-guard%3A hint::Service dns: Service dns: UDP ports/)
  t.equal(lines.at(-1), 'nlb-guard check: 1 object(s) would be changed or denied')
  const usage = capture()
  t.equal(await main(['check', '-o', 'sarif'], usage), 2)
  t.match(usage.err(), /--output must be one of text, json, github/)
})

t.test('check reads ten thousand documents in one pass', async (t) => {
  // 5,000 UDP Services and 5,000 Deployments in one namespace: before, each Deployment was matched
  // against every Service (49 s for 20,000 documents). The work is now counted by the index test
  // (test/rules/service-index.test.ts); this proves the whole path on the size that was slow.
  const documents: string[] = []
  for (let i = 0; i < 5_000; i++) {
    documents.push(`apiVersion: v1\nkind: Service\nmetadata: {name: s${i}, annotations: {service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip}}\nspec:\n  type: LoadBalancer\n  selector: {app: a${i}}\n  ports: [{port: 53, protocol: UDP}]\n`)
    documents.push(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d${i}}\nspec:\n  template:\n    metadata: {labels: {app: a${i}}}\n    spec: {containers: [{name: c, image: x}]}\n`)
  }
  const io = capture(documents.join('---\n'))
  t.equal(await checkCommand(['--kube-version', '1.30.0', '-o', 'json'], io), 1)
  const records = io.out().trim().split('\n').map((l) => JSON.parse(l))
  const sidecars = records.filter((r) => r.rule === 'P1')
  t.equal(sidecars.length, 5_000, 'each Deployment matched its Service')
  t.match(sidecars[4_999].message, /for Service s4999 \(IP targets: /)
  t.equal(records.filter((r) => r.rule === 'S2').length, 5_000)
})
