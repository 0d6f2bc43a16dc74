// The pool against a real SMTP server (smtp-server on 127.0.0.1), scripted per test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { SmtpPool, type SendInfo, type SmtpError } from './smtp-pool.ts';
import type { ConnectionGate, PoolLimits } from './smtp-options.ts';
import { resultsFromSuccess } from './results.ts';

interface Received {
  from: string;
  to: string[];
  body: string;
}

interface Peer {
  port: number;
  received: Received[];
  /** Connections opened so far, and the most open at once. */
  connections: number;
  peak: number;
  open: number;
  sockets: Socket[];
  stop(): Promise<void>;
}

interface Script {
  /** Called at MAIL FROM; returning a reply code refuses it, 'drop' closes the connection. */
  mail?: (nth: number) => number | 'drop' | undefined;
  rcpt?: (address: string) => number | undefined;
  data?: (nth: number) => number | 'drop' | undefined;
  /** Delay before answering the message (keeps connections busy). */
  delayMs?: number;
}

async function peer(script: Script = {}): Promise<Peer> {
  let mails = 0;
  let datas = 0;
  const p: Peer = {
    port: 0,
    received: [],
    connections: 0,
    peak: 0,
    open: 0,
    sockets: [],
    stop: () => new Promise((r) => server.close(() => r())),
  };
  const fail = (code: number) => Object.assign(new Error(`${code} refused`), { responseCode: code });
  const server: SMTPServer = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onConnect(session, cb) {
      p.connections++;
      p.open++;
      p.peak = Math.max(p.peak, p.open);
      cb();
    },
    onClose() {
      p.open--;
    },
    onMailFrom(address, session, cb) {
      const r = script.mail?.(++mails);
      if (r === 'drop') return dropSession(session);
      cb(r ? fail(r) : undefined);
    },
    onRcptTo(address, session, cb) {
      const r = script.rcpt?.(address.address);
      cb(r ? fail(r) : undefined);
    },
    onData(stream: SMTPServerDataStream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const r = script.data?.(++datas);
        if (r === 'drop') return dropSession(session);
        p.received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((a) => a.address),
          body: Buffer.concat(chunks).toString('latin1'),
        });
        setTimeout(() => cb(r ? fail(r) : null, 'queued'), script.delayMs ?? 0);
      });
    },
  });
  server.server.on('connection', (socket: Socket) => p.sockets.push(socket));
  // smtp-server has no "close now" for a session: destroy its socket (found by remote port).
  const dropSession = (session: SMTPServerSession) =>
    p.sockets.find((x) => x.remotePort === session.remotePort)?.destroy();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.server.address();
  p.port = typeof address === 'object' && address ? address.port : 0;
  return p;
}

function pool(port: number, limits: Partial<PoolLimits> = {}, gate?: ConnectionGate): SmtpPool {
  return new SmtpPool({
    gate,
    connection: {
      host: '127.0.0.1',
      port,
      name: 'relay.test',
      connectionTimeout: 2000,
      greetingTimeout: 2000,
      socketTimeout: 2000,
      logger: false,
    },
    auth: undefined,
    limits: { maxConnections: 2, maxMessages: 100, idleTimeoutMs: 60_000, ...limits },
    tlsRequirement: 'none',
    tlsReportOnly: false,
  });
}

const body = (n: number) => Buffer.from(`Subject: ${n}\r\n\r\nmessage ${n}\r\n`);

async function failure(p: Promise<SendInfo>): Promise<SmtpError> {
  try {
    await p;
  } catch (err) {
    return err as SmtpError;
  }
  throw new Error('expected the send to fail');
}

test('messages one after another share one connection, bytes unchanged', async () => {
  const server = await peer();
  const p = pool(server.port);
  for (let i = 0; i < 5; i++) await p.send('a@x.test', ['b@y.test'], body(i));
  p.close();
  await server.stop();
  assert.equal(server.connections, 1);
  assert.deepEqual(
    server.received.map((r) => r.body),
    [0, 1, 2, 3, 4].map((i) => body(i).toString('latin1')),
  );
  assert.deepEqual(server.received[0]?.to, ['b@y.test']);
});

test('never more connections than the limit; waiting messages go out in arrival order', async () => {
  const server = await peer({ delayMs: 20 });
  const p = pool(server.port, { maxConnections: 1 });
  const sends = [0, 1, 2, 3, 4, 5].map((i) => p.send('a@x.test', [`r${i}@y.test`], body(i)));
  await Promise.all(sends);
  p.close();
  await server.stop();
  assert.equal(server.peak, 1);
  assert.deepEqual(
    server.received.map((r) => r.to[0]),
    ['r0@y.test', 'r1@y.test', 'r2@y.test', 'r3@y.test', 'r4@y.test', 'r5@y.test'],
  );
});

