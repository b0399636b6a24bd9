import t from 'tap'
import { fixedVersion, polledVersion } from '../../webhook/cluster/version.js'
import { parseKubeVersion } from '../../webhook/rules/version.js'

/** Records events, and resolves once `count` have arrived. */
function recorder(count: number) {
  const seen: unknown[] = []
  let done: () => void = () => undefined
  const full = new Promise<void>((resolve) => (done = resolve))
  // The poller's timers are unref()'d (they must not hold a process open): this keeps the test's alive until the events arrive.
  const keepAlive = setInterval(() => undefined, 60_000)
  void full.then(() => clearInterval(keepAlive))
  return {
    seen,
    full,
    add(event: unknown) {
      seen.push(event)
      if (seen.length === count) done()
    },
  }
}

t.test('fixedVersion: the configured version, from the start', async (t) => {
  const source = fixedVersion(parseKubeVersion('1.25.16'))
  t.equal(source.origin, 'override')
  t.equal(source.current()?.text, '1.25.16')
  source.start()
  source.stop()
  t.equal(source.current()?.text, '1.25.16')
})

t.test('polledVersion: retries until known, keeps the last one through failures, follows upgrades', async (t) => {
  // Each fetch takes the next answer; an Error stands for the apiserver's failure.
  const answers: Array<string | Error> = [new Error('connection refused'), new Error('connection refused'), 'v1.29.4-eks-1', new Error('timeout'), 'v1.30.1']
  let fetches = 0
  const events = recorder(5)
  const source = polledVersion({
    fetch: async () => {
      const answer = answers[fetches++] ?? 'v1.30.1'
      if (answer instanceof Error) throw answer
      return answer
    },
    refreshMs: 1,
    retry: { initialMs: 1, maxMs: 2, jitter: 0 },
    onChange: (version) => events.add({ change: version.text }),
    onError: (error, known, retryInMs) => events.add({ error: (error as Error).message, known: known?.text, retryInMs }),
  })
  t.equal(source.origin, 'cluster')
  t.equal(source.current(), undefined, 'unknown before the first answer')
  source.start()
  await events.full
  source.stop()
  t.same(events.seen, [
    { error: 'connection refused', known: undefined, retryInMs: 1 },
    { error: 'connection refused', known: undefined, retryInMs: 2 },
    { change: '1.29.4' },
    { error: 'timeout', known: '1.29.4', retryInMs: 1 },
    { change: '1.30.1' },
  ])
  t.equal(source.current()?.text, '1.30.1')
})

t.test('polledVersion: an unchanged version is not announced again', async (t) => {
  const events = recorder(4)
  const source = polledVersion({
    fetch: async () => {
      events.add('fetch')
      return 'v1.31.0'
    },
    refreshMs: 1,
    retry: { initialMs: 1, maxMs: 1 },
    onChange: (version) => events.add(`change ${version.text}`),
    onError: (error) => events.add(error),
  })
  source.start()
  await events.full
  source.stop()
  t.same(events.seen, ['fetch', 'change 1.31.0', 'fetch', 'fetch'])
})

t.test('after every successful read (changed or not) the version refresh runs the follow-up, e.g. the probe', async (t) => {
  const script: Array<string | Error> = ['v1.25.16', new Error('connection refused'), 'v1.25.16', 'v1.26.0']
  let fetches = 0
  const changes: string[] = []
  const errors: string[] = []
  const followUps: Array<[string, number]> = []
  let finished = (): void => {}
  const done = new Promise<void>((resolve) => (finished = resolve))
  // polledVersion unrefs its timers (they must not hold a closing server open): keep the test alive.
  const keepAlive = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(keepAlive))
  const source = polledVersion({
    fetch: async () => {
      const next = script[fetches++]
      if (next === undefined) throw new Error('script ended')
      if (next instanceof Error) throw next
      return next
    },
    refreshMs: 1,
    retry: { initialMs: 1, maxMs: 1 },
    onChange: (version) => changes.push(version.text),
    onError: (error) => errors.push((error as Error).message),
    async afterRefresh(version) {
      followUps.push([version.text, fetches])
      if (followUps.length === 3) finished()
    },
  })
  t.teardown(() => source.stop())
  source.start()
  await done
  source.stop()
  t.same(changes, ['1.25.16', '1.26.0'])
  t.same(errors, ['connection refused'], 'a failed read runs no follow-up')
  t.same(followUps, [['1.25.16', 1], ['1.25.16', 3], ['1.26.0', 4]], 'once per successful read, before the next read')
})
