// SIGTERM under load with keep-alive clients: readiness drops first, requests keep being answered
// during the shutdown delay (endpoints take a moment to drop the pod), in-flight ones finish, exit 0.
import { once } from 'node:events'
import { get as httpGet } from 'node:http'
import { Agent } from 'node:https'
import t from 'tap'
import { waitFor } from '../fixtures/cli.js'
import { httpsRequest } from '../fixtures/https.js'
import { reviewFor, serviceObject } from '../../testkit/reviews.js'
import { serve } from '../fixtures/serve.js'

const readyStatus = (port: number) =>
  new Promise<number>((resolve) => {
    httpGet({ host: '127.0.0.1', port, path: '/readyz' }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', () => resolve(0))
  })

t.test('SIGTERM under keep-alive load: zero failed requests', async (t) => {
  const { port, metricsPort, ca, child, log } = await serve(t, { args: ['--shutdown-delay', '1'] })

  // Like the apiserver: a pool of keep-alive connections that stops sending once the endpoint
  // is gone (readiness false), with whatever is in flight at that moment still expecting answers.
  const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 2 }))
  t.teardown(() => agents.forEach((a) => a.destroy()))
  const body = JSON.stringify(reviewFor(serviceObject()))
  let endpointsGone = false
  let ok = 0
  const failures: string[] = []
  const client = async (agent: Agent) => {
    while (!endpointsGone) {
      try {
        const res = await httpsRequest({ port, path: '/mutate', ca, agent, body })
        if (res.status === 200 && JSON.parse(res.body).response.allowed === true) ok++
        else failures.push(`status ${res.status}`)
      } catch (error) {
        failures.push((error as Error).message)
      }
    }
  }
  const clients = agents.flatMap((agent) => [client(agent), client(agent)])
  await waitFor('requests flowing', async () => ok >= 20, 10_000)
  const before = ok
  const signalled = Date.now()
  child.kill('SIGTERM')
  await waitFor('readiness to drop', async () => (await readyStatus(metricsPort)) === 503, 5000)
  const droppedAfter = Date.now() - signalled
  const atDrop = ok
  // Endpoints take a moment to drop the pod: requests keep coming, and are answered, while not ready.
  await waitFor('requests answered while not ready', async () => ok - atDrop >= 10, 5000)
  t.equal(await readyStatus(metricsPort), 503, 'still not ready, still answering: within the shutdown delay')
  const duringDelay = ok - atDrop
  endpointsGone = true
  await Promise.all(clients)
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, 'exit 0')
  t.ok(before > 0, `answered ${ok} requests (${before} before SIGTERM)`)
  t.ok(duringDelay > 0, `${duringDelay} requests answered while not ready, during the shutdown delay`)
  t.comment(`readiness dropped ${droppedAfter} ms after SIGTERM`)
  t.same(failures, [], 'zero failed requests')
  t.match(log(), /"msg":"shutting down: not ready, finishing in-flight requests"/)
  t.match(log(), /"msg":"closed"/)
})
