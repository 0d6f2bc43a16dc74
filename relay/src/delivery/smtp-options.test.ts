import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveryConfig, SmarthostConfig } from '../config/types.ts';
import {
  IDLE_TIMEOUT_MS,
  LEASED_IDLE_TIMEOUT_MS,
  poolKey,
  poolSettings,
  type PoolTarget,
} from './smtp-options.ts';

function delivery(over: Partial<DeliveryConfig> = {}): DeliveryConfig {
  return {
    mode: 'direct',
    dns: { servers: [] },
    ehloName: 'relay.example.test',
    maxConnectionsPerDestination: 10,
    maxConnections: 100,
    maxMessagesPerConnection: 100,
    connectTimeout: '30s',
    commandTimeout: '60s',
    directPort: 25,
    ...over,
  };
}

function smarthost(over: Partial<SmarthostConfig> = {}): SmarthostConfig {
  return { host: 'smtp.example.test', port: 587, tls: 'starttls-required', tlsInsecure: false, ...over };
}

function target(over: Partial<PoolTarget> = {}): PoolTarget {
  return { delivery: delivery(), host: '192.0.2.1', port: 25, kind: 'direct', ...over };
}

test('every connection gets the EHLO name, the timeouts and no logger', () => {
  const { connection } = poolSettings(target());
  assert.equal(connection.host, '192.0.2.1');
  assert.equal(connection.port, 25);
  assert.equal(connection.name, 'relay.example.test');
  assert.equal(connection.connectionTimeout, 30_000);
  assert.equal(connection.greetingTimeout, 60_000);
  assert.equal(connection.socketTimeout, 60_000);
  assert.equal(connection.logger, false);
});

test('TLS follows the smarthost mode; MX hosts get opportunistic STARTTLS without verification', () => {
  const sh = (tls: SmarthostConfig['tls'], tlsInsecure = false) =>
    target({
      kind: 'smarthost',
      host: 'smtp.example.test',
      delivery: delivery({ mode: 'smarthost', smarthost: smarthost({ tls, tlsInsecure }) }),
    });
  const cases: [string, PoolTarget, Record<string, unknown>][] = [
    [
      'implicit TLS',
      sh('implicit'),
      {
        secure: true,
        requireTLS: false,
        opportunisticTLS: false,
        rejectUnauthorized: true,
        servername: 'smtp.example.test',
      },
    ],
    [
      'STARTTLS required',
      sh('starttls-required'),
      {
        secure: false,
        requireTLS: true,
        opportunisticTLS: false,
        rejectUnauthorized: true,
        servername: 'smtp.example.test',
      },
    ],
    [
      'STARTTLS opportunistic, certificate not checked',
      sh('starttls-opportunistic', true),
      {
        secure: false,
        requireTLS: false,
        opportunisticTLS: true,
        rejectUnauthorized: false,
        servername: 'smtp.example.test',
      },
    ],
    [
      'an MX address, SNI with the MX name',
      target({ servername: 'mx1.example.test' }),
      {
        secure: undefined,
        requireTLS: undefined,
        opportunisticTLS: true,
        rejectUnauthorized: false,
        servername: 'mx1.example.test',
      },
    ],
    [
      'a DANE host that is a CNAME, SNI with the TLSA base domain (its target)',
      target({
        servername: 'mx.example.test',
        tlsRequirement: 'dane',
        tlsDane: { records: [], names: ['mx.provider.test', 'mx.example.test'] },
      }),
      {
        secure: undefined,
        requireTLS: undefined,
        opportunisticTLS: true,
        rejectUnauthorized: false,
        servername: 'mx.provider.test',
      },
    ],
    [
      'a handoff peer, no name to send',
      target(),
      {
        secure: undefined,
        requireTLS: undefined,
        opportunisticTLS: true,
        rejectUnauthorized: false,
        servername: undefined,
      },
    ],
  ];
  for (const [name, input, expected] of cases) {
    const c = poolSettings(input).connection;
    assert.deepEqual(
      {
        secure: c.secure,
        requireTLS: c.requireTLS,
        opportunisticTLS: c.opportunisticTLS,
        rejectUnauthorized: c.tls?.rejectUnauthorized,
        servername: c.tls?.servername,
      },
      expected,
      name,
    );
  }
});

