import { join } from 'node:path'
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parse, parseAllDocuments } from 'yaml'
import { main } from '../../webhook/cli/main.js'
import { checkCommand, fixCommand } from '../../webhook/offline/command.js'
import { capture, ROOT, runCli } from '../fixtures/cli.js'

const seed = (file: string) => join(ROOT, 'test/fixtures/seeds', file)

t.test('fix --kube-version 1.19.16 on seed 001 combined echo: exit 1, TCP and UDP named, two Services suggested', async (t) => {
  const io = capture()
  t.equal(await fixCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.19.16'], io), 1)
  t.match(io.err(), /denied: Service echo is a LoadBalancer with more than one protocol \(TCP and UDP/)
  t.match(io.err(), /"echo-tcp" with the TCP ports and "echo-udp" with the UDP ports/)
  t.equal(io.out(), '', 'nothing printed when an object would be denied')
})

t.test('fix --kube-version 1.30.0 on seed 001 combined echo: the in-tree provider never builds it, so exit 1 and nothing printed', async (t) => {
  const io = capture()
  t.equal(await fixCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.30.0'], io), 1)
  t.equal(io.out(), '', 'a Service that would stay pending is not printed as fixed')
  t.match(io.err(), /Service echo: would stay pending: Service echo mixes TCP and UDP on one LoadBalancer: the in-tree AWS cloud provider never builds/)
  t.match(io.err(), /nothing printed \(--split writes a mixed-protocol Service as one Service per protocol\)/)
})

t.test('fix --split on seed 001 (1.19.16 and 1.30.0): echo-tcp and echo-udp, the UDP one with the nlb annotation, comments kept', async (t) => {
  const expectedSplit = await readFile(seed('001-echo-split.yaml'), 'utf8')
  for (const version of ['1.19.16', '1.30.0']) {
    const io = capture()
    t.equal(await fixCommand(['--split', '-f', seed('001-echo-combined.yaml'), '--kube-version', version], io), 0, version)
    const documents = parseAllDocuments(io.out()).map((d) => d.toJS())
    t.same(documents.map((d) => d.metadata.name), ['echo-tcp', 'echo-udp'])
    const [tcp, udp] = documents
    t.same(tcp.spec.ports, [{ name: 'tcpecho', protocol: 'TCP', port: 12345 }])
    t.same(udp.spec.ports, [{ name: 'udpecho', protocol: 'UDP', port: 12345 }])
    t.same(tcp.spec.selector, { app: 'echo' })
    t.same(udp.spec.selector, { app: 'echo' })
    t.notOk(tcp.metadata.annotations, 'the TCP Service needs nothing')
    t.equal(udp.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-type'], 'nlb')
    t.equal(io.out().match(/^# Seed 001/gm)?.length, 2, 'the comments are kept on both')
    t.match(io.err(), /Service echo: split: split into echo-tcp \(TCP\) and echo-udp \(UDP\), with the same selector.*two addresses/)
    t.match(io.err(), /Service echo-udp: warning: added annotation service\.beta\.kubernetes\.io\/aws-load-balancer-type: "nlb"/)
    // The seed's own hand-made split, with nlb-guard's annotation, is what --split wrote (order aside).
    const hand = parseAllDocuments(expectedSplit).map((d) => d.toJS())
    const byName = new Map(hand.map((d) => [d.metadata.name, d]))
    t.same(tcp, byName.get('echo-tcp'))
    t.same({ ...udp, metadata: { name: 'echo-udp' } }, byName.get('echo-udp'))
  }
  const named = capture()
  t.equal(await fixCommand(['--split', '--split-name', 'x-{protocol}-{name}', '-f', seed('001-echo-combined.yaml')], named), 0)
  t.same(parseAllDocuments(named.out()).map((d) => d.toJS().metadata.name), ['x-tcp-echo', 'x-udp-echo'], 'names from --split-name')
  const bad = capture()
  t.equal(await main(['fix', '--split', '--split-name', 'echo', '-f', seed('001-echo-combined.yaml')], bad), 2)
  t.match(bad.err(), /--split-name must contain \{protocol\}/)
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
  t.equal(io.out(), await readFile(seed('000-udp-eks.yaml'), 'utf8'))
  t.equal(io.err(), '')
})

t.test('check: exit 0 when clean, 1 with what would change or be denied', async (t) => {
  const clean = capture()
  t.equal(await checkCommand(['-f', seed('000-udp-eks.yaml')], clean), 0)
  t.match(clean.out(), /nothing to change/)
  const changes = capture()
  t.equal(await checkCommand(['-f', seed('001-echo-split.yaml')], changes), 1)
  t.match(changes.out(), /001-echo-split\.yaml:3: Service echo-udp: would change \(S2\): added annotation/)
  t.notMatch(changes.out(), /echo-tcp: would/, 'the TCP Service needs nothing')
  const denied = capture()
  t.equal(await checkCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.19.16'], denied), 1)
  t.match(denied.out(), /Service echo: would be denied \(S1\): .*TCP and UDP/)
  const pending = capture()
  t.equal(await checkCommand(['-f', seed('001-echo-combined.yaml'), '--kube-version', '1.30.0'], pending), 1)
  t.match(pending.out(), /Service echo: would stay pending \(S1\): .*never builds a mixed-protocol load balancer/)
})

t.test('bad input: a YAML syntax error names the file and document; a missing file is reported; both exit 3', async (t) => {
  const broken = capture('apiVersion: v1\nkind: Service\nmetadata: [unclosed\n')
  t.equal(await fixCommand([], broken), 3)
  t.match(broken.err(), /^<stdin>:1: document 1: cannot read: /)
  t.equal(broken.out(), '')
  const missing = capture()
  t.equal(await checkCommand(['-f', '/nonexistent/x.yaml'], missing), 3)
  t.match(missing.out(), /^\/nonexistent\/x\.yaml: cannot read: no such file or directory/)
  t.match(missing.out(), /nlb-guard check: 1 input\(s\) could not be read/)
  const flag = capture()
  t.equal(await main(['fix', '--frobnicate'], flag), 2)
  t.match(flag.err(), /Unknown option '--frobnicate'/)
  const version = capture()
  t.equal(await fixCommand(['--kube-version', 'banana'], version), 3)
  t.match(version.err(), /kubeVersion: expected a Kubernetes version/)
})

t.test('help for every command exits 0', async (t) => {
  for (const args of [['--help'], ['serve', '--help'], ['fix', '--help'], ['check', '--help'], ['audit', '--help'], ['certs', '--help']]) {
    const io = capture()
    t.equal(await main(args, io), 0, `nlb-guard ${args.join(' ')} exits 0`)
    t.match(io.out(), /Usage: nlb-guard/)
  }
  const gone = capture()
  t.equal(await main(['healthcheck', '--help'], gone), 2, 'the health checker is its own binary now (sidecar/), not a command')
  t.match(gone.err(), /unknown command "healthcheck"/)
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
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
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
    t.same(injected.args.slice(0, 2), ['--port', '5060'], 'on the resolved named targetPort')
    t.equal(injected.image, 'ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0', 'the sidecar image')
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
