import t from 'tap'
import { DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN } from '../../lib/dns.js'
import { ConfigError, errorMessage } from '../../lib/errors.js'
import { isRecord } from '../../lib/record.js'

t.test('errorMessage: the message of an Error, the text of anything else', async (t) => {
  t.equal(errorMessage(new ConfigError('port: too big')), 'port: too big')
  t.equal(errorMessage('plain text'), 'plain text')
  t.equal(errorMessage(42), '42')
  t.equal(errorMessage(undefined), 'undefined')
})

t.test('isRecord: objects only, not null or arrays', async (t) => {
  t.ok(isRecord({}))
  t.ok(isRecord({ a: 1 }))
  for (const value of [null, undefined, [], [1], 'x', 1, true]) t.notOk(isRecord(value), JSON.stringify(value) ?? 'undefined')
})

t.test('DNS patterns as k8s.io/apimachinery validates them', async (t) => {
  const label63 = 'a'.repeat(63)
  const cases: [RegExp, string, boolean][] = [
    [DNS1123_LABEL, 'nlb-guard-system', true],
    [DNS1123_LABEL, '0abc', true],
    [DNS1123_LABEL, label63, true],
    [DNS1123_LABEL, `${label63}a`, false],
    [DNS1123_LABEL, '-abc', false],
    [DNS1123_LABEL, 'abc-', false],
    [DNS1123_LABEL, 'Abc', false],
    [DNS1123_LABEL, 'a.b', false],
    [DNS1035_LABEL, 'nlb-guard', true],
    [DNS1035_LABEL, '0abc', false],
    [DNS1123_SUBDOMAIN, 'nlb-guard.example.com', true],
    [DNS1123_SUBDOMAIN, 'a..b', false],
    [DNS1123_SUBDOMAIN, 'a.-b', false],
  ]
  for (const [pattern, text, ok] of cases) t.equal(pattern.test(text), ok, `${pattern.source} ${text}`)
})
