// The suppression list in a real relay process: a synchronous 5.1.1 bounce adds the recipient,
// the next RCPT TO to it gets 550 5.1.1 (seen by swaks, as a user sees it), the refusal is counted
// and logged; the API adds (per sending domain), lists, removes, imports and exports; a read token
// may only look; the list survives a restart of the relay on the same spool.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  TEST_TOKENS,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';

const run = promisify(execFile);

/** swaks up to RCPT TO; its transcript (swaks exits non-zero when RCPT is refused). */
async function rcptWith(port: number, from: string, to: string): Promise<string> {
  const args = ['--server', `127.0.0.1:${port}`, '--from', from, '--to', to, '--quit-after', 'RCPT'];
  try {
    const { stdout, stderr } = await run('swaks', args);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout ?? '') + (e.stderr ?? '');
  }
}

type Listed = {
  total: number;
  entries: { address: string; scope: string; reason: string; source: string; messageId: string }[];
};

describe('relay suppression list', () => {
  let upstream: ScriptedUpstream;
  let relay: RelayProcess;
  let spool: string;
  let config: ReturnType<typeof relayConfig>;

  before(async () => {
    upstream = await startScripted();
    spool = await tempDir('spool');
    config = relayConfig(spool, upstream.port, {
      sendingDomains: [{ domain: 'example.com' }, { domain: 'news.example.com' }],
    });
    relay = await startRelay(config);
  });
  after(async () => {
    await relay?.stop();
    await upstream?.stop();
    await removeDir(spool);
  });

  const list = async (query = ''): Promise<Listed> =>
    (await (await relay.http(`/api/suppressions${query}`)).json()) as Listed;

  test('a 550 5.1.1 during delivery suppresses the recipient; the next RCPT TO to it is refused with 550 5.1.1', async () => {
    upstream.onRcpt = (to) =>
      to === 'gone@example.org' ? { code: 550, message: '5.1.1 User unknown' } : undefined;
    const sent = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['gone@example.org'],
      raw: rawMessage('first'),
    });
    assert.ok(sent.ok, sent.response);
    await waitFor(
      async () => (await list('?address=gone@example.org')).entries.length === 1,
      10000,
      'the bounce to be suppressed',
    );
    const [e] = (await list('?address=Gone@Example.org')).entries;
    assert.equal(e?.scope, '*');
    assert.equal(e?.reason, 'hard-bounce');
    assert.equal(e?.source, 'smtp');
    assert.match(e?.messageId ?? '', /^[A-Z0-9]+$/);

    const transcript = await rcptWith(relay.ports.smtp, 'other@news.example.com', 'gone@example.org');
    assert.match(transcript, /<\*\* 550 5\.1\.1 Recipient suppressed: an earlier message to it hard-bounced/);
    // Another recipient of the same relay is still accepted.
    assert.match(await rcptWith(relay.ports.smtp, 'a@example.com', 'fine@example.org'), /<- {2}250/);
    assert.equal(
      await relay.metric('mailfleet_relay_suppressed_recipients_total', {
        reason: 'hard-bounce',
        sending_domain: 'news.example.com',
      }),
      1,
    );
    assert.equal(
      await relay.metric('mailfleet_relay_smtp_rejections_total', {
        code: '550',
        reason: 'suppressedHardBounce',
      }),
      1,
    );
    assert.equal(
      await relay.metric('mailfleet_relay_suppressions_added_total', {
        reason: 'hard-bounce',
        source: 'smtp',
      }),
      1,
    );
    assert.ok(
      relay.logs.some(
        (l) => l.includes('"recipient suppressed"') && l.includes('"recipient":"gone@example.org"'),
      ),
    );
    upstream.onRcpt = () => undefined;
  });

  test('a message to a suppressed and a fine recipient is delivered to the fine one only', async () => {
    const before = upstream.received.length;
    const sent = await sendMessage(relay.ports.smtp, {
      from: 'a@example.com',
      to: ['gone@example.org', 'fine@example.org'],
      raw: rawMessage('mixed'),
    });
    assert.ok(sent.ok, sent.response);
    await waitFor(() => upstream.received.length > before, 10000, 'delivery');
    assert.deepEqual(upstream.received.at(-1)?.to, ['fine@example.org']);
  });

  test('the API adds an entry for one sending domain: refused for it, accepted for another', async () => {
    const added = await relay.http('/api/suppressions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        address: 'Complainer@Example.org',
        scope: 'news.example.com',
        reason: 'complaint',
      }),
    });
    assert.equal(added.status, 201);
    assert.match(
      await rcptWith(relay.ports.smtp, 'x@news.example.com', 'complainer@example.org'),
      /<\*\* 550 5\.7\.1 Recipient suppressed: the recipient reported/,
    );
    assert.match(await rcptWith(relay.ports.smtp, 'x@example.com', 'complainer@example.org'), /<- {2}250/);
    assert.ok(
      relay.logs.some(
        (l) =>
          l.includes('"admin action"') &&
          l.includes('"suppression-add"') &&
          l.includes('complainer@example.org'),
      ),
    );
  });

  test('a read token may list and export but not add, remove or import (403)', async () => {
    const read = { authorization: `Bearer ${TEST_TOKENS.read}` };
    assert.equal((await relay.http('/api/suppressions', { headers: read })).status, 200);
    assert.equal((await relay.http('/api/suppressions/export', { headers: read })).status, 200);
    for (const [method, path] of [
      ['POST', '/api/suppressions'],
      ['DELETE', '/api/suppressions?address=gone@example.org'],
      ['POST', '/api/suppressions/import'],
    ])
      assert.equal(
        (await relay.http(path!, { method: method!, headers: read, body: method === 'POST' ? '{}' : null }))
          .status,
        403,
        `${method} ${path}`,
      );
    assert.equal((await fetch(`${relay.base}/api/suppressions`)).status, 401);
  });

  test('bad input is refused with 400 and the reason', async () => {
    const bad = await relay.http('/api/suppressions', {
      method: 'POST',
      body: JSON.stringify({ address: 'a%b@example.org' }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /plain mailbox/);
  });

  test('import takes CSV and JSON lines, reports bad lines; export gives every entry back', async () => {
    const body = [
      'email',
      'imp1@example.org',
      'imp2@example.org,news.example.com,complaint',
      '{"address":"imp3@example.org","reason":"hard-bounce"}',
      'not-an-address',
      '',
    ].join('\n');
    const res = await relay.http('/api/suppressions/import', {
      method: 'POST',
      body,
      headers: { 'content-type': 'text/csv' },
    });
    assert.equal(res.status, 200);
    const result = (await res.json()) as { added: number; invalid: number; errors: { line: number }[] };
    assert.equal(result.added, 3);
    assert.equal(result.invalid, 1);
    assert.equal(result.errors[0]?.line, 5);
    const exported = (await (await relay.http('/api/suppressions/export')).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { address: string; scope: string; source: string });
    assert.deepEqual(exported.map((e) => `${e.scope} ${e.address}`).sort(), [
      '* gone@example.org',
      '* imp1@example.org',
      '* imp3@example.org',
      'news.example.com complainer@example.org',
      'news.example.com imp2@example.org',
    ]);
    assert.ok(exported.filter((e) => e.address.startsWith('imp')).every((e) => e.source === 'import'));
    assert.deepEqual((await list('?reason=complaint')).entries.map((e) => e.address).sort(), [
      'complainer@example.org',
      'imp2@example.org',
    ]);
  });

  test('remove lets the recipient through again; removing what is not there is 404', async () => {
    const removed = await relay.http('/api/suppressions?address=imp1@example.org', { method: 'DELETE' });
    assert.equal(removed.status, 200);
    assert.match(await rcptWith(relay.ports.smtp, 'x@example.com', 'imp1@example.org'), /<- {2}250/);
    assert.equal(
      (await relay.http('/api/suppressions?address=imp1@example.org', { method: 'DELETE' })).status,
      404,
    );
  });

  test('the list survives a restart of the relay on the same spool', async () => {
    await relay.stop();
    relay = await startRelay(config);
    assert.equal((await list()).total, 4);
    assert.match(await rcptWith(relay.ports.smtp, 'x@example.com', 'gone@example.org'), /<\*\* 550 5\.1\.1/);
    assert.match(await rcptWith(relay.ports.smtp, 'x@example.com', 'imp1@example.org'), /<- {2}250/);
    assert.equal(await relay.metric('mailfleet_relay_suppression_entries'), 4);
  });
});
