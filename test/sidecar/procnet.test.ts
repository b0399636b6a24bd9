import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseProcNetUdp, readBoundUdpPorts } from '../../sidecar/procnet.js'

// Captured from this machine's /proc/net/udp{,6} with node:dgram sockets bound, then trimmed.
const fixture = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`../fixtures/proc-net/${name}`, import.meta.url)), 'utf8')
const udp = fixture('udp')
const udp6 = fixture('udp6')

const sorted = (ports: ReadonlySet<number>): number[] => [...ports].sort((a, b) => a - b)

t.test('parseProcNetUdp', async (t) => {
  // udp: 0.0.0.0:10000 (07), 127.0.0.1:43609 connected to 127.0.0.53:53 (01), 10.0.3.15:123, 127.0.0.1:5060
  t.same(sorted(parseProcNetUdp(udp)), [123, 5060, 10000, 43609], 'IPv4 table, bound and connected sockets')
  // udp6: [::1]:3478, [::]:5353, [::]:10000
  t.same(sorted(parseProcNetUdp(udp6)), [3478, 5353, 10000], 'IPv6 table')

  const cases: Array<{ name: string; text: string; ports: number[] }> = [
    { name: 'empty file', text: '', ports: [] },
    { name: 'header only (no UDP sockets)', text: udp.split('\n')[0] + '\n', ports: [] },
    {
      name: 'the first line is skipped even if it looks like a socket',
      text: '    0: 0100007F:13C4 00000000:0000 07\n    1: 0100007F:13C5 00000000:0000 07\n',
      ports: [5061],
    },
    {
      name: 'malformed rows are ignored',
      text: 'header\n 1: garbage\n 2: 0100007F:XYZW 00000000:0000 07\n 3: 0100007F 00000000:0000 07\n 4:\n',
      ports: [],
    },
    { name: 'port 0 is not a bound port', text: 'header\n 1: 00000000:0000 00000000:0000 07\n', ports: [] },
    { name: 'lower-case hex and CRLF', text: 'header\r\n 1: 0100007f:13c4 00000000:0000 07\r\n', ports: [5060] },
    { name: 'highest port', text: 'header\n 1: 00000000:FFFF 00000000:0000 07\n', ports: [65535] },
  ]
  for (const { name, text, ports } of cases) t.same(sorted(parseProcNetUdp(text)), ports, name)
})

t.test('readBoundUdpPorts reads net/udp and net/udp6 under the proc root', async (t) => {
  const procRoot = t.testdir({ net: { udp, udp6 } })
  t.same(sorted(await readBoundUdpPorts(procRoot)), [123, 3478, 5060, 5353, 10000, 43609])
})

t.test('a missing net/udp6 (kernel without IPv6) is not an error', async (t) => {
  const procRoot = t.testdir({ net: { udp } })
  t.same(sorted(await readBoundUdpPorts(procRoot)), [123, 5060, 10000, 43609])
})

t.test('a missing net/udp is an error (wrong proc root)', async (t) => {
  const procRoot = t.testdir({ net: { udp6 } })
  await t.rejects(readBoundUdpPorts(procRoot), { code: 'ENOENT' })
})

t.test('an unreadable net/udp6 is an error, not silently IPv4-only', async (t) => {
  // A directory where the file should be: readFile fails with EISDIR, which is not "IPv6 absent".
  const procRoot = t.testdir({ net: { udp, udp6: {} } })
  await t.rejects(readBoundUdpPorts(procRoot), { code: 'EISDIR' })
})

t.test('sockets bound by this process show up in the live /proc', { skip: process.platform !== 'linux' }, async (t) => {
  const v4 = createSocket('udp4')
  await new Promise<void>((resolve) => v4.bind(0, '127.0.0.1', resolve))
  t.teardown(() => v4.close())
  const v6 = createSocket({ type: 'udp6', ipv6Only: true })
  const v6Bound = await new Promise<boolean>((resolve) => {
    v6.once('error', () => resolve(false))
    v6.bind(0, '::1', () => resolve(true))
  })
  t.teardown(() => v6.close())

  const ports = await readBoundUdpPorts('/proc')
  t.ok(ports.has(v4.address().port), 'IPv4 socket from /proc/net/udp')
  if (v6Bound) t.ok(ports.has(v6.address().port), 'IPv6-only socket from /proc/net/udp6')
  else t.comment('no IPv6 loopback here; /proc/net/udp6 not checked with a live socket')
})
