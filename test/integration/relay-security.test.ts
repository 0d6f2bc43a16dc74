// Relay policy and security against real clients: the open-relay matrix, SMTP smuggling vectors
// (raw sockets), listeners with STARTTLS/implicit TLS and AUTH (swaks), AUTH throttling and
// lockout, limits, slow clients, XCLIENT and PROXY trust.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { hashPassword } from '../../contract/users.ts';
import {
  TEST_CERT,
  TEST_KEY,
  relayConfig,
  removeDir,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { RawSmtp, hasBareNewline } from './relay-security-client.test.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let upstream: ScriptedUpstream;
let relay: RelayProcess;
let users: string;

before(async () => {
  upstream = await startScripted();
  cleanups.push(() => upstream.stop());
  const dir = await tempDir('security');
  cleanups.push(() => removeDir(dir));
  users = join(dir, 'users');
  await writeFile(users, `app:${await hashPassword('s3cret')}\nother:${await hashPassword('pw2')}\n`);
  relay = await startRelay(
    relayConfig(join(dir, 'spool'), upstream.port, {
      listeners: {
        smtp: { enabled: true, host: '127.0.0.1', port: 0 },
        submission: { enabled: true, host: '127.0.0.1', port: 0 },
        smtps: { enabled: true, host: '127.0.0.1', port: 0 },
      },
      tls: { certFile: TEST_CERT, keyFile: TEST_KEY },
      auth: {
        mode: 'Optional',
        usersFile: users,
        userSenderDomains: { other: ['other.example'] },
        throttle: { maxFailures: 3, window: '1m', lockout: '1m', baseDelay: '100ms', maxDelay: '200ms' },
      },
      allowedNetworks: ['127.0.0.0/8'],
      trustedProxies: { xclient: ['127.0.0.1'] },
      sendingDomains: [{ domain: 'example.com' }, { domain: 'other.example' }],
      limits: {
        maxMessageSize: 4096,
        maxRecipients: 3,
        minDataRate: 2000,
        dataRateWindow: '500ms',
        maxLineLength: 1024,
      },
    }),
  );
  cleanups.push(() => relay.stop());
});

/** EHLO, then the transaction commands; returns every reply. */
async function session(
  port: number,
  commands: string[],
  options: { starttls?: boolean; tls?: boolean } = {},
): Promise<string[]> {
  const { client, greeting } = await RawSmtp.open(port, { tls: options.tls ?? false });
  const replies = [greeting, await client.command('EHLO client.test')];
  if (options.starttls) {
    replies.push(await client.starttls());
    replies.push(await client.command('EHLO client.test'));
  }
  for (const c of commands) replies.push(await client.command(c));
  client.close();
  return replies;
}

/** "550 5.7.1" or "250": the reply code and the enhanced code when there is one. */
const code = (reply: string | undefined) => {
  const m = /^(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?/.exec(reply ?? '');
  return m ? [m[1], m[2]].filter(Boolean).join(' ') : '';
};

/** Sends one good message and waits until the upstream has it: everything before it has settled. */
async function sendMarker(id: string): Promise<void> {
  const replies = await session(relay.ports.smtp, [
    'MAIL FROM:<a@example.com>',
    'RCPT TO:<b@example.org>',
    'DATA',
  ]);
  assert.match(replies.at(-1)!, /^354/);
  const { client } = await RawSmtp.open(relay.ports.smtp);
  await client.command('EHLO client.test');
  await client.command('MAIL FROM:<a@example.com>');
  await client.command('RCPT TO:<b@example.org>');
  await client.command('DATA');
  const done = await client.command(`Subject: marker ${id}\r\n\r\nmarker ${id}\r\n.`);
  assert.match(done, /^250 /, done);
  client.close();
  await waitFor(() => upstream.received.some((m) => m.raw.includes(`marker ${id}`)), 10000, `marker ${id}`);
}

describe('never an open relay', () => {
  const cases: [string, string[], string][] = [
    [
      'a client presented by XCLIENT outside allowedNetworks, no AUTH',
      ['XCLIENT ADDR=192.0.2.7', 'EHLO c.test', 'MAIL FROM:<a@example.com>'],
      '530 5.7.0',
    ],
    ['an allowed client with a foreign sender domain', ['MAIL FROM:<a@foreign.example>'], '550 5.7.1'],
    ['a sender without a domain', ['MAIL FROM:<postmaster>'], '501'],
    ['a percent-hack sender', ['MAIL FROM:<x%foreign.example@example.com>'], '553 5.7.1'],
    [
      'a percent-hack recipient',
      ['MAIL FROM:<a@example.com>', 'RCPT TO:<victim%evil.example@example.org>'],
      '550 5.7.1',
    ],
    [
      'a bang-path recipient',
      ['MAIL FROM:<a@example.com>', 'RCPT TO:<evil.example!victim@example.org>'],
      '550 5.7.1',
    ],
    [
      'a quoted local part hiding another address',
      ['MAIL FROM:<a@example.com>', 'RCPT TO:<"victim@evil.example"@example.org>'],
      // refused by smtp-server's address parser already
      '501',
    ],
    [
      'a quoted percent hack',
      ['MAIL FROM:<a@example.com>', 'RCPT TO:<"victim%evil.example"@example.org>'],
      '550 5.7.1',
    ],
    ['a recipient without a domain', ['MAIL FROM:<a@example.com>', 'RCPT TO:<postmaster>'], '550 5.7.1'],
    [
      'a recipient at a single-label host',
      ['MAIL FROM:<a@example.com>', 'RCPT TO:<root@localhost>'],
      '550 5.7.1',
    ],
  ];
  for (const [name, commands, expected] of cases.filter((c) => c[1].length > 0)) {
    test(`refuses ${name} (${expected})`, async () => {
      const replies = await session(relay.ports.smtp, commands);
      assert.equal(code(replies.at(-1)), expected, replies.join(''));
    });
  }
  test('a source route is stripped (RFC 5321 §4.1.2), never relayed through', async () => {
    const replies = await session(relay.ports.smtp, [
      'MAIL FROM:<a@example.com>',
      'RCPT TO:<@hop.example:victim@evil.example>',
      'RSET',
    ]);
    assert.match(replies[3]!, /^250/);
  });
  test('a user limited to other.example may not send as example.com (553 5.7.1)', async () => {
    const plain = Buffer.from('\0other\0pw2').toString('base64');
    const replies = await session(
      relay.ports.submission!,
      [`AUTH PLAIN ${plain}`, 'MAIL FROM:<a@example.com>'],
      { starttls: true },
    );
    assert.match(replies.at(-2)!, /^235/);
    assert.equal(code(replies.at(-1)), '553 5.7.1');
  });
  test('with auth Disabled, an unauthenticated client outside allowedNetworks gets 550 5.7.1 at MAIL', async () => {
    const dir = await tempDir('openrelay');
    cleanups.push(() => removeDir(dir));
    const closed = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, { allowedNetworks: ['10.0.0.0/8'] }),
    );
    cleanups.push(() => closed.stop());
    const replies = await session(closed.ports.smtp, [
      'MAIL FROM:<a@example.com>',
      'RCPT TO:<b@example.org>',
    ]);
    assert.equal(code(replies[2]), '550 5.7.1');
    assert.equal(code(replies[3]), '503', 'no RCPT without a MAIL');
  });
  test('nothing refused reached the upstream', async () => {
    await sendMarker('open-relay');
    assert.deepEqual(
      upstream.received.map((m) => [m.from, m.to.join(',')]).filter(([from]) => from !== 'a@example.com'),
      [],
    );
    assert.ok(upstream.received.every((m) => m.to.every((t) => t === 'b@example.org')));
  });
});

