import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/*
 * CPU used on this machine by processes that are not the benchmark's, from /proc: every core's busy
 * time minus this process's and its reaped children's (the servers and load generators it spawned).
 * Other work sharing the cores skews the figures; each round reports how much there was.
 */

/** Clock ticks per second of /proc's counters (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100

export interface CpuMark {
  readonly busy: number
  readonly own: number
  readonly at: number
}

export function cpuMark(): CpuMark {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal guest…: user, nice and system are processes'
  // time. Interrupts are left out: loopback traffic, the benchmark's own included, is softirq time
  // that no process is charged with.
  const busy = (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0)
  const stat = readFileSync('/proc/self/stat', 'utf8')
  // Fields after the command name, which may hold spaces: utime stime cutime cstime are 14–17 of the whole line.
  const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
  const own = (after[11] ?? 0) + (after[12] ?? 0) + (after[13] ?? 0) + (after[14] ?? 0)
  return { busy, own, at: performance.now() }
}

/** Other processes' CPU between two marks, in percent of one core. */
export function otherCpuPercent(from: CpuMark, to: CpuMark): number {
  const seconds = (to.at - from.at) / 1000
  if (seconds <= 0) return 0
  const ticks = Math.max(0, to.busy - from.busy - (to.own - from.own))
  return (ticks / TICKS_PER_SECOND / seconds) * 100
}

/** Waits, up to `maxSeconds`, for a second in which other processes use less than `percent` of a core. */
export async function waitForQuiet(percent: number, maxSeconds: number, log: (line: string) => void): Promise<number> {
  const deadline = performance.now() + maxSeconds * 1000
  let told = false
  for (;;) {
    const from = cpuMark()
    await sleep(1000)
    const other = otherCpuPercent(from, cpuMark())
    if (other < percent || performance.now() >= deadline) return other
    if (!told) log(`other processes use ${other.toFixed(0)}% of a core: waiting up to ${maxSeconds} s for a quieter machine`)
    told = true
  }
}
