import t from 'tap'
import { loadStart, summariseProfile, type CpuProfile } from '../../bench/profile.ts'

// root → (idle); root → handle → parse; root → handle → rule; root → (garbage collector)
const frame = (functionName: string) => ({ functionName, url: '', lineNumber: 0 })
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 6] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('handle'), children: [4, 5] },
    { id: 4, callFrame: frame('parse') },
    { id: 5, callFrame: frame('rule') },
    { id: 6, callFrame: frame('(garbage collector)') },
  ],
  // A start-up sample, then the load: 1 ms each.
  samples: [4, 2, 3, 4, 4, 5, 2, 6],
  timeDeltas: [50_000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
}

t.test('self and inclusive shares of the busy time, idle left out', async (t) => {
  const summary = summariseProfile(profile, 'body')
  t.equal(summary.sampledMs, 57)
  const self = Object.fromEntries(summary.topSelf.map((f) => [f.frame, f.self]))
  const inclusive = Object.fromEntries(summary.topInclusive.map((f) => [f.frame, f.inclusive]))
  // Busy: 50 + 1 (handle) + 1 + 1 (parse) + 1 (rule) + 1 (GC) = 55 ms.
  t.equal(self['parse'], 52 / 55)
  t.equal(self['handle'], 1 / 55)
  t.equal(inclusive['handle'], 54 / 55, 'handle holds parse and rule')
  t.equal(summary.gc, 1 / 55)
  t.notOk('(idle)' in self || '(root)' in inclusive, 'pseudo-frames are not ranked')
})

t.test('the window leaves the start out', async (t) => {
  t.equal(loadStart(profile, 6.5), 1, 'the last 6.5 ms start after the 50 ms start-up sample')
  const summary = summariseProfile(profile, 'body', { windowMs: 6.5 })
  const self = Object.fromEntries(summary.topSelf.map((f) => [f.frame, f.self]))
  t.equal(self['parse'], 2 / 5)
  t.equal(summary.idle, 2 / 7)
})