describe('SMTP smuggling (smtpsmug vectors)', () => {
  const smuggled =
    'MAIL FROM:<ceo@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled';
  const vectors: [string, string][] = [
    ['\\n.\\n', '\n.\n'],
    ['\\r.\\r', '\r.\r'],
    ['\\r.\\n', '\r.\n'],
    ['\\n.\\r', '\n.\r'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r\\n.\\n', '\r\n.\n'],
    ['\\r.\\r\\n', '\r.\r\n'],
    ['\\r\\n.\\r', '\r\n.\r'],
    ['\\r\\n\\0.\\r\\n', '\r\n\0.\r\n'],
    ['\\r\\n.\\0\\r\\n', '\r\n.\0\r\n'],
  ];
  const expectRefused = async (client: RawSmtp, what: string) => {
    const reply = await client.reply();
    assert.match(
      reply,
      /^521 5\.5\.2 Error: (bare <(LF|CR)>|NUL character) received/,
      `${what}: ${JSON.stringify(reply)}`,
    );
    assert.ok(await client.waitClosed(), `${what}: the connection is closed`);
  };
  for (const [name, vector] of vectors) {
    test(`${name} inside DATA is refused with 521 and the session closed`, async () => {
      const { client } = await RawSmtp.open(relay.ports.smtp);
      await client.command('EHLO client.test');
      assert.match(await client.command('MAIL FROM:<a@example.com>'), /^250/);
      assert.match(await client.command('RCPT TO:<b@example.org>'), /^250/);
      assert.match(await client.command('DATA'), /^354/);
      client.write(`Subject: smuggle ${name}\r\n\r\nbody${vector}${smuggled}\r\n.\r\n`);
      await expectRefused(client, name);
    });
  }
  test('pipelined MAIL/RCPT/DATA with \\n.\\n in one write is refused', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    await client.command('EHLO client.test');
    client.write(
      `MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: piped\r\n\r\nbody\n.\n${smuggled}\r\n.\r\nQUIT\r\n`,
    );
    // The whole pipelined write is refused: its bare LF is found before any command runs.
    await expectRefused(client, 'pipelined');
  });
  test('a bare LF ending a command is refused', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    await client.command('EHLO client.test');
    client.write('MAIL FROM:<a@example.com>\n');
    await expectRefused(client, 'command');
  });
  test('a bare CR inside a command is refused', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    client.write('EHLO client.test\rMAIL FROM:<a@example.com>\r\n');
    await expectRefused(client, 'command');
  });
  test('inside a STARTTLS session the vectors are refused too', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    await client.command('EHLO client.test');
    assert.match(await client.starttls(), /^220/);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<a@example.com>');
    await client.command('RCPT TO:<b@example.org>');
    await client.command('DATA');
    client.write(`Subject: tls\r\n\r\nbody\r\n.\n${smuggled}\r\n.\r\n`);
    await expectRefused(client, 'starttls');
  });
  test('on implicit TLS (smtps) the vectors are refused too', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtps!, { tls: true });
    await client.command('EHLO client.test');
    client.write('AUTH PLAIN\n');
    await expectRefused(client, 'smtps');
  });
  test('nothing smuggled reached the upstream, and nothing there holds a lone CR or LF', async () => {
    await sendMarker('smuggling');
    for (const m of upstream.received) {
      assert.doesNotMatch(m.raw, /smuggle|piped|Subject: tls/);
      assert.equal(hasBareNewline(m.raw), false, JSON.stringify(m.raw.slice(0, 200)));
      assert.notEqual(m.from, 'ceo@example.com');
    }
    assert.ok((await relay.metric('mailfleet_relay_smtp_rejections_total', { code: '521' })) >= 14);
  });
});

