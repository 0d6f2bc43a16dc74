import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relayWorkers, renderRelayConfig, restartChecksum } from './relay-config.ts';
import type { RelayConfigOptions } from './relay-config.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const options = (
  spec: Partial<RelayPoolSpec>,
  extra: Partial<RelayConfigOptions> = {},
): RelayConfigOptions => ({
  pool: withDefaults(relayPool(spec)).resource,
  domains: [],
  rateLimits: [],
  hasUsers: false,
  hasSmarthostCredentials: false,
  ...extra,
});

test('the restart checksum moves for listeners, not for domains or limits', () => {
  const base = restartChecksum(renderRelayConfig(options({})));
  const withDomain = restartChecksum(
    renderRelayConfig(options({}, { domains: [{ domain: 'a.com', suspended: false }] })),
  );
  const otherLimits = restartChecksum(renderRelayConfig(options({ limits: { maxRecipients: 10 } })));
  const otherPort = restartChecksum(renderRelayConfig(options({ listeners: { smtp: { port: 2525 } } })));
  assert.equal(withDomain, base);
  assert.equal(otherLimits, base);
  assert.notEqual(otherPort, base);
});

test('relay processes per pod follow the CPU the container may use', () => {
  const cases: { name: string; resources: Parameters<typeof relayWorkers>[0]; workers: number }[] = [
    { name: 'no resources', resources: undefined, workers: 1 },
    { name: 'the default 250m request', resources: { requests: { cpu: '250m' } }, workers: 1 },
    { name: 'a limit of 2 CPUs', resources: { requests: { cpu: '250m' }, limits: { cpu: '2' } }, workers: 2 },
    { name: 'a limit of 1500m', resources: { limits: { cpu: '1500m' } }, workers: 1 },
    { name: 'a request of 4 without a limit', resources: { requests: { cpu: 4 } }, workers: 4 },
    { name: 'a limit of 64 CPUs', resources: { limits: { cpu: '64' } }, workers: 16 },
  ];
  for (const c of cases) assert.equal(relayWorkers(c.resources), c.workers, c.name);
  assert.equal(renderRelayConfig(options({})).workers, 1, 'the default pool runs one process');
  assert.equal(
    renderRelayConfig(options({ resources: { requests: { cpu: '2' }, limits: { cpu: '2', memory: '1Gi' } } }))
      .workers,
    2,
  );
});

test("the relays' intake closes while a Drain deletion waits, and only then", async (t) => {
  const deleting = (policy: 'Drain' | 'Discard' | undefined, deleted: boolean) => {
    const pool = withDefaults(relayPool(policy ? { deletionPolicy: policy } : {})).resource;
    if (deleted) pool.metadata.deletionTimestamp = '2026-12-05T20:00:00Z' as unknown as Date;
    return pool;
  };
  const cases: { name: string; pool: ReturnType<typeof deleting>; intake: { open: boolean } | undefined }[] =
    [
      {
        name: 'a live pool: no intake field (the relay default, open)',
        pool: deleting(undefined, false),
        intake: undefined,
      },
      { name: 'a live Drain pool: open', pool: deleting('Drain', false), intake: undefined },
      { name: 'deleted, Drain by default: closed', pool: deleting(undefined, true), intake: { open: false } },
      { name: 'deleted, Drain: closed', pool: deleting('Drain', true), intake: { open: false } },
      {
        name: 'deleted, Discard: left open (the relays go at once)',
        pool: deleting('Discard', true),
        intake: undefined,
      },
    ];
  for (const c of cases)
    await t.test(c.name, () => {
      const config = renderRelayConfig({ ...options({}), pool: c.pool });
      assert.deepEqual(config.intake, c.intake);
    });
  await t.test('closing the intake does not roll the relays (no restart checksum change)', () =>
    assert.equal(
      restartChecksum(renderRelayConfig({ ...options({}), pool: deleting('Drain', true) })),
      restartChecksum(renderRelayConfig(options({}))),
    ),
  );
});
