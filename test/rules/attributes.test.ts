import t from 'tap'
import { crossZoneAttribute, goTrimSpace, parseAttributes } from '../../webhook/rules/attributes.js'

// The cases of the AWS Load Balancer Controller's ParseStringMapAnnotation (pkg/annotations/parser.go).
t.test('parseAttributes reads the list as the AWS Load Balancer Controller does', async (t) => {
  const read = (raw: string) => {
    const list = parseAttributes(raw)
    return list.readable ? Object.fromEntries(list.values) : { unreadable: list.entry }
  }
  t.same(read('a=1,b=2'), { a: '1', b: '2' })
  t.same(read(' a=1 , ,b=2, '), { a: '1', b: '2' }, 'entries trimmed, empty ones skipped')
  t.same(read('a = 1'), { 'a ': ' 1' }, 'nothing trimmed around "="')
  t.same(read('a=1,a=2'), { a: '2' }, 'the last value of a repeated key wins')
  t.same(read('a=b=c'), { a: 'b=c' }, 'cut at the first "="')
  t.same(read('a='), { a: '' }, 'an empty value is a value')
  t.same(read(''), {}, 'an empty annotation is an empty map')
  t.same(read('a=1,b'), { unreadable: 'b' }, 'an entry without "=" fails the whole list')
  t.same(read('=1'), { unreadable: '=1' }, 'an empty key fails the whole list')
})

t.test('crossZoneAttribute: only true and false are values AWS takes', async (t) => {
  const key = 'load_balancing.cross_zone.enabled'
  t.same(crossZoneAttribute(undefined), { state: 'absent' })
  t.same(crossZoneAttribute('deletion_protection.enabled=true'), { state: 'absent' })
  t.same(crossZoneAttribute(`${key}=true,${key}=false`), { state: 'off', value: 'false' })
  t.same(crossZoneAttribute(`${key}=false,${key}=true`), { state: 'on', value: 'true' })
  for (const value of ['True', '1', ' true', 'yes', '']) t.equal(crossZoneAttribute(`${key}=${value}`).state, 'unreadable', JSON.stringify(value))
  t.equal(crossZoneAttribute(`${key} =false`).state, 'absent', 'a spaced key is another key')
  t.match(crossZoneAttribute(`${'x'.repeat(100_000)}`), { state: 'unreadable', problem: /more characters\)" is not key=value/ }, 'the quoted entry is bounded')
})

t.test('goTrimSpace trims what Go trims', async (t) => {
  t.equal(goTrimSpace('\u0085 a \u3000'), 'a', 'U+0085 and U+3000 are spaces in Go')
  t.equal(goTrimSpace('\ufeffa'), '\ufeffa', 'U+FEFF is not')
  t.equal(goTrimSpace(`${' '.repeat(1_000_000)}x${' '.repeat(1_000_000)}`), 'x')
})
