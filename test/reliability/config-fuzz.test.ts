// Bad input never breaks the relay's config loader: generated YAML text and generated values of
// every shape go through parseConfigText/validateConfig; nothing throws, every error names a field
// and says what is wrong, and whatever validates is a complete config that validates again to
// itself. Short mode runs thousands of cases; MAILFLEET_LONG=1 runs a hundred times more.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseConfigText } from '../../relay/src/config/load.ts';
import { validateConfig } from '../../relay/src/config/validate.ts';

const runs = process.env.MAILFLEET_LONG ? 300_000 : 3_000;

function assertWellFormed(result: ReturnType<typeof validateConfig>): void {
  if (result.ok) {
    const c = result.config;
    assert.equal(typeof c.listeners.smtp.port, 'number');
    assert.ok(Number.isInteger(c.limits.maxRecipients) && c.limits.maxRecipients >= 1);
    assert.equal(typeof c.spool.dir, 'string');
    assert.ok(Array.isArray(c.sendingDomains));
    // Defaults are stable: a validated config validates again to itself.
    const again = validateConfig(structuredClone(c));
    assert.equal(again.ok, true, JSON.stringify(!again.ok && again.errors));
    assert.deepEqual(again.ok && again.config, c);
    return;
  }
  assert.ok(result.errors.length > 0, 'a refused config has at least one error');
  for (const e of result.errors) {
    assert.equal(typeof e.path, 'string');
    assert.ok(e.path.length > 0, 'every error names a field');
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, 'every error says what is wrong');
  }
}

const valid = {
  listeners: { smtp: { port: 2525, host: '127.0.0.1' } },
  allowedNetworks: ['127.0.0.0/8'],
  sendingDomains: [{ domain: 'example.com' }],
  delivery: {
    mode: 'smarthost',
    smarthost: { host: '127.0.0.1', port: 2526, tls: 'starttls-opportunistic' },
  },
  spool: { dir: '/tmp/spool', minFreeBytes: 0 },
  http: { host: '127.0.0.1', port: 8080 },
};

const paths: string[][] = [
  ['listeners', 'smtp', 'port'],
  ['listeners', 'smtp', 'enabled'],
  ['listeners', 'submission'],
  ['allowedNetworks'],
  ['allowedNetworks', '0'],
  ['sendingDomains', '0', 'domain'],
  ['sendingDomains', '0', 'dkim'],
  ['delivery', 'mode'],
  ['delivery', 'smarthost', 'port'],
  ['delivery', 'smarthost', 'tls'],
  ['delivery', 'dns'],
  ['retry', 'firstRetry'],
  ['retry', 'maxQueueLifetime'],
  ['limits', 'maxMessageSize'],
  ['limits', 'maxRecipients'],
  ['rateLimits'],
  ['spool', 'minFreeBytes'],
  ['http', 'port'],
  ['drainTimeout'],
  ['handoff'],
  ['auth', 'mode'],
  ['tls'],
];

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = /^\d+$/.test(key) ? [] : {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

const oddValue = fc.oneof(
  fc.anything(),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 65536, 2 ** 53, Number.NaN, '', ' ', '5x', '1h', '10.0.0.0/33', '*', null),
  fc.array(fc.string(), { maxLength: 5 }),
);

describe('config loader under generated input', () => {
  test('arbitrary text never throws and yields well-formed results', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        assertWellFormed(parseConfigText(text, '/etc/mailfleet/relay.yaml'));
      }),
      { numRuns: runs },
    );
  });
  test('arbitrary values of any shape never throw', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), (value) => {
        assertWellFormed(validateConfig(value));
      }),
      { numRuns: runs },
    );
  });
  test('a valid config with one to three fields replaced by odd values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...paths), oddValue), { minLength: 1, maxLength: 3 }),
        (edits) => {
          const config = structuredClone(valid) as Record<string, unknown>;
          for (const [path, value] of edits) setPath(config, path, value);
          assertWellFormed(validateConfig(config));
          assertWellFormed(parseConfigText(stringify(config), '/etc/mailfleet/relay.yaml'));
        },
      ),
      { numRuns: runs },
    );
  });
  test('the base config of the mutation test is itself valid', () => {
    assert.equal(validateConfig(structuredClone(valid)).ok, true);
  });
});