function swaks(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(
    'swaks',
    ['--server', '127.0.0.1', '--from', 'a@example.com', '--to', 'b@example.org', '--timeout', '20', ...args],
    {
      encoding: 'utf8',
    },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('listeners, TLS and AUTH (swaks)', () => {
  test('submission: STARTTLS then AUTH PLAIN, accepted', () => {
    const r = swaks([
      '--port',
      String(relay.ports.submission),
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'app',
      '--auth-password',
      's3cret',
    ]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /<~ {2}235/);
    assert.match(r.out, /<~ {2}250 2\.0\.0 Ok: queued/);
  });
  test('smtps: implicit TLS, AUTH LOGIN, accepted', () => {
    const r = swaks([
      '--port',
      String(relay.ports.smtps),
      '--tlsc',
      '--auth',
      'LOGIN',
      '--auth-user',
      'app',
      '--auth-password',
      's3cret',
    ]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /<~ {2}250 2\.0\.0 Ok: queued/);
  });
  test('submission: AUTH is neither offered nor accepted before STARTTLS', async () => {
    const replies = await session(relay.ports.submission!, [
      `AUTH PLAIN ${Buffer.from('\0app\0s3cret').toString('base64')}`,
    ]);
    assert.doesNotMatch(replies[1]!, /AUTH/, 'EHLO before TLS does not offer AUTH');
    assert.match(replies[1]!, /STARTTLS/);
    assert.match(replies[2]!, /^5\d\d/, replies[2]);
    const r = swaks([
      '--port',
      String(relay.ports.submission),
      '--auth',
      'PLAIN',
      '--auth-user',
      'app',
      '--auth-password',
      's3cret',
    ]);
    assert.notEqual(r.status, 0, r.out);
  });
  test('submission: MAIL without AUTH is refused even from an allowed network', () => {
    const r = swaks(['--port', String(relay.ports.submission), '--tls']);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /530 5\.7\.0 Authentication required/);
  });
  test('smtp: STARTTLS is offered, and AUTH after it', async () => {
    const replies = await session(relay.ports.smtp, [], { starttls: true });
    assert.match(replies[1]!, /STARTTLS/);
    assert.doesNotMatch(replies[1]!, /AUTH/);
    assert.match(replies[3]!, /AUTH PLAIN LOGIN/);
  });
  test('the Received header names the protocol and the TLS version and cipher', async () => {
    const r = swaks([
      '--port',
      String(relay.ports.submission),
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'app',
      '--auth-password',
      's3cret',
      '--header',
      'Subject: received-check',
    ]);
    assert.equal(r.status, 0, r.out);
    await waitFor(() => upstream.received.some((m) => m.raw.includes('received-check')), 10000, 'delivery');
    const raw = upstream.received.find((m) => m.raw.includes('received-check'))!.raw;
    assert.match(
      raw,
      /^Received: from client\.test|^Received: from [^\r]*\r\n\t\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)\r\n\tby relay\.test \(mailfleet\) with ESMTPSA id/m,
    );
  });
});

