import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RELAY_SECRET_BUDGET, relaySecrets } from './secret.ts';
import { desiredState } from './state.ts';
import { relaySecretKeys } from './meta.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
} from '../../../test/helpers/operator/fixtures.ts';

/** A stand-in for an RSA-2048 PKCS#8 PEM: the same size, 1,704 bytes. */
const pemOfRsaSize = (i: number) =>
  `-----BEGIN PRIVATE KEY-----\n${String(i).padStart(1640, 'A')}\n-----END PRIVATE KEY-----\n`;

const dataBytes = (data: Record<string, string> | undefined) =>
  Object.entries(data ?? {}).reduce((sum, [k, v]) => sum + k.length + Buffer.from(v, 'base64').length, 0);

test('the relay Secret is split into shards under the budget, users first, keys in domain order', () => {
  const cases: { name: string; keys: number; budget: number; shards: number }[] = [
    { name: 'no keys: one Secret', keys: 0, budget: 10_000, shards: 1 },
    { name: 'fits in one', keys: 5, budget: 10_000, shards: 1 },
    { name: 'just over one', keys: 6, budget: 10_000, shards: 2 },
    { name: 'many', keys: 40, budget: 10_000, shards: 8 },
  ];
  for (const c of cases) {
    const shards = relaySecrets(
      {
        pool: relayPool(),
        users: { hashes: { relay: '$scrypt$x' }, checksum: 'c', checksumKey: 'k' },
        dkimKeys: Array.from({ length: c.keys }, (_, i) => ({
          domain: `d${String(i).padStart(3, '0')}.example`,
          selector: 's',
          pem: pemOfRsaSize(i),
        })),
      },
      c.budget,
    );
    assert.equal(shards.length, c.shards, c.name);
    assert.deepEqual(
      shards.map((s) => s.metadata?.name),
      Array.from({ length: c.shards }, (_, i) =>
        i === 0 ? 'transactional-relay' : `transactional-relay-${i}`,
      ),
      `${c.name}: names`,
    );
    for (const s of shards)
      assert.ok(dataBytes(s.data) <= c.budget, `${c.name}: ${s.metadata?.name} under budget`);
    assert.ok(shards[0]?.data?.[relaySecretKeys.users], `${c.name}: users in the first shard`);
    assert.equal(
      shards.reduce((n, s) => n + Object.keys(s.data ?? {}).length, 0),
      c.keys + 2, // the keys, the users file and its checksum key
      `${c.name}: every key exactly once`,
    );
  }
});

test('a pool of 2,000 RSA domains: every key in a shard under 1 MiB, every shard mounted', () => {
  const domains = Array.from({ length: 2000 }, (_, i) =>
    sendingDomain(`d${i}.example`, { dkim: { keySecretRef: { name: `key-${i}` } } }),
  );
  const keySecrets = domains.map((_, i) => secret(`key-${i}`, { 'dkim.key': realisticKey }));
  const d = desiredState(
    observed({ pool: relayPool({ replicas: 1 }), domains, secrets: secrets(...keySecrets) }),
    fakeGenerators(),
  );
  const shards = d.apply.filter(
    (o) => o.kind === 'Secret' && o.metadata?.name?.startsWith('transactional-relay'),
  );
  assert.ok(shards.length >= 4, `${shards.length} shards`);
  for (const s of shards) assert.ok(dataBytes(s.data as Record<string, string>) <= RELAY_SECRET_BUDGET);
  assert.equal(
    shards.reduce((n, s) => n + Object.keys((s.data as Record<string, string>) ?? {}).length, 0),
    2000,
  );
  const workload = d.apply.find((o) => o.kind === 'Deployment') as {
    spec: {
      template: {
        spec: { volumes: { name: string; projected?: { sources: { secret?: { name: string } }[] } }[] };
      };
    };
  };
  const mounted = workload.spec.template.spec.volumes
    .find((v) => v.name === 'config')
    ?.projected?.sources.flatMap((s) => (s.secret ? [s.secret.name] : []));
  for (const s of shards) assert.ok(mounted?.includes(s.metadata?.name ?? ''), `${s.metadata?.name} mounted`);
});

const realisticKey = (await import('node:crypto'))
  .generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

test('the users checksum in the annotation is keyed: not a hash of the passwords anyone can recompute', async () => {
  const { createHash } = await import('node:crypto');
  const { usersChecksum } = await import('./secret.ts');
  const users = { relay: 'hunter2' };
  const plain = createHash('sha256')
    .update(JSON.stringify([['relay', 'hunter2']]))
    .digest('hex');
  assert.notEqual(usersChecksum(users, 'key-a'), plain);
  assert.notEqual(usersChecksum(users, 'key-a'), usersChecksum(users, 'key-b'), 'each pool its own key');
  assert.equal(usersChecksum(users, 'key-a'), usersChecksum({ relay: 'hunter2' }, 'key-a'), 'stable');
  // A second pass with the stored key finds the same checksum: nothing is rehashed or rewritten.
  const input = observed({
    pool: relayPool({ auth: { mode: 'Optional' } }),
    secrets: secrets(secret('transactional-credentials', { username: 'relay', password: 'p' })),
  });
  const first = desiredState(input, fakeGenerators());
  const relay = first.apply.find((o) => o.metadata?.name === 'transactional-relay') as never as {
    metadata: { annotations: Record<string, string> };
    data: Record<string, string>;
  };
  const stored = secret(
    'transactional-relay',
    Object.fromEntries(Object.entries(relay.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])),
    relay.metadata.annotations,
  );
  const second = desiredState(
    { ...input, secrets: secrets(...input.secrets.values(), stored) },
    fakeGenerators(),
  );
  const again = second.apply.find((o) => o.metadata?.name === 'transactional-relay') as never as {
    data: Record<string, string>;
  };
  assert.deepEqual(again.data, relay.data, 'same checksum key, same hashes: nothing rewritten');
});
