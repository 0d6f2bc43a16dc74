// The deliverer with a big message read from a real spool in chunks, DKIM-signed with a real key,
// to a real SMTP server (smtp-server on 127.0.0.1): the signature is made from one pass over the
// chunks and the message goes out chunk by chunk after it, never read whole.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { validateConfig } from '../config/validate.ts';
import { generateDkimKey, publicKeyRecord } from '../dkim/keys.ts';
import { nodeSpoolFs } from '../spool/fs-ops.ts';
import { Spool } from '../spool/store.ts';
import { SpoolDamage, SpooledMessage } from '../spool/spooled-message.ts';
import { DkimKeyring } from './dkim.ts';
import { Deliverer } from './deliverer.ts';
import { dnsClient } from './mx.ts';
import { isSourceError, type ChunkedMessage } from './smtp-pool.ts';

let root: string;
let upstream: { port: number; received: Buffer[]; stop(): Promise<void> };
let keyring: DkimKeyring;
let record: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'deliverer-test-'));
  const pem = generateDkimKey('ed25519-sha256');
  record = publicKeyRecord(pem);
  await writeFile(join(root, 'ed.pem'), pem);
  keyring = DkimKeyring.load([
    {
      domain: 'example.com',
      suspended: false,
      dkim: { selector: 'ed1', algorithm: 'ed25519-sha256', keyFile: join(root, 'ed.pem') },
    },
  ]).keyring;
  const received: Buffer[] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push(Buffer.concat(chunks));
        cb(null);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.server.address();
  upstream = {
    port: typeof address === 'object' && address ? address.port : 0,
    received,
    stop: () => new Promise((r) => server.close(() => r())),
  };
});
after(async () => {
  await upstream.stop();
  await rm(root, { recursive: true, force: true });
});

function deliverer(): Deliverer {
  const config = validateConfig(
    {
      delivery: {
        mode: 'smarthost',
        smarthost: { host: '127.0.0.1', port: upstream.port, tls: 'starttls-opportunistic' },
      },
    },
    { defaultHostname: 'relay.test' },
  );
  if (!config.ok) assert.fail(JSON.stringify(config.errors));
  return new Deliverer({
    delivery: config.config.delivery,
    dns: dnsClient(['127.0.0.1'], 1000),
    dkim: keyring,
  });
}

/** A 700 KB message from a sending domain with a key: six chunks; dots, runs and tabs. */
function bigMessage(id: string): Buffer {
  const lines = [
    `From: Shop <news@example.com>\r\nTo: b@example.org\r\nSubject: ${id}\r\nMessage-ID: <${id}@example.com>\r\n\r\n`,
  ];
  for (let i = 0, n = 0; n < 700_000; i++) {
    const line = `${i % 9 === 0 ? '.' : ''}line ${i}  of\t${id} ${'x'.repeat(i % 200)} \r\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join(''), 'latin1');
}

/** The message queued as the intake queues a big one (a streamed batch) and opened for delivery. */
async function queued(name: string, id: string, body: Buffer) {
  const quarantined: string[] = [];
  const spool = new Spool({
    dir: join(root, name),
    fs: nodeSpoolFs,
    events: { quarantined: (queueId) => quarantined.push(queueId) },
    copyDelayMs: 0,
  });
  await spool.open();
  const s = spool.openStream(id);
  for (let at = 0; at < body.length; at += 50_000) s.push(body.subarray(at, at + 50_000));
  await spool.commitStream(
    s,
    {
      from: 'bounce@example.com',
      recipients: ['b@example.org'],
      receivedAt: 1,
      client: { address: '127.0.0.1', helo: 'h' },
    },
    { cleanLines: true },
  );
  const message = await spool.readMessage(id);
  assert.ok(message instanceof SpooledMessage);
  const [batch] = (await readdir(join(root, name, 'journal'))).filter((n) => n.endsWith('.jnl'));
  return { message, quarantined, batch: join(root, name, 'journal', batch!) };
}

/** Flips a byte of the message in its batch file (after the batch and record heads). */
async function damage(batch: string, at: number): Promise<void> {
  const file = await open(batch, 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 10 + at);
  byte[0] = byte[0]! ^ 0x20;
  await file.write(byte, 0, 1, 10 + at);
  await file.close();
}

/** `message` as the deliverer sees it, with every reading counted and whole() refused. */
function watched(message: SpooledMessage, afterFirstReading: () => Promise<void> = async () => undefined) {
  const readings = { chunks: 0, whole: 0 };
  const body: ChunkedMessage = {
    length: message.length,
    async *chunks(options) {
      readings.chunks++;
      yield* message.chunks(options);
      if (readings.chunks === 1) await afterFirstReading();
    },
    whole: () => {
      readings.whole++;
      return Promise.reject(new Error('read whole'));
    },
  };
  return { body, readings };
}

describe('a big DKIM-signed message is delivered from its chunks', () => {
  test('the field, then the stored bytes chunk by chunk: the signature verifies, the message never read whole', async () => {
    const stored = bigMessage('signed');
    const { message } = await queued('signed', 'SIGNED', stored);
    const { body, readings } = watched(message);
    const d = deliverer();
    const report = await d.deliver({
      from: 'bounce@example.com',
      recipients: ['b@example.org'],
      body,
      domain: 'example.org',
    });
    d.close();
    message.close();
    assert.equal(report.results[0]?.code, 250, JSON.stringify(report.results));
    assert.deepEqual(readings, { chunks: 2, whole: 0 }, 'one pass to sign, one to send');
    const got = upstream.received.at(-1)!;
    const fieldEnd = got.length - stored.length;
    assert.match(got.subarray(0, fieldEnd).toString('latin1'), /^DKIM-Signature: v=1;[^]*\r\n$/);
    assert.ok(got.subarray(fieldEnd).equals(stored), 'byte for byte after the field');
    const { results } = await dkimVerify(got, {
      resolver: async (name: string, type: string) => {
        if (type === 'TXT' && name === 'ed1._domainkey.example.com') return [[record]];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    });
    assert.equal(results[0]?.status.result, 'pass', JSON.stringify(results[0]?.status));
  });

  // Damage found by either reading fails the delivery as a damaged message does: nothing reaches
  // its end of data and the spool quarantines it.
  const cases: [string, 'before' | 'between', (e: unknown) => boolean][] = [
    ['a record damaged before signing: the signing pass fails', 'before', (e) => e instanceof SpoolDamage],
    ['a record damaged between the two passes: the sending pass fails', 'between', isSourceError],
  ];
  for (const [name, when, expected] of cases)
    test(name, async () => {
      const stored = bigMessage(when);
      const { message, quarantined, batch } = await queued(when, when.toUpperCase(), stored);
      const at = Math.floor(stored.length / 2);
      if (when === 'before') await damage(batch, at);
      const { body, readings } = watched(message, () =>
        when === 'between' ? damage(batch, at) : Promise.resolve(),
      );
      const count = upstream.received.length;
      const d = deliverer();
      await assert.rejects(
        d.deliver({ from: 'bounce@example.com', recipients: ['b@example.org'], body, domain: 'example.org' }),
        (e) => expected(e),
      );
      d.close();
      message.close();
      assert.equal(upstream.received.length, count, 'nothing delivered');
      assert.deepEqual(quarantined, [when.toUpperCase()]);
      assert.deepEqual(readings, { chunks: when === 'before' ? 1 : 2, whole: 0 });
    });
});
