// evacuateSpool with real parts: a spool on disk, the receiving side a real HandoffServer storing
// into a second spool, over loopback HTTP signed with the pool secret.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../spool/store.ts';
import { nodeSpoolFs } from '../spool/fs-ops.ts';
import { HandoffServer } from './server.ts';
import { evacuateSpool, type EvacuationSummary } from './evacuate.ts';

const SECRET = Buffer.from('evacuate-test-secret-0123456789');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function spoolIn(dir?: string): Promise<Spool> {
  if (!dir) {
    dir = await mkdtemp(join(tmpdir(), 'evacuate-'));
    dirs.push(dir);
  }
  const spool = new Spool({ dir, fs: nodeSpoolFs, events: { quarantined: () => undefined } });
  await spool.open();
  return spool;
}

/** A spool left by a relay that stopped: `fill` writes into it, then a fresh Spool opens the directory. */
async function leftBehind(fill: (spool: Spool) => Promise<void>): Promise<Spool> {
  const relay = await spoolIn();
  await fill(relay);
  await relay.close();
  return spoolIn(relay.dir);
}

/** What a relay starting on `spool`'s directory would find. */
async function remaining(spool: Spool): Promise<string[]> {
  await spool.close();
  const again = await spoolIn(spool.dir);
  const ids = (await again.recover()).map((r) => r.envelope.id).sort();
  await again.close();
  return ids;
}

/** A receiving relay's handoff port storing into its own spool; ids it stored, answers it gave. */
async function peer() {
  const spool = await spoolIn();
  const held = new Set<string>();
  const answers: string[] = [];
  const server = new HandoffServer({
    instance: 'peer',
    secret: () => SECRET,
    draining: () => false,
    hasSpace: () => true,
    holds: (id) => held.has(id),
    store: async (envelope, body) => {
      const { bodyLength: _l, bodyCrc32: _c, ...rest } = envelope;
      await spool.write(rest, body);
      held.add(envelope.id);
    },
    counted: (result) => answers.push(result),
    storeEvents: () => undefined,
    eventsCounted: () => undefined,
    log: () => undefined,
    now: Date.now,
  });
  const port = await server.listen('127.0.0.1', 0);
  return { spool, held, answers, port, close: () => server.close() };
}

const envelope = (id: string, recipients = ['b@example.org']) => ({
  id,
  from: 'a@example.com',
  recipients,
  receivedAt: 1_700_000_000_000,
  client: { address: '127.0.0.1', helo: 'h' },
});

async function evacuate(spool: Spool, peers: string[], deadline = Date.now() + 10_000) {
  return evacuateSpool(
    {
      spool,
      secret: SECRET,
      target: { port: 0, peers, dnsServers: [] },
      log: () => undefined,
      now: Date.now,
    },
    deadline,
  );
}

test('every queued message goes to the peer and leaves the spool; finished ones are removed; nothing else', async () => {
  const source = await leftBehind(async (relay) => {
    for (const id of ['m1', 'm2', 'm3']) await relay.write(envelope(id), Buffer.from(`body ${id}\r\n`));
    await relay.write(envelope('done', ['x@example.org']), Buffer.from('done\r\n'));
    // Delivered before the crash: final state on disk, the message not removed yet.
    await relay.recordStates('done', [{ index: 0, status: 'delivered', attempts: 1 }], true);
  });
  const p = await peer();
  const summary = await evacuate(source, [`127.0.0.1:${p.port}`]);
  const expected: EvacuationSummary = {
    recovered: 4,
    finished: 1,
    handedOff: 3,
    duplicates: 0,
    quarantined: 0,
    left: 0,
  };
  assert.deepEqual(summary, expected);
  assert.deepEqual([...p.held].sort(), ['m1', 'm2', 'm3']);
  assert.deepEqual(await remaining(source), [], 'the evacuated spool holds nothing');
  await p.close();
  assert.deepEqual(await remaining(p.spool), ['m1', 'm2', 'm3'], 'the peer holds them in its own spool');
});

test('with no peer answering, nothing is removed and the deadline ends the run with everything left', async () => {
  const source = await leftBehind(async (relay) => {
    for (const id of ['a', 'b']) await relay.write(envelope(id), Buffer.from(`body ${id}\r\n`));
  });
  const summary = await evacuate(source, ['127.0.0.1:9'], Date.now() + 1500);
  assert.equal(summary.handedOff, 0);
  assert.equal(summary.left, 2);
  assert.deepEqual(await remaining(source), ['a', 'b']);
});

test('a message the peer already holds (a rerun after a kill) is answered duplicate and removed here', async () => {
  const source = await leftBehind(async (relay) => {
    await relay.write(envelope('twice'), Buffer.from('twice\r\n'));
  });
  const p = await peer();
  p.held.add('twice');
  const summary = await evacuate(source, [`127.0.0.1:${p.port}`]);
  assert.equal(summary.handedOff, 1);
  assert.equal(summary.duplicates, 1);
  assert.equal(summary.left, 0);
  assert.deepEqual(p.answers, ['duplicate']);
  assert.deepEqual(await remaining(source), []);
  await p.spool.close();
  await p.close();
});
