// Bad input over the wire: generated SMTP sessions (valid and odd commands, garbage lines, long
// lines, pipelined and fragmented writes, transactions with generated message data: unicode, NUL
// and control bytes, bare CR/LF, dot lines, huge lines, oversize bodies) against one running relay
// process. Every reply must be well formed and come in time (no hang), the relay must stay up, and
// every message that got 250 must reach the upstream; one without bare CR/LF arrives byte for byte.
// Short mode: 2,000 sessions; MAILFLEET_LONG=1: 50,000.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { relayConfig, removeDir, startRelay, tempDir, waitFor } from '../helpers/relay/peers.ts';
import { LONG, SmtpClient, dataBlock, report, startRecordingUpstream } from './lib/smtp.ts';

const runs = Number(process.env.FUZZ_RUNS ?? (LONG ? 50_000 : 2_000));
const MAX_SIZE = 64 * 1024;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const noLineBreak = (s: string) => !/[\r\n]/.test(s);
const address = fc.oneof(
  fc.constantFrom('b@example.org', 'x@example.net', '', 'postmaster', '"q d"@example.org', 'ü@exämple.org'),
  fc.emailAddress(),
  fc.string({ maxLength: 40 }).filter(noLineBreak),
);
const param = fc.constantFrom(
  '',
  ' SIZE=1000',
  ' SIZE=999999999',
  ' BODY=8BITMIME',
  ' SMTPUTF8',
  ' FOO=bar',
  ' SIZE=x',
);
const command = fc.oneof(
  fc.constantFrom('EHLO fuzz.test', 'HELO fuzz.test', 'EHLO', 'RSET', 'NOOP', 'HELP', 'VRFY b', 'EXPN list'),
  // No STARTTLS: after its 220 the server rightly waits for a TLS handshake (RFC 3207 §4.2).
  fc.constantFrom('DATA', 'BDAT 10 LAST', 'TURN', 'mail from:<a@example.com>', 'MAIL FROM:a@example.com'),
  fc.tuple(address, param).map(([a, p]) => `MAIL FROM:<${a}>${p}`),
  fc.tuple(address, param).map(([a, p]) => `RCPT TO:<${a}>${p}`),
  fc.string({ maxLength: 80 }).filter(noLineBreak),
  fc.string({ unit: 'binary', maxLength: 80 }).filter(noLineBreak),
  fc.integer({ min: 510, max: 4000 }).map((n) => `NOOP ${'x'.repeat(n)}`),
  fc.string({ unit: 'grapheme', maxLength: 30 }).filter(noLineBreak),
);
const bodyLine = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 60 }).filter(noLineBreak) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).filter(noLineBreak) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).filter(noLineBreak) },
  { weight: 2, arbitrary: fc.constantFrom('.', '..', '.x', '. ', 'From me', '\u0000', '\t', ' ', '--b') },
  { weight: 1, arbitrary: fc.constantFrom('a\nb', 'a\rb', '\n.\n', '\r.\r', 'x\n.\r\n') },
  { weight: 1, arbitrary: fc.integer({ min: 998, max: 20_000 }).map((n) => 'L'.repeat(n)) },
);
const messageData = fc.record({
  headers: fc.array(fc.tuple(fc.constantFrom('Subject', 'From', 'X-Odd', 'Content-Type', ''), bodyLine), {
    maxLength: 4,
  }),
  lines: fc.array(bodyLine, { maxLength: 30 }),
  pad: fc.oneof(
    { weight: 9, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * MAX_SIZE }) },
  ),
});
type MessageData = { headers: [string, string][]; lines: string[]; pad: number };

type Step =
  | { kind: 'command'; line: string; chunks: number }
  | { kind: 'pipelined'; lines: string[] }
  | { kind: 'transaction'; rcpts: string[]; data: MessageData; dataChunks: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      line: command,
      chunks: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pipelined' as const),
      lines: fc.array(command, { minLength: 2, maxLength: 6 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('transaction' as const),
      rcpts: fc.array(fc.oneof(fc.constant('b@example.org'), address), { minLength: 1, maxLength: 3 }),
      data: messageData,
      dataChunks: fc.integer({ min: 1, max: 5 }),
    }),
  },
);

function render(id: string, d: MessageData): string {
  const headers = d.headers.map(([k, v]) => (k ? `${k}: ${v}` : v)).join('\r\n');
  const lines = [
    ...d.lines,
    d.pad
      ? 'P'
          .repeat(76)
          .concat('\r\n')
          .repeat(Math.ceil(d.pad / 78))
      : '',
  ];
  return `X-Test-Id: ${id}\r\n${headers}${headers ? '\r\n' : ''}\r\n${lines.join('\r\n')}\r\n`;
}

function writeInChunks(c: SmtpClient, text: string, chunks: number): void {
  const buf = Buffer.from(text, 'utf8');
  const size = Math.ceil(buf.length / chunks);
  for (let i = 0; i < buf.length; i += size) c.write(buf.subarray(i, i + size));
}

