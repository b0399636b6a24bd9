import t from 'tap'
import type { EventNote, EventReason, EventResult, OutgoingEvent } from '../../webhook/events/recorder.js'
import { createEventRecorder, MAX_MESSAGE } from '../../webhook/events/recorder.js'

/*
 * The recorder in front of the apiserver: a fake sink whose answers the test releases one by one,
 * so what is queued, merged, dropped and sent is observed at each step, never timed.
 */

const note = (uid: string, reason: EventReason = 'Mutated', message = `changed ${uid}`): EventNote => ({
  involved: { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: 'demo', name: `rs-${uid}`, uid },
  reason,
  message,
})

function fakeSink() {
  const calls: OutgoingEvent[] = []
  const waiting: Array<{ resolve: (name: string) => void; reject: (error: Error) => void }> = []
  let arrived: (() => void) | undefined
  return {
    calls,
    sink: (event: OutgoingEvent) => {
      calls.push(event)
      arrived?.()
      return new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }))
    },
    /** Resolves once the sink has been called `n` times in all. */
    async called(n: number) {
      while (calls.length < n) await new Promise<void>((resolve) => (arrived = resolve))
    },
    answer(name: string) {
      waiting.shift()?.resolve(name)
    },
    refuse(message: string) {
      waiting.shift()?.reject(new Error(message))
    },
  }
}

function counting() {
  const counts = new Map<string, number>()
  return {
    counts,
    onResult: (result: EventResult, reason: EventReason) => counts.set(`${result} ${reason}`, (counts.get(`${result} ${reason}`) ?? 0) + 1),
  }
}

t.test('300 pods of one owner: one Event, created once, its count the number of admissions', async (t) => {
  const fake = fakeSink()
  const { counts, onResult } = counting()
  const recorder = createEventRecorder({ sink: fake.sink, onResult, sleep: async () => {} })
  recorder.record(note('a'))
  await fake.called(1)
  // While the first is being sent, 300 admissions for one ReplicaSet wait as one note.
  for (let i = 0; i < 300; i++) recorder.record(note('ds'))
  fake.answer('rs-a.1')
  await fake.called(2)
  t.same(fake.calls.map((c) => [c.involved.uid, c.count, c.existing]), [['a', 1, undefined], ['ds', 300, undefined]], 'one create with count 300, not 300 creates')
  fake.answer('rs-ds.1')
  await recorder.idle()
  recorder.record(note('ds', 'Mutated', 'the latest change'))
  await fake.called(3)
  t.same([fake.calls[2]?.existing, fake.calls[2]?.count, fake.calls[2]?.message], ['rs-ds.1', 301, 'the latest change'], 'sent again: the same Event patched, count carried on')
  fake.answer('rs-ds.1')
  await recorder.idle()
  t.equal(counts.get('emitted Mutated'), 3)
  t.equal(counts.get('aggregated Mutated'), 299)
  recorder.record(note('ds', 'Denied'))
  await fake.called(4)
  t.equal(fake.calls[3]?.existing, undefined, 'another reason for the same object is another Event')
  fake.answer('rs-ds.2')
  await recorder.idle()
})

t.test('the queue is bounded: past maxPending distinct notes, new ones are dropped and counted', async (t) => {
  const fake = fakeSink()
  const { counts, onResult } = counting()
  const recorder = createEventRecorder({ sink: fake.sink, onResult, maxPending: 3, sleep: async () => {} })
  recorder.record(note('in-flight'))
  await fake.called(1)
  for (const uid of ['1', '2', '3', '4', '5']) recorder.record(note(uid))
  recorder.record(note('2'))
  t.equal(counts.get('dropped Mutated'), 2, 'the 4th and 5th waiting keys dropped')
  t.equal(counts.get('aggregated Mutated'), 1, 'a repeat of a waiting key still merges when full')
  for (let i = 0; i < 4; i++) {
    fake.answer(`e${i}`)
    await fake.called(Math.min(i + 2, 4))
  }
  await recorder.idle()
  t.same(fake.calls.map((c) => [c.involved.uid, c.count]), [['in-flight', 1], ['1', 1], ['2', 2], ['3', 1]])
})

t.test('a refusal by the apiserver is counted and logged, and the next Event still goes', async (t) => {
  const fake = fakeSink()
  const { counts, onResult } = counting()
  const errors: string[] = []
  const recorder = createEventRecorder({ sink: fake.sink, onResult, onError: (error) => errors.push((error as Error).message), sleep: async () => {} })
  recorder.record(note('a'))
  recorder.record(note('b', 'WouldDeny'))
  await fake.called(1)
  fake.refuse('events is forbidden')
  await fake.called(2)
  fake.answer('b.1')
  await recorder.idle()
  t.same(errors, ['events is forbidden'])
  t.equal(counts.get('failed Mutated'), 1)
  t.equal(counts.get('emitted WouldDeny'), 1)
})