test('concurrent messages open connections up to the limit', async () => {
  const server = await peer({ delayMs: 30 });
  const p = pool(server.port, { maxConnections: 3 });
  await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => p.send('a@x.test', ['b@y.test'], body(i))));
  p.close();
  await server.stop();
  assert.equal(server.peak, 3);
  assert.equal(server.received.length, 8);
});

test('a connection is replaced after maxMessages messages', async () => {
  const server = await peer();
  const p = pool(server.port, { maxMessages: 2 });
  for (let i = 0; i < 5; i++) await p.send('a@x.test', ['b@y.test'], body(i));
  p.close();
  await server.stop();
  assert.equal(server.connections, 3);
});

test('refused recipients come back per recipient and the connection is kept', async () => {
  const server = await peer({ rcpt: (a) => (a.startsWith('bad') ? 550 : undefined) });
  // One connection: the next message waits for the RSET instead of opening another.
  const p = pool(server.port, { maxConnections: 1 });
  const info = await p.send('a@x.test', ['good@y.test', 'bad@y.test'], body(1));
  assert.deepEqual(info.accepted, ['good@y.test']);
  assert.deepEqual(
    info.rejectedErrors?.map((e) => [(e as SmtpError & { recipient?: string }).recipient, e.responseCode]),
    [['bad@y.test', 550]],
  );
  const all = await failure(p.send('a@x.test', ['bad1@y.test', 'bad2@y.test'], body(2)));
  assert.equal(all.code, 'EENVELOPE');
  assert.equal((all as { rejectedErrors?: unknown[] }).rejectedErrors?.length, 2);
  await p.send('a@x.test', ['good@y.test'], body(3));
  p.close();
  await server.stop();
  assert.equal(server.connections, 1, 'RSET after the refusal, same connection');
  assert.equal(server.received.length, 2);
});

test('addresses go out as accepted, so a refusal maps back to its recipient whatever its case', async () => {
  // nodemailer's message composer lowercased (and punycoded) domains in RCPT TO, so a refused
  // "Bad@Y.TEST" came back as "Bad@y.test" and was not matched to the recipient.
  const server = await peer({ rcpt: (a) => (a.startsWith('Bad') ? 550 : undefined) });
  const p = pool(server.port);
  const recipients = ['Good@Y.Test', 'Bad@Y.TEST', 'Good@Y.Test'];
  const info = await p.send('Sender@X.Test', recipients, body(1));
  p.close();
  await server.stop();
  assert.deepEqual(server.received[0]?.to, ['Good@Y.Test'], 'each recipient once, as written');
  assert.equal(server.received[0]?.from, 'Sender@X.Test');
  assert.deepEqual(
    resultsFromSuccess(recipients, info).map((r) => [r.recipient, r.outcome]),
    [
      ['Good@Y.Test', 'delivered'],
      ['Bad@Y.TEST', 'bounced'],
      ['Good@Y.Test', 'delivered'],
    ],
  );
});

test('a reused connection that dies before the message is sent retries on a new one', async () => {
  const server = await peer({ mail: (nth) => (nth === 2 ? 'drop' : undefined) });
  const p = pool(server.port);
  await p.send('a@x.test', ['b@y.test'], body(1));
  await p.send('a@x.test', ['b@y.test'], body(2));
  p.close();
  await server.stop();
  assert.equal(server.connections, 2);
  assert.deepEqual(
    server.received.map((r) => r.body),
    [body(1), body(2)].map((b) => b.toString('latin1')),
  );
});

test('a connection lost once the message data went out is not retried (the server may have it)', async () => {
  const server = await peer({ data: (nth) => (nth === 2 ? 'drop' : undefined) });
  const p = pool(server.port);
  await p.send('a@x.test', ['b@y.test'], body(1));
  const err = await failure(p.send('a@x.test', ['b@y.test'], body(2)));
  p.close();
  await server.stop();
  assert.equal(err.code, 'ECONNECTION');
  assert.doesNotMatch(err.message, /maximum number of retries/);
  assert.equal(server.connections, 1);
});

test('a refused connection reports a connection failure', async () => {
  const server = await peer();
  await server.stop();
  const p = pool(server.port);
  const err = await failure(p.send('a@x.test', ['b@y.test'], body(1)));
  p.close();
  assert.equal(err.code, 'ESOCKET');
  assert.equal(err.command, 'CONN');
});

test('a 5xx to DATA is the message outcome and the connection stays usable', async () => {
  const server = await peer({ data: (nth) => (nth === 1 ? 554 : undefined) });
  const p = pool(server.port, { maxConnections: 1 });
  const err = await failure(p.send('a@x.test', ['b@y.test'], body(1)));
  assert.equal(err.code, 'EMESSAGE');
  assert.equal(err.responseCode, 554);
  await p.send('a@x.test', ['b@y.test'], body(2));
  p.close();
  await server.stop();
  assert.equal(server.connections, 1);
});