describe('SMTP command stream and message data fuzz against a running relay', () => {
  test(`${runs} generated sessions: well-formed replies, no hang, no crash, nothing accepted lost`, async () => {
    const upstream = await startRecordingUpstream();
    const spool = await tempDir('fuzz-spool');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
    );
    const relay = await startRelay(
      relayConfig(spool, upstream.port, {
        limits: { maxMessageSize: MAX_SIZE, maxRecipients: 2, maxConnectionsPerClient: 100 },
        dsn: { enabled: false },
      }),
    );
    cleanups.push(() => relay.stop('SIGKILL'));
    const accepted = new Map<string, string>(); // id -> rendered data (for the integrity check)
    const codes = new Map<number, number>();
    const stats = { sessions: 0, commands: 0, transactions: 0, accepted: 0, closedByServer: 0 };
    let seq = 0;
    const count = (code: number) => codes.set(code, (codes.get(code) ?? 0) + 1);

    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        stats.sessions++;
        const c = await SmtpClient.connect(relay.ports.smtp, 30_000);
        try {
          const greeting = await c.reply();
          count(greeting.code);
          assert.equal(greeting.code, 220);
          for (const s of steps) {
            if (c.closed) break;
            if (s.kind === 'command') {
              stats.commands++;
              writeInChunks(c, `${s.line}\r\n`, s.chunks);
              const r = await c.reply();
              count(r.code);
              // A bare DATA accepted (354) must be finished so the session stays in step.
              if (r.code === 354) {
                const id = `f${seq++}`;
                const done = await c.command(`X-Test-Id: ${id}\r\n.`);
                count(done.code);
                if (done.code === 250) accepted.set(id, `X-Test-Id: ${id}\r\n`);
              }
            } else if (s.kind === 'pipelined') {
              stats.commands += s.lines.length;
              c.write(s.lines.map((l) => `${l}\r\n`).join(''));
              for (let i = 0; i < s.lines.length && !c.closed; i++) {
                const r = await c.reply();
                count(r.code);
                if (r.code === 354) {
                  // DATA inside a pipeline: the rest of the batch became message text.
                  const id = `f${seq++}`;
                  const done = await c.command(`\r\nX-Test-Id: ${id}\r\n.`);
                  count(done.code);
                  if (done.code === 250) accepted.set(id, '');
                  break;
                }
              }
            } else {
              stats.transactions++;
              const id = `f${seq++}`;
              count((await c.command('EHLO fuzz.test')).code);
              const mail = await c.command('MAIL FROM:<a@example.com>');
              count(mail.code);
              let rcptOk = 0;
              for (const rcpt of s.rcpts) {
                const r = await c.command(`RCPT TO:<${rcpt}>`);
                count(r.code);
                if (r.code === 250) rcptOk++;
              }
              const data = await c.command('DATA');
              count(data.code);
              if (data.code !== 354) continue;
              assert.ok(mail.code === 250 && rcptOk > 0, 'DATA only after MAIL and an accepted RCPT');
              const text = render(id, s.data);
              writeInChunks(c, dataBlock(text), s.dataChunks);
              const r = await c.reply(20_000);
              count(r.code);
              if (r.code === 250) {
                stats.accepted++;
                accepted.set(id, text);
              }
            }
          }
        } catch (err) {
          // The server may close the session (421, too many errors): fine, as long as it replied
          // well-formed lines first. A timeout is a hang.
          if (!c.closed || /no reply within|socket timeout/.test(String(err))) throw err;
          stats.closedByServer++;
        } finally {
          c.close();
        }
        assert.deepEqual(c.malformed, [], 'every reply line is well formed');
        assert.equal(relay.proc.exitCode, null, 'the relay is still running');
      }),
      // Shrinking a hang costs a timeout per try: report the first failure as found.
      {
        numRuns: runs,
        endOnFailure: true,
        ...(process.env.FUZZ_SEED
          ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH }
          : {}),
      },
    );

    assert.equal((await relay.http('/healthz')).status, 200);
    await waitFor(
      async () => ((await (await relay.http('/api/queue')).json()) as { messages: number }).messages === 0,
      60_000,
      'the accepted messages to be delivered',
    );
    const lost = [...accepted.keys()].filter((id) => !upstream.delivered.has(id));
    // Messages without bare CR or LF arrive byte for byte (after the relay's Received: header).
    const altered = [...accepted]
      .filter(([, text]) => !/\r(?!\n)|(?<!\r)\n/.test(text))
      .filter(([id, text]) => !(upstream.bodies.get(id) ?? '').endsWith(Buffer.from(text).toString('latin1')))
      .map(([id]) => id);
    report('smtp-fuzz', {
      ...stats,
      delivered: upstream.delivered.size,
      lost: lost.length,
      altered: altered.length,
      replyCodes: Object.fromEntries([...codes].sort((a, b) => a[0] - b[0])),
    });
    assert.deepEqual(lost, [], 'every accepted message delivered');
    assert.deepEqual(altered, [], 'accepted messages delivered unaltered');
    assert.deepEqual(upstream.unknown, []);
  });
});
