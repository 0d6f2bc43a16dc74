// Bad input on the management port: generated requests (methods, odd and encoded paths, absolute
// and asterisk request targets, Authorization headers that are missing, malformed, near misses of
// the admin token or the read token, random headers and bodies) written raw to a running relay
// that holds queued mail. Every request must get an HTTP response in time (no hang, no crash), and
// none may change state: the queue keeps the same messages, the relay is not drained, and no
// admin action is logged or counted. The admin token itself is never sent.
// Short mode: 5,000 requests; MAILFLEET_LONG=1: 30,000.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
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
} from '../helpers/relay/peers.ts';
import { LONG, report } from './lib/smtp.ts';

const runs = Number(process.env.FUZZ_RUNS ?? (LONG ? 30_000 : 5_000));

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** One raw request; resolves with the status code of the response (0: closed without one). */
function rawRequest(port: number, text: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no response within 5 s'));
    }, 5000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const head = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3}) /.exec(head);
      if (head.length > 0 && !match)
        reject(new Error(`malformed response: ${JSON.stringify(head.slice(0, 80))}`));
      else resolve(match ? Number(match[1]) : 0);
    });
    socket.write(text);
  });
}

const headerSafe = (s: string) => !/[\r\n]/.test(s);

function nearMisses(token: string): string[] {
  return [
    token.slice(0, -1),
    `${token}x`,
    token.toUpperCase(),
    `${token.slice(0, -1)}${token.endsWith('1') ? '2' : '1'}`,
    `${token},${token}`,
  ];
}

describe('management port fuzz against a running relay', () => {
  test(`${runs} generated requests: a response each, no crash, no state change without the admin token`, async () => {
    const spool = await tempDir('admin-fuzz-spool');
    cleanups.push(() => removeDir(spool));
    const relay = await startRelay(
      relayConfig(spool, await freePort(), {
        retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '5d' },
        // High enough that the fuzz explores past the throttle most of the time; 429s are fine too.
        http: {
          host: '127.0.0.1',
          port: 0,
          tokens: TEST_TOKEN_FILES,
          authThrottle: { burst: 10000, refill: '1s' },
        },
      }),
    );
    cleanups.push(() => relay.stop('SIGKILL'));
    const ids: string[] = [];
    for (const tag of ['fuzz-one', 'fuzz-two']) {
      const sent = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: ['b@example.org'],
        raw: rawMessage(tag),
      });
      assert.ok(sent.ok);
      ids.push(/queued as ([A-Z0-9]+)/.exec(sent.response)?.[1] ?? '');
    }
    const queueIds = async () =>
      ((await (await relay.http('/api/messages')).json()) as { messages: { id: string }[] }).messages
        .map((m) => m.id)
        .sort();
    const idsBefore = await queueIds();
    assert.deepEqual(idsBefore, [...ids].sort());

    const id = fc.constantFrom(...ids, 'NOSUCH', ids[0]!.toLowerCase(), `${ids[0]}%00`);
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'messages',
        'queue',
        'drain',
        'retry',
        'metrics',
        '..',
        '.',
        '',
        '%2e%2e',
        'API',
      ),
      id,
      fc.stringMatching(/^[A-Za-z0-9%._~-]{0,12}$/),
    );
    const path = fc.oneof(
      fc.constantFrom(
        '/drain',
        '/drain/',
        '//drain',
        '/api/../drain',
        '/metrics/../drain',
        '/%64rain',
        '/DRAIN',
        '/drain?x=1',
        '/drain#frag',
        '/api',
        '/api/',
        '/api/queue',
        '/api/messages',
        '/metrics',
        '/healthz',
        '/readyz',
        '*',
        'http://localhost/drain',
        'http://[::1/drain',
        '/\u00e9',
      ),
      id.map((i) => `/api/messages/${i}`),
      id.map((i) => `/api/messages/${i}/retry`),
      id.map((i) => `//api/messages/${i}/retry`),
      id.map((i) => `/api/messages/${i}%2fretry`),
      fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`),
      fc.stringMatching(/^[\x21-\x7e]{0,40}$/),
      // Mostly refused by the HTTP parser (400): still must not crash or hang.
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => !/\s/.test(s)) },
    );
    const method = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(
          'GET',
          'POST',
          'DELETE',
          'PUT',
          'PATCH',
          'HEAD',
          'OPTIONS',
          'TRACE',
          'post',
        ),
      },
      // Methods Node's HTTP parser does not know get its 400 before the handler runs.
      { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/) },
    );
    const authorization = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom(
        '',
        'Bearer',
        'Bearer ',
        'Bearer wrong-token-0123456789',
        `Basic ${Buffer.from(`admin:${TEST_TOKENS.admin}`).toString('base64')}`,
        `Token ${TEST_TOKENS.admin}`,
        `Bearer ${TEST_TOKENS.read}`,
        `bearer ${TEST_TOKENS.read}`,
      ),
      fc.constantFrom(...nearMisses(TEST_TOKENS.admin)).map((t) => `Bearer ${t}`),
      fc.stringMatching(/^[\x20-\x7e]{0,60}$/),
      fc.string({ maxLength: 30 }).filter(headerSafe),
    );
    const header = fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'X-Forwarded-For',
          'Content-Type',
          'Authorization',
          'X-Mailfleet-Token',
          'Cookie',
          'X-Role',
          'Origin',
          'Expect',
        ),
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
      ),
      fc.oneof(
        fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
        fc.string({ maxLength: 20 }).filter(headerSafe),
        fc.constantFrom(TEST_TOKENS.read, ...nearMisses(TEST_TOKENS.admin)),
      ),
    );
    const request = fc.record({
      method,
      path,
      authorization,
      headers: fc.array(header, { maxLength: 4 }),
      body: fc.oneof(fc.constant(''), fc.string({ maxLength: 200 }), fc.json()),
    });

    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const extra = r.headers.filter(
          ([name]) => !/^(content-length|transfer-encoding|connection|host)$/i.test(name),
        );
        const body = Buffer.from(r.body, 'utf8');
        const lines = [
          `${r.method} ${r.path} HTTP/1.1`,
          'Host: relay.test',
          'Connection: close',
          ...(r.authorization === undefined ? [] : [`Authorization: ${r.authorization}`]),
          ...extra.map(([name, value]) => `${name}: ${value}`),
          `Content-Length: ${body.length}`,
        ];
        const status = await rawRequest(
          relay.ports.http,
          Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]),
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.notEqual(status, 500, 'no handler error');
        assert.equal(relay.proc.exitCode, null, 'the relay is still running');
      }),
      {
        numRuns: runs,
        endOnFailure: true,
        ...(process.env.FUZZ_SEED
          ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH }
          : {}),
      },
    );

    assert.deepEqual(await queueIds(), idsBefore, 'the queue holds the same messages');
    const ready = (await (await fetch(`${relay.base}/readyz`)).json()) as {
      ready: boolean;
      reasons: string[];
    };
    assert.deepEqual(ready, { ready: true, reasons: [] }, 'the relay is not draining');
    assert.equal(await relay.metric('mailfleet_relay_admin_actions_total'), 0, 'no admin action counted');
    assert.equal(relay.logs.filter((l) => l.includes('"admin action"')).length, 0, 'no admin action logged');
    report('admin-http-fuzz', {
      requests: runs,
      statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
      refusals: await relay.metric('mailfleet_relay_http_auth_refusals_total'),
    });
  });
});