test('an unused connection is closed after the idle timeout', async () => {
  const server = await peer();
  const p = pool(server.port, { idleTimeoutMs: 50 });
  await p.send('a@x.test', ['b@y.test'], body(1));
  assert.equal(server.open, 1);
  for (let i = 0; i < 500 && server.open > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.open, 0, 'closed by the pool (the server waits a minute)');
  await p.send('a@x.test', ['b@y.test'], body(2));
  p.close();
  await server.stop();
  assert.equal(server.connections, 2);
});

test('closing the pool fails waiting messages, lets the one in flight finish, closes connections', async () => {
  const server = await peer({ delayMs: 200 });
  const p = pool(server.port, { maxConnections: 1 });
  await p.send('a@x.test', ['b@y.test'], body(1));
  const inFlight = p.send('a@x.test', ['b@y.test'], body(2));
  const waiting = p.send('a@x.test', ['b@y.test'], body(3));
  while (server.received.length < 2) await new Promise((r) => setTimeout(r, 10));
  p.close();
  const err = await failure(waiting);
  assert.equal(err.message, 'Connection pool was closed');
  assert.equal(err.code, 'ECONNECTION');
  await inFlight;
  const late = await failure(p.send('a@x.test', ['b@y.test'], body(4)));
  assert.equal(late.message, 'Connection pool was closed');
  while (server.open > 0) await new Promise((r) => setTimeout(r, 10));
  await server.stop();
  assert.equal(server.received.length, 2);
});

test('a leased connection gives its room back once its socket is closed, never while the server still holds it', async (t) => {
  const cases = [
    { name: 'replaced after maxMessages (closed without QUIT)', limits: { maxMessages: 1 }, releases: 3 },
    { name: 'closed when idle (QUIT)', limits: { maxMessages: 100, idleTimeoutMs: 20 }, releases: 1 },
  ];
  for (const c of cases)
    await t.test(c.name, async () => {
      const server = await peer();
      // A pool-wide cap of 1: one lease at a time. Sockets the server still holds at each release.
      let held = 0;
      const serverOpenAtRelease: number[] = [];
      const gate: ConnectionGate = {
        acquire: () => {
          if (held > 0) return Promise.resolve(undefined);
          held++;
          return Promise.resolve({
            release: () => {
              held--;
              serverOpenAtRelease.push(server.sockets.filter((s) => !s.closed).length);
            },
          });
        },
        withdraw: () => undefined,
      };
      const p = pool(server.port, { maxConnections: 2, ...c.limits }, gate);
      await Promise.all([0, 1, 2].map((i) => p.send('a@x.test', ['b@y.test'], body(i))));
      for (let i = 0; i < 100 && serverOpenAtRelease.length < c.releases; i++)
        await new Promise((r) => setTimeout(r, 20));
      p.close();
      await server.stop();
      assert.equal(server.received.length, 3);
      assert.deepEqual(serverOpenAtRelease, Array(c.releases).fill(0));
    });
});

test('a pool refused room withdraws from the waiters once its messages went over the connections it has', async (t) => {
  // A pool-wide cap of 1: the first message gets the room; the others wait on that connection
  // and the gate refuses the pool's asks for a second one meanwhile.
  const cases = [
    { name: 'refused while messages waited, then none waits', messages: 4, refusals: true },
    { name: 'never refused: nothing to withdraw', messages: 1, refusals: false },
  ];
  for (const c of cases)
    await t.test(c.name, async () => {
      const server = await peer();
      const events: string[] = [];
      let held = 0;
      const gate: ConnectionGate = {
        acquire: () => {
          if (held > 0) {
            events.push('refused');
            return Promise.resolve(undefined);
          }
          held++;
          events.push('granted');
          return Promise.resolve({ release: () => void held-- });
        },
        withdraw: () => void events.push('withdrawn'),
      };
      const p = pool(server.port, { maxConnections: 2, maxMessages: 100 }, gate);
      await Promise.all(
        Array.from({ length: c.messages }, (_, i) => p.send('a@x.test', ['b@y.test'], body(i))),
      );
      // The next retry (250 ms) finds nothing waiting.
      await new Promise((r) => setTimeout(r, 400));
      const beforeClose = [...events];
      p.close();
      await server.stop();
      assert.equal(server.received.length, c.messages);
      assert.equal(beforeClose.includes('refused'), c.refusals);
      // Withdrawn once, after the last refusal; a pool never refused withdraws nothing, even closing.
      assert.deepEqual(
        events.filter((e) => e === 'withdrawn'),
        c.refusals ? ['withdrawn'] : [],
      );
      if (c.refusals) assert.equal(beforeClose.at(-1), 'withdrawn');
    });
});
