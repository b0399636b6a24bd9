import t from 'tap'
import { backoff } from '../../lib/retry.js'

t.test('the delay doubles from initialMs up to maxMs, and a success starts it over', async (t) => {
  const delays = backoff({ initialMs: 1000, maxMs: 5000, jitter: 0 })
  t.same([delays.next(), delays.next(), delays.next(), delays.next(), delays.next()], [1000, 2000, 4000, 5000, 5000])
  delays.reset()
  t.equal(delays.next(), 1000)
})

t.test('jitter stretches each delay by up to its fraction, never shortens it', async (t) => {
  const lowest = backoff({ initialMs: 1000, maxMs: 8000 }, () => 0)
  const highest = backoff({ initialMs: 1000, maxMs: 8000 }, () => 0.999999)
  t.same([lowest.next(), lowest.next()], [1000, 2000])
  t.same([highest.next(), highest.next()], [1200, 2400], 'the default jitter is 0.2')
  const half = backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5 }, () => 0.5)
  t.equal(half.next(), 1250)
})

t.test('a constant policy (initialMs = maxMs) keeps its delay', async (t) => {
  const delays = backoff({ initialMs: 5000, maxMs: 5000, jitter: 0 })
  t.same([delays.next(), delays.next(), delays.next()], [5000, 5000, 5000])
})