describe('AUTH throttle and lockout', () => {
  test('wrong passwords are refused, then the client is locked out even with the right one', async () => {
    const failuresBefore = await relay.metric('mailfleet_relay_auth_failures_total');
    const wrong = Buffer.from('\0app\0wrong').toString('base64');
    const { client } = await RawSmtp.open(relay.ports.smtps!, { tls: true });
    await client.command('EHLO client.test');
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) replies.push(await client.command(`AUTH PLAIN ${wrong}`));
    assert.deepEqual(replies.map(code), ['535 5.7.8', '535 5.7.8', '535 5.7.8']);
    const locked = await client.command(`AUTH PLAIN ${Buffer.from('\0app\0s3cret').toString('base64')}`);
    assert.equal(code(locked), '454 4.7.0', locked);
    client.close();
    const r = swaks([
      '--port',
      String(relay.ports.submission),
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'app',
      '--auth-password',
      's3cret',
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /454 4\.7\.0/);
    assert.equal((await relay.metric('mailfleet_relay_auth_failures_total')) - failuresBefore, 5);
    assert.equal(
      await relay.metric('mailfleet_relay_auth_lockouts_total'),
      2,
      'the client IP and the username',
    );
  });
});

describe('limits', () => {
  test('a message over maxMessageSize is refused with 552 5.3.4 and SIZE is advertised', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    assert.match(await client.command('EHLO client.test'), /SIZE 4096/);
    await client.command('MAIL FROM:<a@example.com>');
    await client.command('RCPT TO:<b@example.org>');
    await client.command('DATA');
    const reply = await client.command(`Subject: big\r\n\r\n${'x'.repeat(78)}\r\n`.repeat(80) + '.');
    assert.match(reply, /^552 /);
    client.close();
  });
  test('the recipient after maxRecipients gets 452 4.5.3', async () => {
    const replies = await session(relay.ports.smtp, [
      'MAIL FROM:<a@example.com>',
      ...[1, 2, 3, 4].map((i) => `RCPT TO:<r${i}@example.org>`),
    ]);
    assert.deepEqual(replies.slice(3).map(code), ['250', '250', '250', '452 4.5.3']);
  });
  test('a command line over maxLineLength is refused', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    const reply = await client.command(`EHLO ${'a'.repeat(2000)}`);
    assert.match(reply, /^(421|500)/, reply);
    client.close();
  });
  test('a client trickling a command below minDataRate is cut off with 421 4.4.2', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    await client.command('EHLO client.test');
    const line = 'MAIL FROM:<a@example.com>';
    let i = 0;
    const timer = setInterval(() => client.write(line[i++ % line.length]!), 100);
    try {
      const reply = await client.reply(15000);
      assert.match(reply, /^421 4\.4\.2/, reply);
      assert.ok(await client.waitClosed());
    } finally {
      clearInterval(timer);
    }
  });
  test('a client trickling DATA is cut off too', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<a@example.com>');
    await client.command('RCPT TO:<b@example.org>');
    await client.command('DATA');
    const timer = setInterval(() => client.write('x'), 100);
    try {
      assert.match(await client.reply(15000), /^421 4\.4\.2/);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('connection limits, XCLIENT and PROXY trust', () => {
  test('connections over maxConnectionsPerClient get 421 4.7.0', async () => {
    const dir = await tempDir('conn');
    cleanups.push(() => removeDir(dir));
    const limited = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, {
        limits: { maxConnectionsPerClient: 2, maxConnections: 3 },
      }),
    );
    cleanups.push(() => limited.stop());
    const first = await RawSmtp.open(limited.ports.smtp);
    const second = await RawSmtp.open(limited.ports.smtp);
    const third = await RawSmtp.open(limited.ports.smtp);
    assert.match(first.greeting, /^220/);
    assert.match(second.greeting, /^220/);
    assert.match(third.greeting, /^421 4\.7\.0/);
    for (const c of [first, second, third]) c.client.close();
  });
  test('XCLIENT from an address not in trustedProxies.xclient is refused', async () => {
    const dir = await tempDir('xclient');
    cleanups.push(() => removeDir(dir));
    const strict = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, { trustedProxies: { xclient: ['127.0.0.2'] } }),
    );
    cleanups.push(() => strict.stop());
    const replies = await session(strict.ports.smtp, ['XCLIENT ADDR=10.9.9.9']);
    assert.doesNotMatch(replies[1]!, /XCLIENT/);
    assert.match(replies[2]!, /^5\d\d/);
  });
  test('a PROXY header from an untrusted address is refused; from a trusted one it sets the client', async () => {
    const { client } = await RawSmtp.open(relay.ports.smtp);
    const refused = await client.command('PROXY TCP4 192.0.2.9 127.0.0.1 4000 25');
    assert.match(refused, /^5\d\d/);
    client.close();
    const dir = await tempDir('proxy');
    cleanups.push(() => removeDir(dir));
    const proxied = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, {
        trustedProxies: { proxyProtocol: ['127.0.0.1'] },
        trustedNetworks: [],
      }),
    );
    cleanups.push(() => proxied.stop());
    const { createConnection } = await import('node:net');
    const socket = createConnection(proxied.ports.smtp, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('PROXY TCP4 192.0.2.9 127.0.0.1 4000 25\r\n');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    await waitFor(() => text.includes('220 '), 5000, 'greeting');
    socket.write('EHLO c.test\r\nMAIL FROM:<a@example.com>\r\n');
    await waitFor(() => /\n5\d\d /.test(text), 5000, 'MAIL reply');
    assert.match(
      text,
      /\n550 5\.7\.1 Relay access denied/,
      'the presented client 192.0.2.9 is outside allowedNetworks',
    );
    socket.destroy();
  });
});

