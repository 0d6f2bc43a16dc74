import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { desiredState } from '../desired/state.ts';
import { findCondition } from '../api/conditions.ts';
import type { Condition } from '../api/types.ts';
import {
  dkimKeyAsync,
  generators,
  slowGenerators,
  prepare,
  recordingGenerators,
  replayingGenerators,
  requested,
} from './generators.ts';
import { parseHash, verifyPassword } from '../../../contract/users.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  sendingDomain,
} from '../../../test/helpers/operator/fixtures.ts';

test('the asynchronous generators make real keys and users-file hashes', async () => {
  const rsa = createPrivateKey(await dkimKeyAsync('rsa-sha256'));
  assert.equal(rsa.asymmetricKeyType, 'rsa');
  assert.equal(rsa.asymmetricKeyDetails?.modulusLength, 2048);
  assert.equal(createPrivateKey(await dkimKeyAsync('ed25519-sha256')).asymmetricKeyType, 'ed25519');
  // The users-file hash is the contract's (contract/users.test.ts): what the relay verifies.
  const users = new Map([['app', await slowGenerators.hashPassword('secret')]]);
  assert.equal(await verifyPassword(users, 'app', 'secret'), true);
  assert.equal(await verifyPassword(users, 'app', 'Secret'), false);
  assert.equal(parseHash(generators.hashPassword('secret'))?.key.length, 32);
});

test('a pass makes at most its share of new keys; the other domains wait as KeyPending', async () => {
  const input = observed({
    pool: relayPool({ replicas: 1, auth: { mode: 'Optional' } }),
    domains: Array.from({ length: 40 }, (_, i) =>
      sendingDomain(`d${i}.example`, { dkim: { algorithm: 'ed25519-sha256' } }),
    ),
  });
  const base = fakeGenerators();
  const recording = recordingGenerators(base);
  desiredState(input, recording.gen);
  assert.ok(requested(recording.requests));
  assert.equal(recording.requests.keys.length, 40);
  assert.equal(recording.requests.hashes.length, 1, 'the generated user password is hashed');
  const slow = {
    dkimKey: async () => base.dkimKey('ed25519-sha256') ?? '',
    hashPassword: async (p: string) => `$hash$${p}`,
  };
  const prepared = await prepare(recording.requests, slow, 16);
  assert.equal(prepared.keys.length, 16);
  const d = desiredState(input, replayingGenerators(recording.requests, prepared, base));
  const keySecrets = d.create.filter((o) => o.metadata?.name?.includes('-dkim-'));
  assert.equal(keySecrets.length, 16, 'sixteen keys stored this pass');
  const pending = d.statuses.filter(
    (s) =>
      s.kind === 'SendingDomain' &&
      findCondition(s.status.conditions as Condition[], 'DKIMKeyReady')?.reason === 'KeyPending',
  );
  assert.equal(pending.length, 24, 'the rest wait for the next pass');
  // The replayed decision uses the same generated password the recording one handed out.
  const credentials = d.create.find((o) => o.metadata?.name === 'transactional-credentials') as {
    stringData?: Record<string, string>;
    data?: Record<string, string>;
  };
  const password =
    credentials.stringData?.password ?? Buffer.from(credentials.data?.password ?? '', 'base64').toString();
  assert.equal(password, recording.requests.passwords[0]);
  const relay = d.apply.find((o) => o.metadata?.name === 'transactional-relay') as {
    data: Record<string, string>;
  };
  assert.equal(Buffer.from(relay.data.users ?? '', 'base64').toString(), `relay:$hash$${password}\n`);
});
