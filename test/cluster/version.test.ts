import t from 'tap'
import { polledVersion } from '../../webhook/cluster/version.js'

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
