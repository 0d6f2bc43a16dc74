import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, readFile, writeFile, appendFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from './store.ts';
import { nodeSpoolFs, type SpoolFs } from './fs-ops.ts';
import { decodeBatch, encodeBatch } from './batch.ts';
import { encodeMessage } from './record.ts';
import { knownCleanLines } from '../security/bare-newline.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'spool-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Copies are written right after the commit unless `copyDelayMs` says otherwise. */
async function openSpool(
  name: string,
  fs: SpoolFs = nodeSpoolFs,
  retireAfterMs?: number,
  copyDelayMs = 0,
  maxDelayedCopyBytes?: number,
) {
  const quarantined: string[] = [];
  const spool = new Spool({
    dir: join(root, name),
    fs,
    events: { quarantined: (id) => quarantined.push(id) },
    ...(retireAfterMs === undefined ? {} : { retireAfterMs }),
    ...(maxDelayedCopyBytes === undefined ? {} : { maxDelayedCopyBytes }),
    copyDelayMs,
  });
  await spool.open();
  return { spool, quarantined };
}

const envelope = (id: string) => ({
  id,
  from: 'a@example.com',
  recipients: ['b@example.org', 'c@example.org'],
  receivedAt: 1,
  client: { address: '127.0.0.1', helo: 'h' },
});

/** The batch files in journal/. */
async function batchFiles(name: string): Promise<string[]> {
  return (await readdir(join(root, name, 'journal'))).filter((n) => n.endsWith('.jnl'));
}

/** Writes messages concurrently (one group commit) and returns the batch file's path. */
async function writeTogether(spool: Spool, name: string, ids: string[]): Promise<string> {
  await Promise.all(ids.map((id) => spool.write(envelope(id), Buffer.from(`body of ${id}\r\n`))));
  const [file, ...rest] = await batchFiles(name);
  assert.equal(rest.length, 0, 'one batch file');
  return join(root, name, 'journal', file!);
}

const ids = (recovered: { envelope: { id: string } }[]) => recovered.map((m) => m.envelope.id).sort();

