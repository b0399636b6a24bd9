import { Readable } from 'node:stream'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import type { CliIo } from '../../lib/cli.js'
import { checkCommand, fixCommand } from '../../webhook/offline/command.js'
import { ROOT, runCli } from '../fixtures/cli.js'

function capture(input = ''): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    stdin: Readable.from([input]),
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    out: () => out,
    err: () => err,
  }
}

const seed = (file: string) => join(ROOT, 'test/fixtures/seeds', file)

t.test('fix --kube-version 1.19.16 on seed 001 combined echo: exit 1, TCP and UDP named, two Services suggested', async (t) => {
  const io = capture()
  t.equal(await fixCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.19.16'], io), 1)
  t.match(io.err(), /denied: Service echo is a LoadBalancer with more than one protocol \(TCP and UDP/)
  t.match(io.err(), /"echo-tcp" with the TCP ports and "echo-udp" with the UDP ports/)
  t.equal(io.out(), '', 'nothing printed when an object would be denied')
})

t.test('fix --kube-version 1.30.0 on seed 001 combined echo: the nlb annotation added, with a warning why', async (t) => {
  const io = capture()
  t.equal(await fixCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.30.0'], io), 0)
  const fixed = parse(io.out())
  t.equal(fixed.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-type'], 'nlb')
  t.match(io.err(), /warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb": the Service has UDP ports/)
  t.match(io.out(), /^# Seed 001 \("Bare TCP and UDP ingress on Kubernetes"\): one Service for both protocols,\n# which clusters before 1\.20 reject\.\n/, 'comments kept')
  t.match(io.out(), /metadata:\n  name: echo\n  annotations:\n    service\.beta\.kubernetes\.io\/aws-load-balancer-type: nlb\nspec:\n  type: LoadBalancer\n  selector:\n    app: echo\n  ports:\n  - name: tcpecho/, 'key order and sequence style kept')
})

const multi = `# a ConfigMap nobody touches
apiVersion: v1
kind: ConfigMap
metadata:   {name: settings}   # odd spacing kept
data:
  key: "value"
---
# the UDP Service
apiVersion: v1
kind: Service
metadata:
  name: dns
  annotations: {}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local # keep client IPs
  ports:
    - name: dns
      port: 53
      protocol: UDP
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  ports:
    - port: 443
`

t.test('fix on a multi-document stream from stdin keeps untouched documents byte for byte', async (t) => {
  const io = capture(multi)
  t.equal(await fixCommand(['--kube-version', '1.30.0'], io), 0)
  const [configMap, dns, web] = io.out().split(/^---\n/m)
  const [configMapIn, , webIn] = multi.split(/^---\n/m)
  t.equal(configMap, configMapIn, 'the ConfigMap is byte for byte')
  t.equal(web, webIn, 'the TCP Service is byte for byte')
  t.match(dns, /^# the UDP Service\n/)
  t.match(dns, /externalTrafficPolicy: Local # keep client IPs/)
  t.match(dns, /annotations:\n    service\.beta\.kubernetes\.io\/aws-load-balancer-type: nlb\n    service\.beta\.kubernetes\.io\/aws-load-balancer-cross-zone-load-balancing-enabled: "true"\n/)
  t.match(dns, /ports:\n    - name: dns\n/, 'indented sequences stay indented')
  t.equal(io.err().match(/warning:/g)?.length, 2, 'one warning per change')
})

t.test('fix on clean input prints it unchanged and warns nothing', async (t) => {
  const io = capture()
  t.equal(await fixCommand(['-f', seed('000-udp-eks.yaml')], io), 0)
  const { readFile } = await import('node:fs/promises')
  t.equal(io.out(), await readFile(seed('000-udp-eks.yaml'), 'utf8'))
  t.equal(io.err(), '')
})

t.test('check: exit 0 when clean, 1 with what would change or be denied', async (t) => {
  const clean = capture()
  t.equal(await checkCommand(['-f', seed('000-udp-eks.yaml')], clean), 0)
  t.match(clean.out(), /nothing to change/)
  const changes = capture()
  t.equal(await checkCommand(['-f', seed('001-echo-split.yaml')], changes), 1)
  t.match(changes.out(), /001-echo-split\.yaml: Service echo-udp: would change: added annotation/)
  t.notMatch(changes.out(), /echo-tcp: would/, 'the TCP Service needs nothing')
  const denied = capture()
  t.equal(await checkCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.19.16'], denied), 1)
  t.match(denied.out(), /Service echo: would be denied: .*TCP and UDP/)
})

t.test('bad input: a YAML syntax error names the file and document; a missing file is reported', async (t) => {
  const broken = capture('apiVersion: v1\nkind: Service\nmetadata: [unclosed\n')
  t.equal(await fixCommand([], broken), 1)
  t.match(broken.err(), /<stdin>: document 1:/)
  const missing = capture()
  t.equal(await checkCommand(['-f', '/nonexistent/x.yaml'], missing), 1)
  t.match(missing.err(), /cannot read \/nonexistent\/x\.yaml/)
  const flag = capture()
  t.equal(await fixCommand(['--frobnicate'], flag), 2)
  t.match(flag.err(), /Unknown option '--frobnicate'/)
  const version = capture()
  t.equal(await fixCommand(['--kube-version', 'banana'], version), 1)
  t.match(version.err(), /kubeVersion: expected a Kubernetes version/)
})

t.test('help for every command exits 0', async (t) => {
  const { main } = await import('../../webhook/cli/main.js')
  for (const args of [['--help'], ['serve', '--help'], ['fix', '--help'], ['check', '--help'], ['certs', '--help'], ['healthcheck', '--help']]) {
    const io = capture()
    t.equal(await main(args, io), 0, `nlb-guard ${args.join(' ')} exits 0`)
    t.match(io.out(), /Usage: nlb-guard/)
  }
  const io = capture()
  t.equal(await main(['frobnicate'], io), 2)
  t.match(io.err(), /unknown command "frobnicate"/)
})

t.test('the real CLI: exit codes reach the shell', async (t) => {
  const [denied, fixed] = await Promise.all([
    runCli(['fix', '-f', seed('001-echo-combined.yaml'), '--kube-version', '1.19.16']),
    runCli(['fix', '--kube-version', '1.30.0'], { input: multi }),
  ])
  t.equal(denied.code, 1)
  t.match(denied.stderr, /denied: .*TCP and UDP/)
  t.equal(fixed.code, 0)
  t.match(fixed.stdout, /aws-load-balancer-type: nlb/)
})

t.test('fix: pods and pod templates that a UDP LoadBalancer Service in the input selects get the sidecar', async (t) => {
  const input = `apiVersion: v1
kind: Service
metadata:
  name: sip
spec:
  type: LoadBalancer
  selector:
    app: sip
  ports:
  - name: sip
    port: 5060
    protocol: UDP
    targetPort: sip
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sip
spec:
  selector:
    matchLabels:
      app: sip
  template:
    metadata:
      labels:
        app: sip
    spec:
      containers:
      - name: server
        image: example/sip
        ports:
        - name: sip
          containerPort: 5060
          protocol: UDP
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata:
          labels:
            app: report
        spec:
          restartPolicy: OnFailure
          containers:
          - name: job
            image: example/report
`
  for (const [version, where] of [['1.30.0', 'initContainers'], ['1.28.0', 'containers']] as const) {
    const io = capture(input)
    t.equal(await fixCommand(['--kube-version', version], io), 0)
    const [, deployment, cronJob] = io.out().split(/^---\n/m).map((d) => parse(d))
    const injected = deployment.spec.template.spec[where].find((c: { name: string }) => c.name === 'nlb-guard-healthcheck')
    t.ok(injected, `${version}: the Deployment's template has the sidecar in ${where}`)
    t.same(injected.args.slice(0, 3), ['healthcheck', '--port', '5060'], 'on the resolved named targetPort')
    t.equal(deployment.spec.template.metadata.annotations['nlb-guard.io/healthcheck-ports'], '5060')
    t.notOk(JSON.stringify(cronJob).includes('nlb-guard-healthcheck'), 'a workload no Service selects is untouched')
    t.match(io.err(), /Deployment sip: warning: added .*nlb-guard-healthcheck/)
  }
  const again = capture(input)
  await fixCommand([], again)
  const twice = capture(again.out())
  t.equal(await fixCommand([], twice), 0)
  t.equal(twice.out(), again.out(), 'fix on its own output changes nothing')
})
