// Smarthost delivery over STARTTLS (required) and implicit TLS with AUTH, and inbound AUTH over
// the relay's own STARTTLS and implicit TLS listeners.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashPassword } from '../../contract/users.ts';
import {
  TEST_CERT,
  TEST_KEY,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  startSink,
  tempDir,
  waitFor,
} from '../helpers/relay/peers.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function tlsAuthUpstream(secure: boolean) {
  const seen: { user?: string; secure?: boolean } = {};
  const upstream = await startScripted({
    secure,
    key: await readFile(TEST_KEY),
    cert: await readFile(TEST_CERT),
    authOptional: false,
    onAuth(auth, session, cb) {
      seen.user = auth.username;
      seen.secure = session.secure;
      if (auth.username === 'relay' && auth.password === 'hunter2') return cb(null, { user: 'relay' });
      cb(new Error('bad credentials'));
    },
  });
  cleanups.push(() => upstream.stop());
  return { upstream, seen };
}

for (const tls of ['starttls-required', 'implicit'] as const) {
  describe(`smarthost with ${tls} TLS and AUTH`, () => {
    test('the relay authenticates over TLS and the message arrives', async () => {
      const { upstream, seen } = await tlsAuthUpstream(tls === 'implicit');
      const dir = await tempDir('tls');
      cleanups.push(() => removeDir(dir));
      await writeFile(join(dir, 'smarthost-credentials'), 'relay:hunter2\n');
      const relay = await startRelay(
        relayConfig(join(dir, 'spool'), upstream.port, {
          delivery: {
            mode: 'smarthost',
            smarthost: {
              host: '127.0.0.1',
              port: upstream.port,
              tls,
              credentialsFile: join(dir, 'smarthost-credentials'),
              tlsInsecure: true,
            },
          },
        }),
      );
      cleanups.push(() => relay.stop());
      const r = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: ['b@example.org'],
        raw: rawMessage(tls),
      });
      assert.ok(r.ok);
      await waitFor(() => upstream.received.length === 1, 10000, 'delivery');
      assert.equal(seen.user, 'relay');
      assert.equal(seen.secure, true);
    });
  });
}

describe('inbound AUTH on submission and smtps', () => {
  test('auth Required refuses unauthenticated senders and accepts valid credentials over TLS', async () => {
    const sink = await startSink();
    const dir = await tempDir('auth');
    cleanups.push(
      () => sink.stop(),
      () => removeDir(dir),
    );
    await writeFile(join(dir, 'users'), `app:${await hashPassword('s3cret')}\n`);
    const relay = await startRelay(
      relayConfig(join(dir, 'spool'), sink.port, {
        listeners: {
          smtp: { enabled: false },
          submission: { enabled: true, host: '127.0.0.1', port: 0 },
          smtps: { enabled: true, host: '127.0.0.1', port: 0 },
        },
        tls: { certFile: TEST_CERT, keyFile: TEST_KEY },
        auth: { mode: 'Required', usersFile: join(dir, 'users') },
      }),
    );
    cleanups.push(() => relay.stop());
    const tlsOptions = { ignoreTLS: false, requireTLS: true, tls: { rejectUnauthorized: false } };
    const anonymous = await sendMessage(
      relay.ports.submission!,
      { from: 'a@example.com', to: ['b@example.org'], raw: rawMessage('anon') },
      tlsOptions,
    );
    assert.equal(anonymous.code, 530, anonymous.response);
    const wrong = await sendMessage(
      relay.ports.submission!,
      { from: 'a@example.com', to: ['b@example.org'], raw: rawMessage('w') },
      { ...tlsOptions, auth: { user: 'app', pass: 'nope' } },
    );
    assert.equal(wrong.ok, false);
    const good = await sendMessage(
      relay.ports.submission!,
      { from: 'a@example.com', to: ['b@example.org'], raw: rawMessage('sub') },
      { ...tlsOptions, auth: { user: 'app', pass: 's3cret' } },
    );
    assert.ok(good.ok, good.response);
    const implicit = await sendMessage(
      relay.ports.smtps!,
      { from: 'a@example.com', to: ['b@example.org'], raw: rawMessage('smtps') },
      { secure: true, tls: { rejectUnauthorized: false }, auth: { user: 'app', pass: 's3cret' } },
    );
    assert.ok(implicit.ok, implicit.response);
    // smtp-sink creates a message's dump file before its bytes are in it: wait for both subjects.
    await waitFor(
      async () => (await sink.messages()).filter((m) => /Subject: test \w+/.test(m)).length === 2,
      10000,
      'both delivered',
    );
    assert.equal((await sink.messages()).length, 2);
    const received = (await sink.messages()).join('\n');
    assert.match(received, /with ESMTPSA id/);
  });
});
