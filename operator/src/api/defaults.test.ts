// withDefaults() returns the Defaulted* types generated from schema.ts, which say every field with
// a schema default is present. These cases check that the runtime agrees, at every depth an object
// is present, so builders can read `pool.spec.listeners.submission.port` without a default of
// their own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Schema } from './openapi.ts';
import { withDefaults } from './defaults.ts';
import { kinds } from './schema.ts';
import type { MailfleetResource } from './types.ts';
import { rateLimit, relayPool, sendingDomain } from '../../../test/helpers/operator/fixtures.ts';

/** Fields with a schema default that `value` lacks, and how many defaulted fields were checked. */
function missingDefaults(
  schema: Schema,
  value: unknown,
  path: string,
): { missing: string[]; checked: number } {
  const result = { missing: [] as string[], checked: 0 };
  const visit = (s: Schema, v: unknown, p: string) => {
    if (Array.isArray(v) && s.items) v.forEach((item, i) => visit(s.items!, item, `${p}[${i}]`));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      const child = (v as Record<string, unknown>)[name];
      if (prop.default !== undefined) {
        result.checked++;
        if (child === undefined) result.missing.push(`${p}.${name}`);
      }
      if (child !== undefined) visit(prop, child, `${p}.${name}`);
    }
  };
  visit(schema, value, path);
  return result;
}

const specSchema = (kind: string) => kinds.find((k) => k.kind === kind)!.spec;

const cases: { name: string; resource: MailfleetResource; atLeast: number }[] = [
  { name: 'an empty RelayPool', resource: relayPool(), atLeast: 20 },
  {
    name: 'a RelayPool with every optional object present',
    resource: relayPool({
      tls: { issuerRef: { name: 'ca' } },
      delivery: {
        mode: 'Smarthost',
        smarthost: { host: 'smtp.example.net' },
        tlsPolicy: { destinations: [{ domain: 'example.com', policy: 'Verify' }] },
      },
      autoscaling: { maxReplicas: 6 },
      queue: { persistence: { size: '2Gi' } },
    }),
    atLeast: 30,
  },
  {
    name: 'a SendingDomain with DKIM and a bounce policy',
    resource: sendingDomain('example.com', { dkim: {}, bouncePolicy: {} }),
    atLeast: 3,
  },
  {
    // What the SendingDomain builders (domains.ts, bounce.ts, dns.ts, domain-series.ts) read without
    // a default of their own: dkim.selector/algorithm, every bouncePolicy limit, tracking's switches.
    name: 'a bare SendingDomain: dkim and bouncePolicy filled inside their {} defaults',
    resource: sendingDomain('example.com'),
    atLeast: 10,
  },
  {
    name: 'a SendingDomain with tracking',
    resource: sendingDomain('example.com', { tracking: { host: 't.example.com' } }),
    atLeast: 12,
  },
  {
    name: 'a RateLimit',
    resource: rateLimit('yahoo', { rate: { messages: 10, per: 'Minute' } }),
    atLeast: 1,
  },
];

for (const c of cases)
  test(`withDefaults fills every schema default: ${c.name}`, () => {
    const schema = specSchema(c.resource.kind);
    const { resource, problems } = withDefaults(c.resource);
    assert.deepEqual(problems, []);
    const after = missingDefaults(schema, resource.spec, 'spec');
    assert.deepEqual(after.missing, []);
    assert.ok(after.checked >= c.atLeast, `only ${after.checked} defaulted fields checked`);
    // The same walk on the input, which has no defaults, finds them missing: the check can fail.
    assert.ok(missingDefaults(schema, c.resource.spec, 'spec').missing.length > 0);
  });

test('withDefaults does not change its input', () => {
  const pool = relayPool({ replicas: 3 });
  const before = structuredClone(pool);
  withDefaults(pool);
  assert.deepEqual(pool, before);
});