test("an MX host's connections carry its TLS requirement; a smarthost's never (nodemailer enforces its mode)", () => {
  const cases: [string, PoolTarget, string][] = [
    ['direct, no requirement given', target(), 'none'],
    ['direct, verify', target({ servername: 'mx.example.test', tlsRequirement: 'verify' }), 'verify'],
    ['direct, encrypt', target({ tlsRequirement: 'encrypt' }), 'encrypt'],
    [
      'smarthost, a requirement passed by mistake',
      target({
        kind: 'smarthost',
        tlsRequirement: 'verify',
        delivery: delivery({ mode: 'smarthost', smarthost: smarthost() }),
      }),
      'none',
    ],
  ];
  for (const [name, input, expected] of cases)
    assert.equal(poolSettings(input).tlsRequirement, expected, name);
});

test('AUTH only towards the smarthost, and only with credentials', () => {
  const credentials = { user: 'relay', pass: 's3cret' };
  const sh = {
    kind: 'smarthost' as const,
    delivery: delivery({ mode: 'smarthost', smarthost: smarthost() }),
  };
  const cases: [string, PoolTarget, unknown][] = [
    ['smarthost with credentials', target({ ...sh, credentials }), { user: 'relay', credentials }],
    ['smarthost without', target(sh), undefined],
    ['MX hosts never', target({ credentials }), undefined],
  ];
  for (const [name, input, expected] of cases) assert.deepEqual(poolSettings(input).auth, expected, name);
});

test('a RateLimit narrows the connections and messages per connection of its own pools', () => {
  const cases: [string, PoolTarget['shaping'], { maxConnections: number; maxMessages: number }][] = [
    ['unshaped: the delivery settings', undefined, { maxConnections: 10, maxMessages: 100 }],
    [
      'fewer connections',
      { key: 'k', maxConnections: 2, maxMessages: undefined },
      { maxConnections: 2, maxMessages: 100 },
    ],
    [
      'never more than per destination',
      { key: 'k', maxConnections: 50, maxMessages: 5 },
      { maxConnections: 10, maxMessages: 5 },
    ],
  ];
  for (const [name, shaping, expected] of cases) {
    const { limits } = poolSettings(target({ shaping }));
    assert.deepEqual(limits, { ...expected, idleTimeoutMs: IDLE_TIMEOUT_MS }, name);
  }
});

test('a pool whose connections are leased pool-wide asks its gate and closes idle connections soon', () => {
  const gate = { acquire: () => Promise.resolve(undefined), withdraw: () => undefined };
  const cases: [string, PoolTarget['shaping'], { idleTimeoutMs: number; gated: boolean }][] = [
    [
      'no gate: idle 4 minutes',
      { key: 'k', maxConnections: 2, maxMessages: 5 },
      { idleTimeoutMs: IDLE_TIMEOUT_MS, gated: false },
    ],
    [
      'gated: idle 1 s, the gate handed on',
      { key: 'k', maxConnections: 4, maxMessages: 5, gate },
      { idleTimeoutMs: LEASED_IDLE_TIMEOUT_MS, gated: true },
    ],
  ];
  for (const [name, shaping, expected] of cases) {
    const settings = poolSettings(target({ shaping }));
    assert.equal(settings.limits.idleTimeoutMs, expected.idleTimeoutMs, name);
    assert.equal(settings.gate === gate, expected.gated, name);
  }
});

test('shaped messages get pools of their own', () => {
  assert.equal(poolKey('192.0.2.1:25', undefined), '192.0.2.1:25');
  assert.equal(
    poolKey('192.0.2.1:25', { key: 'gmail', maxConnections: 1, maxMessages: undefined }),
    '192.0.2.1:25|gmail',
  );
});