t.test('rate: the worker waits minIntervalMs after every request; messages are bounded', async (t) => {
  const waits: number[] = []
  const sent: OutgoingEvent[] = []
  const recorder = createEventRecorder({
    sink: async (event) => {
      sent.push(event)
      return 'x'
    },
    minIntervalMs: 250,
    sleep: async (ms) => {
      waits.push(ms)
    },
  })
  recorder.record(note('a', 'Mutated', 'y'.repeat(100_000)))
  recorder.record(note('b'))
  recorder.record(note('c'))
  await recorder.idle()
  t.same(waits, [250, 250, 250], 'one pause per request')
  t.ok((sent[0]?.message.length ?? Infinity) < MAX_MESSAGE + 40, 'a 100,000-character message is cut')
})

t.test('record() never blocks or throws, and stop() drops what waits', async (t) => {
  const fake = fakeSink()
  const recorder = createEventRecorder({ sink: fake.sink, sleep: async () => {} })
  recorder.record(note('a'))
  recorder.record(note('b'))
  await fake.called(1)
  recorder.stop()
  recorder.record(note('c'))
  fake.answer('a.1')
  await recorder.idle()
  t.same(fake.calls.map((c) => c.involved.uid), ['a'], 'nothing sent after stop')
})

t.test('flush at shutdown: what waits is sent at once (no pause), new notes are refused, and it is bounded', async (t) => {
  const fake = fakeSink()
  const { counts, onResult } = counting()
  const pauses: number[] = []
  // The pause between requests never ends by itself: only the flush can cut it short.
  const recorder = createEventRecorder({ sink: fake.sink, onResult, minIntervalMs: 60_000, sleep: (ms) => (pauses.push(ms), new Promise(() => {})) })
  for (const uid of ['a', 'b', 'c']) recorder.record(note(uid))
  await fake.called(1)
  fake.answer('a.1')
  // The worker is now in a pause it would never leave; b and c wait.
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(pauses, [60_000])
  const flushed = recorder.flush(60_000)
  recorder.record(note('late'))
  await fake.called(2)
  fake.answer('b.1')
  await fake.called(3)
  fake.answer('c.1')
  t.same(await flushed, { pending: 2, unsent: 0 }, 'both waiting notes sent')
  t.same(fake.calls.map((c) => c.involved.uid), ['a', 'b', 'c'], 'the late note was refused')
  t.same(pauses, [60_000], 'no pause while flushing')
  t.equal(counts.get('emitted Mutated'), 3)

  // An apiserver that never answers: the flush gives up at its bound and counts what was left.
  const silent = fakeSink()
  const stuck = createEventRecorder({ sink: silent.sink, onResult, sleep: async () => {} })
  for (const uid of ['x', 'y', 'z']) stuck.record(note(uid, 'Denied'))
  await silent.called(1)
  t.same(await stuck.flush(10), { pending: 3, unsent: 3 }, 'one in flight and two waiting, unsent')
  t.equal(counts.get('dropped Denied'), 2, 'the two that never left are counted dropped')
  t.equal(silent.calls.length, 1, 'nothing more sent after the bound')
})

t.test("resolveInvolved: the Event goes where the resolver says; two ReplicaSets of one Deployment share its Event", async (t) => {
  const fake = fakeSink()
  const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'demo', name: 'web', uid: 'd' }
  const recorder = createEventRecorder({
    sink: fake.sink,
    sleep: async () => {},
    resolveInvolved: async (involved) => (involved.uid === 'broken' ? Promise.reject(new Error('never, but')) : involved.uid.startsWith('web-') ? deployment : involved),
  })
  recorder.record(note('web-old'))
  await fake.called(1)
  recorder.record(note('web-new'))
  recorder.record(note('broken'))
  fake.answer('web.1')
  await fake.called(2)
  fake.answer('web.1')
  await fake.called(3)
  fake.answer('broken.1')
  await recorder.idle()
  t.same(fake.calls.map((c) => [c.involved.kind, c.involved.name, c.count, c.existing]), [
    ['Deployment', 'web', 1, undefined],
    ['Deployment', 'web', 2, 'web.1'],
    ['ReplicaSet', 'rs-broken', 1, undefined],
  ], "the new ReplicaSet's note patches the Deployment's Event; a resolver that rejects leaves the Event where it was")
  t.equal(fake.calls[1]?.message, 'changed web-new', "the message is the note's")
})

t.test('a flush that ends while the worker waits on the resolver sends nothing after it', async (t) => {
  const fake = fakeSink()
  let release: (() => void) | undefined
  const recorder = createEventRecorder({
    sink: fake.sink,
    sleep: async () => {},
    // A ReplicaSet lookup that answers only when the test says.
    resolveInvolved: (involved) => new Promise((resolve) => (release = () => resolve(involved))),
  })
  recorder.record(note('slow'))
  t.same(await recorder.flush(10), { pending: 1, unsent: 1 }, 'given up at the bound, the lookup still out')
  release?.()
  await recorder.idle()
  t.equal(fake.calls.length, 0, 'the Event is not sent once the flush gave up')
})
