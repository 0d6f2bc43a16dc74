// The management port against a real relay process: what is open, what needs which token, the
// failed-attempt throttle, the audit trail, and a token rotated by rewriting its file (no restart).
// The upstream is a closed port, so accepted mail stays queued (deferred) for the whole test.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TEST_TOKENS,
  TEST_TOKEN_FILES,
  freePort,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  tempDir,
  waitFor,
  type RelayProcess,
} from '../helpers/relay/peers.ts';

const queued = (response: string) => /queued as ([A-Z0-9]+)/.exec(response)?.[1] ?? '';

async function call(relay: RelayProcess, method: string, path: string, token?: string) {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(relay.base + path, { method, headers });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function queuedIds(relay: RelayProcess): Promise<string[]> {
  const res = await call(relay, 'GET', '/api/messages', TEST_TOKENS.read);
  return (JSON.parse(res.body) as { messages: { id: string }[] }).messages.map((m) => m.id).sort();
}

async function send(relay: RelayProcess, tag: string): Promise<string> {
  const sent = await sendMessage(relay.ports.smtp, {
    from: `private-sender-${tag}@example.com`,
    to: [`private-recipient-${tag}@example.org`],
    raw: rawMessage(tag),
  });
  assert.ok(sent.ok, sent.response);
  return queued(sent.response);
}

describe('relay management port authentication', () => {
  let relay: RelayProcess;
  let spool: string;
  let first: string;
  let second: string;

  before(async () => {
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, await freePort(), {
        retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '5d' },
        // The refusal tests below fail ~20 times from one address; the throttle has its own test.
        http: { host: '127.0.0.1', port: 0, tokens: TEST_TOKEN_FILES, authThrottle: { burst: 1000 } },
      }),
    );
    first = await send(relay, 'one');
    second = await send(relay, 'two');
  });
  after(async () => {
    await relay?.stop();
    await removeDir(spool);
  });

  test('metrics, health and readiness answer without a token and show no envelope address', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const res = await call(relay, 'GET', path);
      assert.equal(res.status, 200, path);
      assert.doesNotMatch(res.body, /private-(sender|recipient)/, path);
      assert.doesNotMatch(res.body, new RegExp(first), path);
    }
  });

  const readRoutes = () => [
    ['GET', '/api/queue'],
    ['GET', '/api/shaping'],
    ['GET', '/api/messages'],
    ['GET', `/api/messages/${first}`],
    ['GET', '/api/no-such-thing'],
    ['PUT', '/api/queue'],
  ];
  const adminRoutes = () => [
    ['POST', `/api/messages/${first}/retry`],
    ['DELETE', `/api/messages/${first}`],
    ['POST', '/drain'],
  ];

  test('every /api and /drain route refuses a request without a token with 401 and a challenge', async () => {
    for (const [method, path] of [...readRoutes(), ...adminRoutes()]) {
      const res = await call(relay, method!, path!);
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(
        res.headers.get('www-authenticate'),
        'Bearer realm="mailfleet-relay"',
        `${method} ${path}`,
      );
      assert.doesNotMatch(res.body, /private-/);
    }
    assert.deepEqual(await queuedIds(relay), [first, second].sort());
  });

  test('a wrong token is 401 invalid_token on every route', async () => {
    for (const [method, path] of [...readRoutes(), ...adminRoutes()]) {
      const res = await call(relay, method!, path!, 'wrong-token-0123456789abcdef');
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    assert.deepEqual(await queuedIds(relay), [first, second].sort());
  });

  test('the read token reads the queue and messages', async () => {
    const want: Record<string, number> = {
      '/api/queue': 200,
      '/api/shaping': 200,
      '/api/messages': 200,
      [`/api/messages/${first}`]: 200,
      '/api/no-such-thing': 404,
    };
    for (const [path, status] of Object.entries(want))
      assert.equal((await call(relay, 'GET', path, TEST_TOKENS.read)).status, status, path);
    assert.equal((await call(relay, 'PUT', '/api/queue', TEST_TOKENS.read)).status, 405);
    const viaHeader = await fetch(`${relay.base}/api/queue`, {
      headers: { 'x-mailfleet-token': TEST_TOKENS.read },
    });
    assert.equal(
      viaHeader.status,
      200,
      'the token in X-Mailfleet-Token (what passes the API server pod proxy)',
    );
    const detail = await call(relay, 'GET', `/api/messages/${first}`, TEST_TOKENS.read);
    assert.match(detail.body, /private-recipient-one@example.org/);
  });

  test('the read token is refused with 403 on retry, delete and drain, and nothing changes', async () => {
    for (const [method, path] of adminRoutes()) {
      const res = await call(relay, method!, path!, TEST_TOKENS.read);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    }
    assert.deepEqual(await queuedIds(relay), [first, second].sort());
    assert.equal((await call(relay, 'GET', '/readyz')).status, 200, 'not draining');
  });

  test('the refusals are counted by reason', async () => {
    assert.ok((await relay.metric('mailfleet_relay_http_auth_refusals_total', { reason: 'missing' })) >= 9);
    assert.ok((await relay.metric('mailfleet_relay_http_auth_refusals_total', { reason: 'invalid' })) >= 9);
    assert.equal(await relay.metric('mailfleet_relay_http_auth_refusals_total', { reason: 'forbidden' }), 3);
  });

  test('the admin token retries, deletes and drains, and each action is logged and counted', async () => {
    const retry = await call(relay, 'POST', `/api/messages/${first}/retry`, TEST_TOKENS.admin);
    assert.equal(retry.status, 202);
    const deleted = await call(relay, 'DELETE', `/api/messages/${first}`, TEST_TOKENS.admin);
    assert.equal(deleted.status, 200);
    assert.deepEqual(await queuedIds(relay), [second]);
    const missing = await call(relay, 'DELETE', '/api/messages/NOSUCHID', TEST_TOKENS.admin);
    assert.equal(missing.status, 404);

    const audit = relay.logs
      .filter((l) => l.includes('"admin action"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const pick = (a: Record<string, unknown>) => [a.action, a.tokenName, a.role, a.queueId, a.status];
    assert.deepEqual(audit.map(pick), [
      ['retry', 'test-admin', 'admin', first, 202],
      ['delete', 'test-admin', 'admin', first, 200],
      ['delete', 'test-admin', 'admin', 'NOSUCHID', 404],
    ]);
    assert.ok(audit.every((a) => a.client === '127.0.0.1'));
    assert.equal(
      await relay.metric('mailfleet_relay_admin_actions_total', { action: 'delete', role: 'admin' }),
      2,
    );
    assert.equal(
      await relay.metric('mailfleet_relay_admin_actions_total', { action: 'retry', role: 'admin' }),
      1,
    );

    const drain = await call(relay, 'POST', '/drain', TEST_TOKENS.admin);
    assert.equal(drain.status, 202);
    await waitFor(() => relay.logs.some((l) => l.includes('"action":"drain"')), 5000, 'the drain audit line');
    await waitFor(() => relay.proc.exitCode !== null, 20000, 'the drained relay to exit');
    assert.equal(relay.proc.exitCode, 0);
  });
});

describe('relay management port throttle and token rotation', () => {
  let relay: RelayProcess;
  let spool: string;
  let tokens: string;

  before(async () => {
    spool = await tempDir('spool');
    tokens = await tempDir('tokens');
    await writeFile(join(tokens, 'admin'), 'first-admin-token-0123456789\n');
    relay = await startRelay(
      relayConfig(spool, await freePort(), {
        http: {
          host: '127.0.0.1',
          port: 0,
          tokens: [{ name: 'ops', role: 'admin', file: join(tokens, 'admin') }],
          authThrottle: { burst: 3, refill: '1h' },
        },
      }),
    );
  });
  after(async () => {
    await relay?.stop();
    await removeDir(spool);
    await removeDir(tokens);
  });

  test('a rewritten token file replaces the token without a restart', async () => {
    const pid = relay.proc.pid;
    assert.equal((await call(relay, 'GET', '/api/queue', 'first-admin-token-0123456789')).status, 200);
    const reloads = () => relay.metric('mailfleet_relay_config_reloads_total', { result: 'success' });
    const before = await reloads();
    await writeFile(join(tokens, 'admin'), 'second-admin-token-0123456789\n');
    // Polling with the new token would spend the failed-attempt bucket; wait for the reload instead.
    await waitFor(async () => (await reloads()) > before, 10000, 'the token file to be reloaded');
    assert.equal((await call(relay, 'GET', '/api/queue', 'second-admin-token-0123456789')).status, 200);
    assert.equal((await call(relay, 'GET', '/api/queue', 'first-admin-token-0123456789')).status, 401);
    assert.equal(relay.proc.pid, pid);
    assert.equal(relay.proc.exitCode, null);
  });

  test('a token file emptied by mistake is rejected and the token in force stays', async () => {
    await writeFile(join(tokens, 'admin'), '');
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_config_reloads_total', { result: 'failure' })) >= 1,
      10000,
      'the reload to be rejected',
    );
    assert.equal((await call(relay, 'GET', '/api/queue', 'second-admin-token-0123456789')).status, 200);
  });

  test('after `burst` failed attempts the address gets 429 with Retry-After, even with the right token', async () => {
    // One failure was spent above (the first token after rotation).
    assert.equal((await call(relay, 'GET', '/api/queue', 'guess-0000000000000000')).status, 401);
    assert.equal((await call(relay, 'GET', '/api/queue')).status, 401);
    const throttled = await call(relay, 'GET', '/api/queue', 'second-admin-token-0123456789');
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) > 0);
    assert.equal((await call(relay, 'GET', '/metrics')).status, 200, 'metrics stay open');
    assert.equal(await relay.metric('mailfleet_relay_http_auth_refusals_total', { reason: 'throttled' }), 1);
  });
});
