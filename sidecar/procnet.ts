import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

/*
 * The kernel prints one socket per line after a header (net/ipv4/udp.c udp4_format_sock,
 * net/ipv6/datagram.c __ip6_dgram_sock_seq_show): `local_address` is the address as raw hex
 * (8 digits for IPv4, 32 for IPv6), a colon, and the port already converted to host order with
 * ntohs() and printed as `%04X` — so `0100007F:13C4` is port 0x13C4 = 5060 whatever the CPU's
 * byte order.
 */
const LOCAL_ADDRESS = /^(?:[0-9A-F]{8}|[0-9A-F]{32}):([0-9A-F]{4})$/i

/**
 * The local UDP ports in the text of a `/proc/net/udp` or `/proc/net/udp6` file.
 *
 * Every line counts whatever its `st` column: an unconnected UDP socket reports TCP_CLOSE (07) and a
 * connected one TCP_ESTABLISHED (01), and both own their local port.
 */
export function parseProcNetUdp(text: string): Set<number> {
  const ports = new Set<number>()
  // The first line is the header (seq_file's SEQ_START_TOKEN); the pattern would reject it anyway.
  for (const line of text.split('\n').slice(1)) {
    const localAddress = line.trim().split(/\s+/)[1]
    const hexPort = localAddress === undefined ? undefined : LOCAL_ADDRESS.exec(localAddress)?.[1]
    if (hexPort === undefined) continue
    const port = Number.parseInt(hexPort, 16)
    if (port > 0) ports.add(port)
  }
  return ports
}

/**
 * The UDP ports bound in this process's network namespace — in a pod, the namespace every container
 * shares, since `/proc/net` is a link to `/proc/self/net`.
 *
 * `net/udp6` is missing when the kernel has no IPv6 (built without it, or booted with `ipv6.disable=1`):
 * then only IPv4 sockets exist. `net/udp` missing is an error: the reader is pointed at the wrong place.
 */
export async function readBoundUdpPorts(procRoot: string): Promise<Set<number>> {
  const ports = parseProcNetUdp(await readFile(join(procRoot, 'net', 'udp'), 'utf8'))
  let udp6: string
  try {
    udp6 = await readFile(join(procRoot, 'net', 'udp6'), 'utf8')
  } catch (err: unknown) {
    if (errorCode(err) === 'ENOENT') return ports
    throw err
  }
  for (const port of parseProcNetUdp(udp6)) ports.add(port)
  return ports
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
}
