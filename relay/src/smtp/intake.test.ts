import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataIntake } from './intake.ts';
import { Spool } from '../spool/store.ts';
import { nodeSpoolFs } from '../spool/fs-ops.ts';
import type { SpoolStream } from '../spool/stream.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'intake-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function spoolIn(name: string): Promise<Spool> {
  const spool = new Spool({
    dir: join(root, name),
    fs: nodeSpoolFs,
    events: { quarantined: () => undefined },
  });
  await spool.open();
  return spool;
}

const fields = {
  from: 'a@example.com',
  recipients: ['b@example.org'],
  receivedAt: 1,
  client: { address: '127.0.0.1', helo: 'h' },
};

const chunk = (n: number, fill: string) => Buffer.alloc(n, fill);

describe('DataIntake', () => {
  const cases: { name: string; sizes: number[]; streamAfter: number; streamed: boolean }[] = [
    {
      name: 'a message under the bound stays in memory',
      sizes: [100, 200],
      streamAfter: 1000,
      streamed: false,
    },
    {
      name: 'a message reaching the bound is streamed',
      sizes: [600, 400],
      streamAfter: 1000,
      streamed: true,
    },
    {
      name: 'a message past the bound is streamed from its first chunk',
      sizes: [700, 700, 5],
      streamAfter: 1000,
      streamed: true,
    },
  ];
  for (const c of cases) {
    test(`${c.name}, every byte in order`, async () => {
      const spool = await spoolIn(c.name.replaceAll(' ', '-'));
      let opened = 0;
      const intake = new DataIntake<SpoolStream>({
        open: () => {
          opened++;
          return spool.openStream(`ID${opened}`);
        },
        streamAfter: c.streamAfter,
        maxPending: Infinity,
      });
      const chunks = c.sizes.map((n, i) => chunk(n, String.fromCharCode(97 + i)));
      for (const x of chunks) assert.equal(intake.push(x), true);
      const result = intake.result();
      assert.equal('streamed' in result, c.streamed);
      assert.equal(opened, c.streamed ? 1 : 0);
      if ('streamed' in result) {
        await spool.commitStream(result.streamed, fields);
        assert.deepEqual(await spool.readBody('ID1'), Buffer.concat(chunks));
      } else {
        assert.deepEqual(Buffer.concat(result.chunks), Buffer.concat(chunks));
      }
    });
  }

  test('no stream to be had (none offered, or its file cannot be created): the message stays in memory', () => {
    for (const open of [undefined, () => undefined]) {
      const intake = new DataIntake<SpoolStream>({ open, streamAfter: 10, maxPending: 0 });
      assert.equal(intake.push(chunk(50, 'x')), true);
      const result = intake.result();
      assert.ok('chunks' in result);
      assert.equal(result.chunks.length, 1);
    }
  });

  test('more than maxPending bytes waiting for the disk asks for a pause, and drained() ends it', async () => {
    const spool = await spoolIn('pause');
    const intake = new DataIntake<SpoolStream>({
      open: () => spool.openStream('P1'),
      streamAfter: 1,
      maxPending: 0,
    });
    assert.equal(intake.push(chunk(500_000, 'p')), false);
    await new Promise<void>((resolve) => intake.drained(resolve));
    const result = intake.result();
    assert.ok('streamed' in result);
    assert.equal(result.streamed.pending, 0);
  });

  test('an aborted message leaves no file', async () => {
    const spool = await spoolIn('abort');
    const intake = new DataIntake<SpoolStream>({
      open: () => spool.openStream('X1'),
      streamAfter: 1,
      maxPending: 1e9,
    });
    intake.push(chunk(300_000, 'z'));
    assert.equal((await readdir(join(root, 'abort', 'tmp'))).length, 1);
    await intake.abort();
    assert.deepEqual(await readdir(join(root, 'abort', 'tmp')), []);
  });
});