describe('Spool', () => {
  test('a written message is recovered with its recipient states', async () => {
    const { spool } = await openSpool('recover');
    await spool.write(envelope('M1'), Buffer.from('hello\r\n'));
    await spool.recordStates('M1', [{ index: 0, status: 'delivered', attempts: 1 }], true);
    const { spool: again } = await openSpool('recover');
    const [m] = await again.recover();
    assert.equal(m?.envelope.id, 'M1');
    assert.equal(m?.states.get(0)?.status, 'delivered');
    assert.equal(m?.states.has(1), false);
    assert.deepEqual(await again.readBody('M1'), Buffer.from('hello\r\n'));
  });

  test('a body written as scanned is read back known clean, any other is not', async () => {
    const { spool } = await openSpool('clean-lines');
    await spool.write(envelope('C'), [Buffer.from('a\r\n'), Buffer.from('b\r\n')], { cleanLines: true });
    await spool.write(envelope('U'), Buffer.from('a\r\n'));
    assert.equal(knownCleanLines((await spool.readBody('C'))!), true);
    assert.equal(knownCleanLines((await spool.readBody('U'))!), false);
    await spool.close();
  });

  test('messages written together share one batch file and one fsync, and each is read back', async () => {
    let fileSyncs = 0;
    const counting: SpoolFs = {
      ...nodeSpoolFs,
      syncFile: (fd) => {
        fileSyncs++;
        return nodeSpoolFs.syncFile(fd);
      },
    };
    const { spool } = await openSpool('together', counting);
    const written = Array.from({ length: 20 }, (_, i) => `T${i}`);
    await writeTogether(spool, 'together', written);
    assert.equal(fileSyncs, 1);
    // Each message also has its own (unsynced) copy in queue/.
    assert.equal((await readdir(join(root, 'together', 'queue'))).length, 20);
    const { spool: again } = await openSpool('together');
    assert.deepEqual(ids(await again.recover()), [...written].sort());
    for (const id of written) assert.deepEqual(await again.readBody(id), Buffer.from(`body of ${id}\r\n`));
  });

  test('a single-record file of an older relay is recovered; truncated and garbage ones are quarantined', async () => {
    const queue = join(root, 'legacy', 'queue');
    const { spool } = await openSpool('legacy');
    await writeFile(join(queue, 'OLD.msg'), encodeMessage(envelope('OLD'), Buffer.from('old body')));
    const trunc = encodeMessage(envelope('TRUNC'), Buffer.from('y'.repeat(100)));
    await writeFile(join(queue, 'TRUNC.msg'), trunc.subarray(0, 120));
    await writeFile(join(queue, 'JUNK.msg'), 'not a spool file');
    void spool;
    const { spool: again, quarantined } = await openSpool('legacy');
    assert.deepEqual(ids(await again.recover()), ['OLD']);
    assert.deepEqual(await again.readBody('OLD'), Buffer.from('old body'));
    assert.deepEqual(quarantined.sort(), ['JUNK', 'TRUNC']);
    assert.deepEqual((await readdir(join(root, 'legacy', 'quarantine'))).sort(), ['JUNK.msg', 'TRUNC.msg']);
    await again.remove('OLD');
    assert.deepEqual(await readdir(queue), []);
  });

  test('a torn batch keeps its whole messages, quarantines the tear once, and moves the file aside', async () => {
    const { spool } = await openSpool('torn-batch');
    const path = await writeTogether(spool, 'torn-batch', ['A', 'B', 'C']);
    const size = (await readFile(path)).length;
    await truncate(path, size - 5);
    // A torn batch was never fsynced, so its messages never got their copies.
    await rm(join(root, 'torn-batch', 'queue', 'C.msg'));
    const first = await openSpool('torn-batch');
    assert.deepEqual(ids(await first.spool.recover()), ['A', 'B']);
    assert.equal(first.quarantined.length, 1);
    assert.deepEqual(await first.spool.readBody('B'), Buffer.from('body of B\r\n'));
    assert.equal((await readdir(join(root, 'torn-batch', 'quarantine'))).length, 1);
    // The intact messages now live in a fresh batch: the next start counts nothing again.
    const second = await openSpool('torn-batch');
    assert.deepEqual(ids(await second.spool.recover()), ['A', 'B']);
    assert.deepEqual(second.quarantined, []);
  });

  test('a damaged record in the middle of a batch loses only that message', async () => {
    const { spool } = await openSpool('flip');
    const path = await writeTogether(spool, 'flip', ['A', 'B', 'C']);
    const file = await readFile(path);
    const middle = decodeBatch(file).frames[1]!;
    file.writeUInt8(
      file.readUInt8(middle.offset + middle.length - 3) ^ 0x01,
      middle.offset + middle.length - 3,
    );
    await writeFile(path, file);
    await rm(join(root, 'flip', 'queue', 'B.msg'));
    const again = await openSpool('flip');
    assert.deepEqual(ids(await again.spool.recover()), ['A', 'C']);
    assert.equal(again.quarantined.length, 1);
  });

  test('an intact copy saves a message whose journal record is damaged', async () => {
    const synced: string[] = [];
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      syncPath: (path) => {
        synced.push(path);
        return nodeSpoolFs.syncPath(path);
      },
    };
    const { spool } = await openSpool('flip-copy');
    const path = await writeTogether(spool, 'flip-copy', ['A', 'B', 'C']);
    const file = await readFile(path);
    const middle = decodeBatch(file).frames[1]!;
    file.writeUInt8(
      file.readUInt8(middle.offset + middle.length - 3) ^ 0x01,
      middle.offset + middle.length - 3,
    );
    await writeFile(path, file);
    const again = await openSpool('flip-copy', fs);
    assert.deepEqual(ids(await again.spool.recover()), ['A', 'B', 'C']);
    assert.equal(again.quarantined.length, 1, 'the damaged span is still counted');
    assert.ok(synced.includes(join(root, 'flip-copy', 'queue', 'B.msg')), 'the rescued copy is fsynced');
    assert.deepEqual(await again.spool.readBody('B'), Buffer.from('body of B\r\n'));
  });

  test('a crash while a damaged batch was rewritten does not queue a message twice', async () => {
    const queue = join(root, 'rewrite', 'journal');
    const { spool } = await openSpool('rewrite');
    void spool;
    const a = encodeMessage(envelope('A'), Buffer.from('a'));
    const b = encodeMessage(envelope('B'), Buffer.from('b'));
    const damaged = encodeBatch([a, b]).file;
    await writeFile(join(queue, 'OLDBATCH.jnl'), damaged.subarray(0, damaged.length - 1));
    await writeFile(join(queue, 'NEWBATCH.jnl'), encodeBatch([a]).file);
    const again = await openSpool('rewrite');
    assert.deepEqual(ids(await again.spool.recover()), ['A']);
    assert.equal(again.quarantined.length, 1);
    await again.spool.remove('A');
    assert.deepEqual(await readdir(queue), []);
    assert.deepEqual(await readdir(join(root, 'rewrite', 'queue')), []);
  });

  test('finished messages of a batch are not recovered; the batch goes with its last message', async () => {
    const { spool } = await openSpool('done');
    await writeTogether(spool, 'done', ['A', 'B', 'C']);
    await spool.recordStates('B', [{ index: 0, status: 'delivered', attempts: 1 }], true);
    await spool.remove('B');
    const again = await openSpool('done');
    assert.deepEqual(ids(await again.spool.recover()), ['A', 'C']);
    await again.spool.remove('A');
    assert.equal((await batchFiles('done')).length, 1);
    await again.spool.remove('C');
    assert.deepEqual(await readdir(join(root, 'done', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'done', 'journal')), []);
    assert.equal(again.spool.bytes, 0);
  });

  test('done marks of many batches at once (more than are held open) are all read at recovery', async () => {
    const { spool } = await openSpool('many-done');
    const batches = 70;
    for (let i = 0; i < batches; i++) {
      await Promise.all([`K${i}`, `L${i}`, `M${i}`].map((id) => spool.write(envelope(id), Buffer.from('x'))));
    }
    for (let i = 0; i < batches; i++) {
      await spool.remove(`K${i}`);
      await spool.remove(`L${i}`);
    }
    const journal = await readdir(join(root, 'many-done', 'journal'));
    assert.equal(journal.filter((n) => n.endsWith('.done')).length, batches);
    for (const n of journal.filter((x) => x.endsWith('.done')))
      assert.equal((await readFile(join(root, 'many-done', 'journal', n), 'utf8')).split('\n').length, 3);
    const again = await openSpool('many-done');
    assert.deepEqual(
      ids(await again.spool.recover()),
      Array.from({ length: batches }, (_, i) => `M${i}`).sort(),
    );
    for (let i = 0; i < batches; i++) await spool.remove(`M${i}`);
    assert.deepEqual(await readdir(join(root, 'many-done', 'journal')), []);
    await spool.close();
  });

  test('a copy left by a kill between the done mark and its deletion is not delivered again', async () => {
    const { spool } = await openSpool('leftover');
    await writeTogether(spool, 'leftover', ['A', 'B']);
    const copy = await readFile(join(root, 'leftover', 'queue', 'A.msg'));
    await spool.remove('A');
    await writeFile(join(root, 'leftover', 'queue', 'A.msg'), copy);
    const again = await openSpool('leftover');
    assert.deepEqual(ids(await again.spool.recover()), ['B']);
    assert.deepEqual(await readdir(join(root, 'leftover', 'queue')), ['B.msg']);
  });

  test('copies torn or lost by a power loss are rebuilt from the journal', async () => {
    const { spool } = await openSpool('rebuild');
    await writeTogether(spool, 'rebuild', ['A', 'B']);
    await truncate(join(root, 'rebuild', 'queue', 'A.msg'), 10);
    await rm(join(root, 'rebuild', 'queue', 'B.msg'));
    const again = await openSpool('rebuild');
    assert.deepEqual(ids(await again.spool.recover()), ['A', 'B']);
    assert.deepEqual(again.quarantined, []);
    assert.deepEqual(await again.spool.readBody('A'), Buffer.from('body of A\r\n'));
    assert.deepEqual(await again.spool.readBody('B'), Buffer.from('body of B\r\n'));
    for (const id of ['A', 'B']) {
      const copy = await readFile(join(root, 'rebuild', 'queue', `${id}.msg`));
      assert.deepEqual(copy.subarray(copy.length - 11), Buffer.from(`body of ${id}\r\n`));
    }
  });

  test('a batch still holding messages after retireAfterMs is retired: its copies are fsynced and stand alone', async () => {
    const synced: string[] = [];
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      syncPath: (path) => {
        synced.push(path);
        return nodeSpoolFs.syncPath(path);
      },
    };
    const { spool } = await openSpool('retire', fs, 1);
    await spool.write(envelope('OLD'), Buffer.from('old'));
    await new Promise((r) => setTimeout(r, 10));
    await spool.write(envelope('NEW'), Buffer.from('new'));
    for (let i = 0; i < 100 && (await batchFiles('retire')).length > 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await batchFiles('retire')).length, 1);
    assert.deepEqual(synced, [join(root, 'retire', 'queue', 'OLD.msg')]);
    const again = await openSpool('retire');
    assert.deepEqual(ids(await again.spool.recover()), ['NEW', 'OLD']);
    assert.deepEqual(await again.spool.readBody('OLD'), Buffer.from('old'));
    await again.spool.remove('OLD');
    await again.spool.remove('NEW');
    assert.deepEqual(await readdir(join(root, 'retire', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'retire', 'journal')), []);
  });

  test('a failing write leaves nothing queued', async () => {
    const failing: SpoolFs = {
      ...nodeSpoolFs,
      createFile: () => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      },
    };
    const { spool } = await openSpool('enospc', failing);
    await assert.rejects(spool.write(envelope('W1'), Buffer.from('x')), { code: 'SPOOL_WRITE' });
    assert.deepEqual(await readdir(join(root, 'enospc', 'queue')), []);
  });

  test('a failing fsync fails every message of its batch, leaves nothing queued, and the next batch works', async () => {
    let failing = true;
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      syncFile: async (fd) => {
        if (!failing) return nodeSpoolFs.syncFile(fd);
        throw Object.assign(new Error('EIO: fsync failed'), { code: 'EIO' });
      },
    };
    const { spool } = await openSpool('fsync', fs);
    const results = await Promise.allSettled(
      ['F1', 'F2', 'F3'].map((id) => spool.write(envelope(id), Buffer.from('x'))),
    );
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r.reason as { code?: string }).code, 'SPOOL_WRITE');
    }
    assert.deepEqual(await readdir(join(root, 'fsync', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'fsync', 'journal')), []);
    assert.deepEqual(await readdir(join(root, 'fsync', 'tmp')), []);
    assert.equal(spool.bytes, 0);
    assert.equal(await spool.readBody('F1'), undefined);
    failing = false;
    await spool.write(envelope('F4'), Buffer.from('y'));
    const again = await openSpool('fsync');
    assert.deepEqual(ids(await again.spool.recover()), ['F4']);
  });

  test('a failing directory fsync removes the renamed file', async () => {
    const failing: SpoolFs = {
      ...nodeSpoolFs,
      syncDir: async () => Promise.reject(new Error('EIO')),
      syncDirFd: async () => Promise.reject(new Error('EIO')),
    };
    const { spool } = await openSpool('dirsync', failing);
    await assert.rejects(spool.write(envelope('F2'), Buffer.from('x')), { code: 'SPOOL_WRITE' });
    assert.deepEqual(await readdir(join(root, 'dirsync', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'dirsync', 'journal')), []);
  });

  test('a torn state line does not lose earlier states', async () => {
    const { spool } = await openSpool('torn');
    await spool.write(envelope('T1'), Buffer.from('x'));
    await spool.recordStates('T1', [{ index: 1, status: 'delivered', attempts: 1 }], true);
    await appendFile(join(root, 'torn', 'queue', 'T1.rcpt'), '{"index":0,"status":"deliv');
    const { spool: again } = await openSpool('torn');
    const [m] = await again.recover();
    assert.equal(m?.states.get(1)?.status, 'delivered');
    assert.equal(m?.states.has(0), false);
  });

  test('a message damaged in its copy and its journal record is quarantined alone', async () => {
    const { spool } = await openSpool('late');
    const path = await writeTogether(spool, 'late', ['A', 'B']);
    const again = await openSpool('late');
    await again.spool.recover();
    const file = await readFile(path);
    const a = decodeBatch(file).frames.find((f) => f.record.includes('"id":"A"'))!;
    file.writeUInt8(file.readUInt8(a.offset + a.length - 2) ^ 0x01, a.offset + a.length - 2);
    await writeFile(path, file);
    await writeFile(join(root, 'late', 'queue', 'A.msg'), 'damaged');
    assert.equal(await again.spool.readBody('A'), undefined);
    assert.deepEqual(again.quarantined, ['A']);
    assert.deepEqual(await again.spool.readBody('B'), Buffer.from('body of B\r\n'));
    assert.deepEqual((await readdir(join(root, 'late', 'quarantine'))).sort(), ['A.jnl', 'A.msg']);
    const third = await openSpool('late');
    assert.deepEqual(ids(await third.spool.recover()), ['B']);
  });

  test('remove deletes message and state and updates the byte count', async () => {
    const { spool } = await openSpool('remove');
    await spool.write(envelope('R1'), Buffer.from('x'));
    await spool.recordStates('R1', [{ index: 0, status: 'deferred', attempts: 1 }], false);
    assert.ok(spool.bytes > 0);
    await spool.remove('R1');
    assert.equal(spool.bytes, 0);
    assert.deepEqual(await readdir(join(root, 'remove', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'remove', 'journal')), []);
  });

  test('a delayed copy is written only for a message still queued when the delay is over', async () => {
    let copies = 0;
    let removes = 0;
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      replaceFile: (path, data) => {
        copies++;
        nodeSpoolFs.replaceFile(path, data);
      },
      remove: (path) => {
        removes++;
        return nodeSpoolFs.remove(path);
      },
    };
    const { spool } = await openSpool('delayed', fs, undefined, 100);
    await writeTogether(spool, 'delayed', ['QUICK', 'SLOW']);
    assert.deepEqual(await readdir(join(root, 'delayed', 'queue')), [], 'no copy yet');
    assert.deepEqual(await spool.readBody('QUICK'), Buffer.from('body of QUICK\r\n'));
    await spool.remove('QUICK');
    assert.equal(removes, 0, 'no copy to unlink, and the batch still holds SLOW');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(copies, 1);
    assert.deepEqual(await readdir(join(root, 'delayed', 'queue')), ['SLOW.msg']);
    // Killed now: the journal (QUICK marked done) and the copy give SLOW back, once.
    const again = await openSpool('delayed');
    assert.deepEqual(ids(await again.spool.recover()), ['SLOW']);
    assert.deepEqual(await again.spool.readBody('SLOW'), Buffer.from('body of SLOW\r\n'));
  });

  test('past the bound on held records, a delayed copy is read back from the journal, only if still queued', async () => {
    let copies = 0;
    let reads = 0;
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      replaceFile: (path, data) => {
        copies++;
        nodeSpoolFs.replaceFile(path, data);
      },
      readRange: (path, offset, length) => {
        reads++;
        return nodeSpoolFs.readRange(path, offset, length);
      },
    };
    // No record may be held: every copy comes from the journal.
    // A copy delay of 2 s leaves QUICK's removal well inside it even on a loaded machine; then wait
    // for SLOW's copy rather than for a fixed time.
    const { spool } = await openSpool('delayed-read', fs, undefined, 2_000, 0);
    const batch = await writeTogether(spool, 'delayed-read', ['QUICK', 'SLOW']);
    await spool.remove('QUICK');
    for (let waited = 0; copies === 0 && waited < 30_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual({ copies, reads }, { copies: 1, reads: 1 }, 'read back and written for SLOW only');
    const copy = await readFile(join(root, 'delayed-read', 'queue', 'SLOW.msg'));
    const slow = decodeBatch(await readFile(batch)).frames.find((f) => f.record.includes('body of SLOW'));
    assert.deepEqual(copy, slow?.record, 'the copy is the journal record, byte for byte');
    const again = await openSpool('delayed-read');
    assert.deepEqual(ids(await again.spool.recover()), ['SLOW']);
    assert.deepEqual(await again.spool.readBody('SLOW'), Buffer.from('body of SLOW\r\n'));
  });

  test('a message killed before its delayed copy is recovered from the journal', async () => {
    const { spool } = await openSpool('delayed-kill', nodeSpoolFs, undefined, 60_000);
    await writeTogether(spool, 'delayed-kill', ['A', 'B']);
    await spool.remove('A');
    const again = await openSpool('delayed-kill');
    assert.deepEqual(ids(await again.spool.recover()), ['B']);
    assert.deepEqual(await again.spool.readBody('B'), Buffer.from('body of B\r\n'));
    await again.spool.remove('B');
    assert.deepEqual(await readdir(join(root, 'delayed-kill', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'delayed-kill', 'journal')), []);
  });

  test('a streamed message is durable at commit, read back byte for byte, and recovered after a restart', async () => {
    const { spool } = await openSpool('stream');
    const chunks = [Buffer.from('Received: x\r\n'), Buffer.alloc(300_000, 'a'), Buffer.from('\r\n.end\r\n')];
    const stream = spool.openStream('S1');
    for (const c of chunks) stream.push(c);
    const { id: _id, ...fields } = envelope('S1');
    const full = await spool.commitStream(stream, fields, { cleanLines: true });
    assert.equal(full.id, 'S1');
    assert.equal(full.bodyLength, Buffer.concat(chunks).length);
    assert.deepEqual(await readdir(join(root, 'stream', 'tmp')), []);
    const [file, ...rest] = await batchFiles('stream');
    assert.equal(rest.length, 0);
    assert.equal(decodeBatch(await readFile(join(root, 'stream', 'journal', file!))).frames.length, 1);
    const body = await spool.readBody('S1');
    assert.deepEqual(body, Buffer.concat(chunks));
    assert.equal(knownCleanLines(body!), true);
    const { spool: again } = await openSpool('stream');
    assert.deepEqual(ids(await again.recover()), ['S1']);
    const recovered = await again.readBody('S1');
    assert.deepEqual(recovered, Buffer.concat(chunks));
    assert.equal(knownCleanLines(recovered!), false, 'after a restart a body is scanned again');
    await again.remove('S1');
    assert.deepEqual(await batchFiles('stream'), []);
  });

  test('streamed and batched messages of spools old and new recover together', async () => {
    const { spool } = await openSpool('stream-mixed');
    await writeTogether(spool, 'stream-mixed', ['B1', 'B2']);
    const stream = spool.openStream('S2');
    stream.push(Buffer.from('streamed body\r\n'));
    const { id: _id, ...fields } = envelope('S2');
    await spool.commitStream(stream, fields);
    await writeFile(
      join(root, 'stream-mixed', 'queue', 'OLD.msg'),
      encodeMessage(envelope('OLD'), Buffer.from('o')),
    );
    const { spool: again, quarantined } = await openSpool('stream-mixed');
    assert.deepEqual(ids(await again.recover()), ['B1', 'B2', 'OLD', 'S2']);
    assert.deepEqual(quarantined, []);
    assert.deepEqual(await again.readBody('S2'), Buffer.from('streamed body\r\n'));
  });

  test('an aborted stream leaves nothing in tmp/, journal/ or queue/', async () => {
    const { spool } = await openSpool('stream-abort');
    const stream = spool.openStream('A1');
    stream.push(Buffer.alloc(400_000, 'b'));
    assert.equal((await readdir(join(root, 'stream-abort', 'tmp'))).length, 1);
    await stream.abort();
    for (const d of ['tmp', 'journal', 'queue'])
      assert.deepEqual(await readdir(join(root, 'stream-abort', d)), [], d);
    const { spool: again } = await openSpool('stream-abort');
    assert.deepEqual(await again.recover(), []);
  });

  test('a stream killed before its commit is forgotten at start; a torn streamed batch is quarantined', async () => {
    const { spool } = await openSpool('stream-torn');
    const unfinished = spool.openStream('K1');
    unfinished.push(Buffer.from('half a message'));
    const stream = spool.openStream('K2');
    stream.push(Buffer.from('whole message\r\n'));
    const { id: _id, ...fields } = envelope('K2');
    await spool.commitStream(stream, fields);
    const [file] = await batchFiles('stream-torn');
    const path = join(root, 'stream-torn', 'journal', file!);
    await truncate(path, (await readFile(path)).length - 3);
    await rm(join(root, 'stream-torn', 'queue', 'K2.msg'), { force: true });
    const { spool: again, quarantined } = await openSpool('stream-torn');
    assert.deepEqual(await again.recover(), []);
    assert.equal(quarantined.length, 1);
    assert.deepEqual(await readdir(join(root, 'stream-torn', 'tmp')), []);
    assert.deepEqual(await batchFiles('stream-torn'), []);
  });

  test('a failing write or fsync of a stream fails its commit and leaves nothing behind', async () => {
    const cases: [string, Partial<SpoolFs>][] = [
      ['write', { writeParts: async () => Promise.reject(new Error('ENOSPC')) }],
      ['fsync', { syncFile: async () => Promise.reject(new Error('EIO')) }],
    ];
    for (const [name, failing] of cases) {
      const dir = `stream-fail-${name}`;
      const { spool } = await openSpool(dir, { ...nodeSpoolFs, ...failing });
      const stream = spool.openStream('F1');
      stream.push(Buffer.alloc(1000, 'c'));
      const { id: _id, ...fields } = envelope('F1');
      await assert.rejects(spool.commitStream(stream, fields), { code: 'SPOOL_WRITE' }, name);
      for (const d of ['tmp', 'journal', 'queue'])
        assert.deepEqual(await readdir(join(root, dir, d)), [], `${name}: ${d}`);
      assert.equal(await spool.readBody('F1'), undefined);
    }
  });

  test('a message alone in its batch with no copy yet is finished by deleting the batch, no done log', async () => {
    const appends: string[] = [];
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      openAppend: (path) => {
        appends.push(path);
        return nodeSpoolFs.openAppend(path);
      },
      appendSync: (path, data) => {
        appends.push(path);
        nodeSpoolFs.appendSync(path, data);
      },
    };
    const { spool } = await openSpool('sole', fs, undefined, 60_000);
    await spool.write(envelope('ALONE'), Buffer.from('x\r\n'));
    const stream = spool.openStream('STREAMED');
    stream.push(Buffer.from('y\r\n'));
    const { id: _id, ...fields } = envelope('STREAMED');
    await spool.commitStream(stream, fields);
    await spool.recordStates('STREAMED', [{ index: 0, status: 'delivered', attempts: 1 }], false);
    assert.equal((await batchFiles('sole')).length, 2);
    await spool.remove('ALONE');
    await spool.remove('STREAMED');
    assert.deepEqual(appends, []);
    assert.deepEqual(await readdir(join(root, 'sole', 'journal')), []);
    assert.deepEqual(await readdir(join(root, 'sole', 'queue')), []);
    const { spool: again } = await openSpool('sole');
    assert.deepEqual(await again.recover(), []);
  });

  test('a streamed message gets no queue/ copy: read back for delivery and past the copy delay, its batch is its only file and goes with it', async () => {
    const appends: string[] = [];
    const fs: SpoolFs = {
      ...nodeSpoolFs,
      openAppend: (path) => {
        appends.push(path);
        return nodeSpoolFs.openAppend(path);
      },
    };
    for (const copyDelayMs of [0, 20]) {
      const name = `own-${copyDelayMs}`;
      const { spool } = await openSpool(name, fs, undefined, copyDelayMs);
      const stream = spool.openStream('OWN');
      const body = Buffer.from('Subject: s\r\n\r\n' + 'z'.repeat(5000) + '\r\n');
      stream.push(body);
      const { id: _id, ...fields } = envelope('OWN');
      await spool.commitStream(stream, fields);
      assert.deepEqual(await spool.readBody('OWN'), body, `${name}: read back from its batch`);
      await new Promise((r) => setTimeout(r, 60));
      assert.deepEqual(await readdir(join(root, name, 'queue')), [], `${name}: no copy written`);
      assert.equal((await batchFiles(name)).length, 1);
      await spool.remove('OWN');
      assert.deepEqual(await readdir(join(root, name, 'journal')), [], `${name}: the batch went with it`);
    }
    assert.deepEqual(appends, [], 'no done log');
  });

  test('ids are unique and safe as file names', async () => {
    const { spool } = await openSpool('ids');
    const ids = new Set(Array.from({ length: 1000 }, () => spool.newId(1_700_000_000_000)));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[A-Z0-9]+$/);
  });
});
