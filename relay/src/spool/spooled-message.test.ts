import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, open, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from './store.ts';
import { nodeSpoolFs } from './fs-ops.ts';
import { encodeMessage } from './record.ts';
import { CHUNK_BYTES, SpoolDamage, SpooledMessage } from './spooled-message.ts';
import { knownCleanLines } from '../security/bare-newline.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'spooled-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function openSpool(name: string) {
  const quarantined: { id: string; reason: string }[] = [];
  const spool = new Spool({
    dir: join(root, name),
    fs: nodeSpoolFs,
    events: { quarantined: (id, reason) => quarantined.push({ id, reason }) },
    copyDelayMs: 0,
  });
  await spool.open();
  return { spool, quarantined };
}

const fields = {
  from: 'a@example.com',
  recipients: ['b@example.org'],
  receivedAt: 1,
  client: { address: '127.0.0.1', helo: 'h' },
};

/** A message of `size` bytes: CRLF lines, some starting with a dot, distinct bytes everywhere. */
function message(size: number): Buffer {
  const lines: string[] = ['Subject: big\r\n\r\n'];
  for (let i = 0, n = 0; n < size; i++) {
    const line = `${i % 9 === 0 ? '.' : ''}line ${i} ${'x'.repeat(i % 200)}\r\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join(''), 'latin1');
}

/** Writes `body` as the intake does past its streaming threshold: a batch of its own. */
async function stream(spool: Spool, id: string, body: Buffer): Promise<void> {
  const s = spool.openStream(id);
  for (let at = 0; at < body.length; at += 50_000) s.push(body.subarray(at, at + 50_000));
  await spool.commitStream(s, fields, { cleanLines: true });
}

/** All chunks of one reading, and the error it ended with, if any. */
async function readAll(m: SpooledMessage): Promise<{ chunks: Buffer[]; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of m.chunks()) chunks.push(c);
    return { chunks };
  } catch (error) {
    return { chunks, error };
  }
}

async function flip(path: string, position: number): Promise<void> {
  const file = await open(path, 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, position);
  byte[0] = byte[0]! ^ 0x20;
  await file.write(byte, 0, 1, position);
  await file.close();
}

async function onlyBatch(name: string): Promise<string> {
  const [file] = (await readdir(join(root, name, 'journal'))).filter((n) => n.endsWith('.jnl'));
  return join(root, name, 'journal', file!);
}

describe('a big queued message read in chunks', () => {
  test('a streamed record is read from its batch in chunks, byte for byte, again on every reading, its file unlinked meanwhile', async () => {
    const { spool } = await openSpool('whole');
    const body = message(700_000);
    await stream(spool, 'S', body);
    const m = await spool.readMessage('S');
    assert.ok(m instanceof SpooledMessage);
    const first = await readAll(m);
    assert.equal(first.error, undefined);
    assert.equal(first.chunks.length, Math.ceil(body.length / CHUNK_BYTES));
    assert.ok(first.chunks.every((c) => c.length <= CHUNK_BYTES && knownCleanLines(c)));
    assert.deepEqual(Buffer.concat(first.chunks), body);
    // A second transaction (next MX, VERP envelope) reads it again, even once its file is gone.
    await unlink(await onlyBatch('whole'));
    assert.deepEqual(Buffer.concat((await readAll(m)).chunks), body);
    assert.deepEqual(await m.whole(), body);
    m.close();
  });

  test('a transient reading gives the same bytes, each chunk in one reused buffer never marked clean, and is checked the same way', async () => {
    const { spool, quarantined } = await openSpool('transient');
    const body = message(500_000);
    await stream(spool, 'T', body);
    const m = await spool.readMessage('T');
    assert.ok(m instanceof SpooledMessage);
    const copies: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for await (const chunk of m.chunks({ transient: true })) {
      copies.push(Buffer.from(chunk));
      buffers.add(chunk.buffer);
      assert.equal(knownCleanLines(chunk), false);
    }
    assert.deepEqual(Buffer.concat(copies), body);
    assert.equal(buffers.size, 1, 'one buffer for every chunk');
    await flip(await onlyBatch('transient'), 10 + 1000);
    const damaged: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const chunk of m.chunks({ transient: true })) damaged.push(Buffer.from(chunk));
    }, SpoolDamage);
    assert.equal(damaged.length, Math.ceil(body.length / CHUNK_BYTES) - 1, 'all but the last chunk');
    assert.deepEqual(quarantined, [{ id: 'T', reason: 'body checksum mismatch' }]);
    m.close();
  });

  test('after a restart it is read from the journal in chunks, not known clean any more', async () => {
    const { spool } = await openSpool('restart');
    const body = message(300_000);
    await stream(spool, 'R', body);
    const { spool: again } = await openSpool('restart');
    await again.recover();
    const m = await again.readMessage('R');
    assert.ok(m instanceof SpooledMessage);
    const { chunks } = await readAll(m);
    assert.deepEqual(Buffer.concat(chunks), body);
    assert.equal(knownCleanLines(chunks[0]!), false);
    m.close();
  });

  test('a version 1 copy in queue/ (an older spool) is read in chunks from the copy', async () => {
    const dir = join(root, 'copy');
    const body = message(400_000);
    const { spool: first } = await openSpool('copy');
    await first.close();
    await writeFile(join(dir, 'queue', 'OLD.msg'), encodeMessage({ id: 'OLD', ...fields }, body));
    const { spool } = await openSpool('copy');
    await spool.recover();
    const m = await spool.readMessage('OLD');
    assert.ok(m instanceof SpooledMessage);
    assert.deepEqual(Buffer.concat((await readAll(m)).chunks), body);
    m.close();
  });

  test('a message below the threshold is read whole, as before', async () => {
    const { spool } = await openSpool('small');
    await stream(spool, 'SMALL', message(100_000));
    assert.ok(Buffer.isBuffer(await spool.readMessage('SMALL')));
  });

  // A byte flipped in the message after it was accepted: every chunk but the last comes out, then
  // the reading fails, the message is quarantined, and it is never read again.
  const damage: [string, (length: number) => number][] = [
    ['its first byte', () => 0],
    ['a byte in the middle', (n) => Math.floor(n / 2)],
    ['a byte in its last chunk', (n) => n - 3],
  ];
  for (const [name, where] of damage) {
    test(`damage to ${name}: the last chunk is withheld, the message quarantined`, async () => {
      const dir = `damaged-${where(1000)}`;
      const { spool, quarantined } = await openSpool(dir);
      const body = message(600_000);
      await stream(spool, 'D', body);
      const m = await spool.readMessage('D');
      assert.ok(m instanceof SpooledMessage);
      // The record starts after the batch head and the record head ("MFS1\nMFQ2\n").
      await flip(await onlyBatch(dir), 10 + where(body.length));
      const { chunks, error } = await readAll(m);
      assert.ok(error instanceof SpoolDamage, String(error));
      assert.equal(chunks.length, Math.ceil(body.length / CHUNK_BYTES) - 1, 'all but the last chunk');
      assert.deepEqual(quarantined, [{ id: 'D', reason: 'body checksum mismatch' }]);
      assert.deepEqual((await readdir(join(root, dir, 'quarantine'))).sort(), ['D.jnl']);
      await assert.rejects(m.whole(), SpoolDamage);
      assert.equal(quarantined.length, 1, 'quarantined once');
      m.close();
      assert.equal(await spool.readMessage('D'), undefined);
    });
  }

  test('damage to its envelope: found when opened, quarantined as a whole read would', async () => {
    const { spool, quarantined } = await openSpool('envelope');
    const body = message(300_000);
    await stream(spool, 'E', body);
    // The envelope JSON follows the message in a streamed record: break its first brace.
    await flip(await onlyBatch('envelope'), 10 + body.length);
    assert.equal(await spool.readMessage('E'), undefined);
    assert.deepEqual(
      quarantined.map((q) => q.id),
      ['E'],
    );
  });
});
