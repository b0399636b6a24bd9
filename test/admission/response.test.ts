import t from 'tap'
import { boundedWarnings, capRunes, denied, MAX_MESSAGE_RUNES, MAX_WARNING_RUNES, WARNINGS_TOTAL_RUNES } from '../../webhook/admission/response.js'

const runes = (text: string) => [...text].length

t.test('capRunes counts code points, as the apiserver does, and never splits a pair', async (t) => {
  t.equal(capRunes('short', 10), 'short')
  t.equal(capRunes('abcdef', 6), 'abcdef', 'exactly the limit is kept whole')
  t.equal(capRunes('abcdefg', 6), 'abcde…')
  const emoji = '😀'.repeat(10)
  t.equal(capRunes(emoji, 10), emoji, 'ten astral characters are ten runes, not twenty')
  t.equal(capRunes(emoji, 5), `${'😀'.repeat(4)}…`)
  t.equal(capRunes('x'.repeat(5_000_000), 3), 'xx…', 'a huge text costs only its first few characters')
})

t.test('warnings stay within what the apiserver keeps whole', async (t) => {
  t.same(boundedWarnings(['a', 'b']), ['a', 'b'], 'short warnings pass untouched')
  const long = boundedWarnings(['x'.repeat(10_000)])
  t.equal(runes(long[0] ?? ''), MAX_WARNING_RUNES, 'one long warning is capped')

  const many = Array.from({ length: 10_000 }, (_, i) => `warning ${i}: ${'y'.repeat(300)}`)
  const kept = boundedWarnings(many)
  const total = kept.reduce((sum, w) => sum + runes(w), 0)
  t.ok(total <= WARNINGS_TOTAL_RUNES, `total ${total} runes is within ${WARNINGS_TOTAL_RUNES}: the apiserver cuts nothing to 256`)
  t.match(kept.at(-1), /left out \d+ more warnings/, 'the last one says how many were left out')
  const counted = Number(/left out (\d+)/.exec(kept.at(-1) ?? '')?.[1])
  t.equal(kept.length - 1 + counted, many.length, 'kept plus left out is all of them')

  const three = boundedWarnings(['a'.repeat(1000), 'b'.repeat(1000), 'c'.repeat(1000), 'd'.repeat(1000), 'e'.repeat(1000)])
  t.ok(three.reduce((sum, w) => sum + runes(w), 0) <= WARNINGS_TOTAL_RUNES)
  t.match(three.at(-1), /left out 1 more warning:/)
})

t.test('a denial message is bounded', async (t) => {
  const answer = denied('u', 'z'.repeat(1_000_000))
  t.equal(runes(answer.status?.message ?? ''), MAX_MESSAGE_RUNES)
})

t.test('warnings short enough in code units are kept whole as they are; near the limit, astral characters count once', async (t) => {
  const fourDigits = Array.from({ length: 4 }, (_, i) => `${i}`.repeat(MAX_WARNING_RUNES - 100))
  t.same(boundedWarnings(fourDigits), fourDigits, '3,696 runes in four warnings: all whole')
  // 1,000 astral characters are 1,000 runes but 2,000 code units: over the fast path's bound, within the apiserver's.
  const astral = ['😀'.repeat(1000), '😀'.repeat(1000), '😀'.repeat(1000)]
  t.same(boundedWarnings(astral), astral, 'counted in runes: 3,000 of them fit whole')
  const four = ['a'.repeat(1000), 'b'.repeat(1000), 'c'.repeat(1000), 'd'.repeat(1000)]
  t.same(boundedWarnings(four), four, '4,000 runes: past the fast bound, whole all the same (the last needs no room for a note)')
})

t.test('decodeReview: a well-formed review is the body itself; each malformed field is named', async (t) => {
  const { decodeReview, ReviewDecodeError } = await import('../../webhook/admission/review.js')
  const good = () => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Service' }, resource: { group: '', version: 'v1', resource: 'services' }, subResource: '', name: 'n', namespace: 'ns', operation: 'CREATE', object: {}, dryRun: false },
  })
  const body = good()
  t.equal(decodeReview(body), body, 'not copied')
  const minimal = { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'DELETE' } }
  t.equal(decodeReview(minimal), minimal, 'optional fields may be absent')
  const cases: Array<[string, (b: ReturnType<typeof good>) => unknown, RegExp]> = [
    ['no object', () => 'x', /not an AdmissionReview: body: /],
    ['kind', (b) => ({ ...b, kind: 'Review' }), /: kind: /],
    ['apiVersion', (b) => ({ ...b, apiVersion: 'v1' }), /: apiVersion: /],
    ['request', (b) => ({ ...b, request: [] }), /: request: /],
    ['uid', (b) => ({ ...b, request: { ...b.request, uid: '' } }), /: request\.uid: /],
    ['kind.kind', (b) => ({ ...b, request: { ...b.request, kind: { group: '', version: 'v1' } } }), /: request\.kind\.kind: /],
    ['resource', (b) => ({ ...b, request: { ...b.request, resource: { group: '', version: 'v1', resource: 1 } } }), /: request\.resource\.resource: /],
    ['subResource', (b) => ({ ...b, request: { ...b.request, subResource: 1 } }), /: request\.subResource: /],
    ['name', (b) => ({ ...b, request: { ...b.request, name: null } }), /: request\.name: /],
    ['namespace', (b) => ({ ...b, request: { ...b.request, namespace: 1 } }), /: request\.namespace: /],
    ['operation', (b) => ({ ...b, request: { ...b.request, operation: 'PATCH' } }), /: request\.operation: /],
    ['dryRun', (b) => ({ ...b, request: { ...b.request, dryRun: 'yes' } }), /: request\.dryRun: /],
  ]
  for (const [name, make, message] of cases) {
    const error = t.throws(() => decodeReview(make(good())), name) as Error
    t.type(error, ReviewDecodeError, name)
    t.match(error.message, message, name)
  }
})
