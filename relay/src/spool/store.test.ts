import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from './store.ts';
import { nodeSpoolFs, type SpoolFs } from './fs-ops.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'spool-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function openSpool(name: string, fs: SpoolFs = nodeSpoolFs) {
  const quarantined: string[] = [];
  const spool = new Spool({
    dir: join(root, name),
    fs,
    events: { quarantined: (id) => quarantined.push(id) },
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

  test('a truncated and a garbage file are quarantined, never recovered', async () => {
    const { spool } = await openSpool('corrupt');
    await spool.write(envelope('GOOD'), Buffer.from('x'.repeat(100)));
    await spool.write(envelope('TRUNC'), Buffer.from('y'.repeat(100)));
    const trunc = join(root, 'corrupt', 'queue', 'TRUNC.msg');
    const { truncate } = await import('node:fs/promises');
    await truncate(trunc, 120);
    await writeFile(join(root, 'corrupt', 'queue', 'JUNK.msg'), 'not a spool file');
    const { spool: again, quarantined } = await openSpool('corrupt');
    const recovered = await again.recover();
    assert.deepEqual(
      recovered.map((m) => m.envelope.id),
      ['GOOD'],
    );
    assert.deepEqual(quarantined.sort(), ['JUNK', 'TRUNC']);
    assert.deepEqual((await readdir(join(root, 'corrupt', 'quarantine'))).sort(), ['JUNK.msg', 'TRUNC.msg']);
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

  test('a failing fsync leaves nothing queued and raises SPOOL_WRITE', async () => {
    const failing: SpoolFs = {
      ...nodeSpoolFs,
      syncFile: async () => {
        throw Object.assign(new Error('EIO: fsync failed'), { code: 'EIO' });
      },
    };
    const { spool } = await openSpool('fsync', failing);
    await assert.rejects(spool.write(envelope('F1'), Buffer.from('x')), { code: 'SPOOL_WRITE' });
    assert.deepEqual(await readdir(join(root, 'fsync', 'queue')), []);
    assert.deepEqual(await readdir(join(root, 'fsync', 'tmp')), []);
    assert.equal(spool.bytes, 0);
  });

  test('a failing directory fsync removes the renamed file', async () => {
    const failing: SpoolFs = { ...nodeSpoolFs, syncDir: async () => Promise.reject(new Error('EIO')) };
    const { spool } = await openSpool('dirsync', failing);
    await assert.rejects(spool.write(envelope('F2'), Buffer.from('x')), { code: 'SPOOL_WRITE' });
    assert.deepEqual(await readdir(join(root, 'dirsync', 'queue')), []);
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

  test('remove deletes message and state and updates the byte count', async () => {
    const { spool } = await openSpool('remove');
    await spool.write(envelope('R1'), Buffer.from('x'));
    assert.ok(spool.bytes > 0);
    await spool.remove('R1');
    assert.equal(spool.bytes, 0);
    assert.deepEqual(await readdir(join(root, 'remove', 'queue')), []);
  });

  test('ids are unique and safe as file names', async () => {
    const { spool } = await openSpool('ids');
    const ids = new Set(Array.from({ length: 1000 }, () => spool.newId(1_700_000_000_000)));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[A-Z0-9]+$/);
  });
});