describe('certificate rotation', () => {
  test('a replaced certificate and key (cert-manager renewal) serve the next TLS session', async () => {
    const dir = await tempDir('certs');
    cleanups.push(() => removeDir(dir));
    await copyFile(TEST_CERT, join(dir, 'tls.crt'));
    await copyFile(TEST_KEY, join(dir, 'tls.key'));
    const tlsRelay = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, {
        listeners: { smtp: { enabled: false }, smtps: { enabled: true, host: '127.0.0.1', port: 0 } },
        tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), minVersion: 'TLSv1.3' },
      }),
    );
    cleanups.push(() => tlsRelay.stop());
    const subject = async () => {
      const { client } = await RawSmtp.open(tlsRelay.ports.smtps!, { tls: true });
      const socket = client.socket as TLSSocket;
      const result = { cn: String(socket.getPeerCertificate().subject?.CN), protocol: socket.getProtocol() };
      client.close();
      return result;
    };
    assert.deepEqual(await subject(), { cn: 'localhost', protocol: 'TLSv1.3' });
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=rotated.relay.test',
      '-keyout',
      join(dir, 'new.key'),
      '-out',
      join(dir, 'new.crt'),
    ]);
    assert.equal(made.status, 0, String(made.stderr));
    await rename(join(dir, 'new.key'), join(dir, 'tls.key'));
    await rename(join(dir, 'new.crt'), join(dir, 'tls.crt'));
    await waitFor(async () => (await subject()).cn === 'rotated.relay.test', 10000, 'the new certificate');
  });
  test('a key that does not match its certificate is refused on reload: the pair in force keeps serving', async () => {
    const dir = await tempDir('certs-mismatch');
    cleanups.push(() => removeDir(dir));
    await copyFile(TEST_CERT, join(dir, 'tls.crt'));
    await copyFile(TEST_KEY, join(dir, 'tls.key'));
    const tlsRelay = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, {
        listeners: { smtp: { enabled: false }, smtps: { enabled: true, host: '127.0.0.1', port: 0 } },
        tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), minVersion: 'TLSv1.3' },
      }),
    );
    cleanups.push(() => tlsRelay.stop());
    const subject = async () => {
      const { client } = await RawSmtp.open(tlsRelay.ports.smtps!, { tls: true });
      const cn = String((client.socket as TLSSocket).getPeerCertificate().subject?.CN);
      client.close();
      return cn;
    };
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=rotated.relay.test',
      '-keyout',
      join(dir, 'new.key'),
      '-out',
      join(dir, 'new.crt'),
    ]);
    assert.equal(made.status, 0, String(made.stderr));
    // The key first, as a Secret edited in two steps would be.
    await rename(join(dir, 'new.key'), join(dir, 'tls.key'));
    await waitFor(
      async () => (await tlsRelay.metric('mailfleet_relay_config_reloads_total', { result: 'failure' })) > 0,
      10000,
      'the reload refused',
    );
    assert.equal(await subject(), 'localhost', 'the old pair still serves');
    await rename(join(dir, 'new.crt'), join(dir, 'tls.crt'));
    await waitFor(async () => (await subject()) === 'rotated.relay.test', 10000, 'the new pair');
  });
  test('a client limited to TLS 1.2 is refused when tls.minVersion is TLSv1.3', async () => {
    const dir = await tempDir('tls13');
    cleanups.push(() => removeDir(dir));
    const strict = await startRelay(
      relayConfig(join(dir, 'spool'), upstream.port, {
        listeners: { smtp: { enabled: false }, smtps: { enabled: true, host: '127.0.0.1', port: 0 } },
        tls: { certFile: TEST_CERT, keyFile: TEST_KEY, minVersion: 'TLSv1.3' },
      }),
    );
    cleanups.push(() => strict.stop());
    const { connect } = await import('node:tls');
    const error = await new Promise<Error | undefined>((resolve) => {
      const s = connect({
        port: strict.ports.smtps!,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
      });
      s.once('secureConnect', () => (s.destroy(), resolve(undefined)));
      s.once('error', resolve);
    });
    assert.ok(error, 'the TLS 1.2 handshake fails');
  });
});

describe('metrics', () => {
  test('sessions carry a tls label and the relay reports ready', async () => {
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_smtp_sessions_total', { tls: 'true' })) > 0,
      5000,
      'tls sessions',
    );
    assert.ok((await relay.metric('mailfleet_relay_smtp_sessions_total', { tls: 'false' })) > 0);
    assert.equal(await relay.metric('mailfleet_relay_ready'), 1);
  });
});
