// The events outbox handed off: pure decisions as tables, then real parts (outboxes on disk, a real
// HandoffServer storing into its own outbox over signed loopback HTTP).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEvent } from '../events/codec.ts';
import { eventId, type MailEvent } from '../events/event.ts';
import { Outbox } from '../events/outbox.ts';
import { adoptOrphanOutboxes } from '../workers/adopt.ts';
import { decodeEventsBatch, parseEventsReply } from './codec.ts';
import { evacuateOutbox } from './evacuate.ts';
import {
  EVENTS_HANDOFF_MIN_MS,
  evacuationExitCode,
  eventsDeadline,
  handOffEvents,
  outboxShardIndexes,
} from './events.ts';
import { HandoffServer } from './server.ts';

const SECRET = Buffer.from('events-handoff-secret-0123456789');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'events-handoff-'));
  dirs.push(dir);
  return dir;
};

const event = (n: number): MailEvent => ({
  id: eventId('delivered', 'Q', n),
  type: 'delivered',
  time: new Date(1_700_000_000_000 + n).toISOString(),
  sendingDomain: 'example.com',
  recipient: `r${n}@example.net`,
});
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => event(from + i));

async function outboxIn(dir: string): Promise<Outbox> {
  const outbox = new Outbox({ dir, maxBytes: 1024 * 1024, dropped: () => undefined });
  await outbox.open();
  return outbox;
}

/** Every event an outbox holds unsent, in order (read without acknowledging). */
async function unsentIds(outbox: Outbox): Promise<string[]> {
  return (await outbox.read(1_000_000)).events.map((e) => e.id);
}

/** A peer's handoff port storing events into its own outbox (or refusing them: `outbox` false). */
async function peer(options: { outbox?: boolean; draining?: boolean; failAfter?: number } = {}) {
  const outbox = await outboxIn(await tempDir());
  const counted: Record<string, number> = {};
  let requests = 0;
  const server = new HandoffServer({
    instance: `peer-${Math.random()}`,
    secret: () => SECRET,
    draining: () => options.draining ?? false,
    hasSpace: () => true,
    holds: () => false,
    store: async () => undefined,
    counted: () => undefined,
    storeEvents: () =>
      options.outbox === false
        ? undefined
        : async (events) => {
            if (options.failAfter !== undefined && requests++ >= options.failAfter)
              throw new Error('disk full');
            await outbox.store(events);
          },
    eventsCounted: (result, n) => void (counted[result] = (counted[result] ?? 0) + n),
    log: () => undefined,
    now: Date.now,
  });
  const port = await server.listen('127.0.0.1', 0);
  return { outbox, counted, address: `127.0.0.1:${port}`, close: () => server.close() };
}

const deps = (peers: string[]) => ({
  instance: 'sender',
  secret: SECRET,
  target: { port: 0, peers, dnsServers: [] },
  log: () => undefined,
  now: Date.now,
});

describe('events handoff decisions', () => {
  test('eventsDeadline: the drain deadline, or at least EVENTS_HANDOFF_MIN_MS from now', () => {
    const cases = [
      { drain: 100_000, now: 50_000, want: 100_000 },
      { drain: 100_000, now: 95_000, want: 95_000 + EVENTS_HANDOFF_MIN_MS },
      { drain: 100_000, now: 200_000, want: 200_000 + EVENTS_HANDOFF_MIN_MS },
    ];
    for (const c of cases) assert.equal(eventsDeadline(c.drain, c.now), c.want, JSON.stringify(c));
  });

  test('evacuationExitCode: mail left or events some peer could take hold the Job', () => {
    const cases = [
      { messages: 0, events: 0, eventsUnwanted: false, want: 0 },
      { messages: 3, events: 0, eventsUnwanted: false, want: 1 },
      { messages: 0, events: 5, eventsUnwanted: false, want: 1 },
      { messages: 0, events: 5, eventsUnwanted: true, want: 0 },
      { messages: 2, events: 5, eventsUnwanted: true, want: 1 },
    ];
    for (const { want, ...left } of cases) assert.equal(evacuationExitCode(left), want, JSON.stringify(left));
  });

  test('outboxShardIndexes: only `<base>-shard-<k>`, k >= 1, sorted', () => {
    const cases = [
      { entries: ['events', 'events-shard-2', 'events-shard-1'], want: [1, 2] },
      { entries: ['events-shard-0', 'events-shard-01', 'events-shard-x', 'shard-3'], want: [] },
      { entries: ['events-shard-10', 'other-shard-1', 'events-shard-3'], want: [3, 10] },
    ];
    for (const c of cases) assert.deepEqual(outboxShardIndexes(c.entries, 'events'), c.want);
  });

  test('decodeEventsBatch: outbox lines in, damaged or truncated batches refused whole', () => {
    const good = Buffer.concat(range(0, 3).map(encodeEvent));
    const flipped = Buffer.from(good);
    flipped[20] = flipped[20]! ^ 1;
    const cases: { name: string; body: Buffer; want: number | string }[] = [
      { name: 'three events', body: good, want: 3 },
      { name: 'a flipped bit', body: flipped, want: '1 damaged event lines' },
      {
        name: 'no newline at the end',
        body: good.subarray(0, good.length - 1),
        want: 'truncated event line',
      },
      { name: 'empty', body: Buffer.alloc(0), want: 'no events' },
    ];
    for (const c of cases) {
      const d = decodeEventsBatch(c.body);
      assert.deepEqual(d.ok ? d.events.length : d.reason, c.want, c.name);
    }
  });

  test('parseEventsReply: only a reply naming every event sent counts', () => {
    const cases = [
      { text: '{"instance":"b","stored":3}', want: true },
      { text: '{"instance":"b","stored":2}', want: false },
      { text: '{"stored":3}', want: false },
      { text: 'not json', want: false },
    ];
    for (const c of cases) assert.equal(parseEventsReply(c.text, 3) !== undefined, c.want, c.text);
  });
});

describe('events handoff with real outboxes and a real handoff server', () => {
  test('every unsent event goes to the peer in order; acknowledged ones stay behind, never sent', async () => {
    const source = await outboxIn(await tempDir());
    await source.append(range(0, 2500));
    await source.commit((await source.read(100)).end); // the receiver had taken the first 100
    const p = await peer();
    const summary = await handOffEvents(deps([p.address]), source, Date.now() + 10_000);
    assert.deepEqual(summary, { peers: 1, sent: 2400, withoutOutbox: 0, left: 0 });
    assert.deepEqual(
      await unsentIds(p.outbox),
      range(100, 2500).map((e) => e.id),
    );
    assert.equal(p.counted.stored, 2400);
    await p.close();
  });

  test('a peer whose disk refuses a batch acknowledges nothing of it: the next peer gets it', async () => {
    const source = await outboxIn(await tempDir());
    await source.append(range(0, 1500));
    const failing = await peer({ failAfter: 1 });
    const good = await peer();
    const summary = await handOffEvents(deps([failing.address, good.address]), source, Date.now() + 10_000);
    assert.equal(summary.left, 0);
    assert.equal(summary.sent, 1500);
    const stored = [...(await unsentIds(failing.outbox)), ...(await unsentIds(good.outbox))];
    assert.deepEqual(
      stored,
      range(0, 1500).map((e) => e.id),
      'each event once, in order',
    );
    assert.equal(failing.counted.refused, 500);
    await failing.close();
    await good.close();
  });

  test('peers that write no events, draining peers and no peer at all: everything stays here', async () => {
    const source = await outboxIn(await tempDir());
    await source.append(range(0, 10));
    const without = await peer({ outbox: false });
    const draining = await peer({ draining: true });
    const summary = await handOffEvents(
      deps([without.address, draining.address, '127.0.0.1:9']),
      source,
      Date.now() + 5000,
    );
    assert.deepEqual(summary, { peers: 1, sent: 0, withoutOutbox: 1, left: 10 });
    assert.equal(source.unsent, 10);
    await without.close();
    await draining.close();
  });

  test('evacuateOutbox: a dead relay outbox on a claim goes to the pool; a rerun after a kill only repeats', async () => {
    const dir = await tempDir();
    const left = await outboxIn(dir);
    await left.append(range(0, 30));
    await left.close();
    const p = await peer();
    // A kill after the peer stored the events and before the acknowledgement was saved here:
    // the same events are on both sides (copied by hand into the peer, as the first run would have).
    await p.outbox.store(range(0, 30));
    const result = await evacuateOutbox({ ...deps([p.address]), dir }, Date.now() + 10_000);
    assert.deepEqual(result, { left: 0, sent: 30, unwanted: false });
    const ids = await unsentIds(p.outbox);
    assert.equal(ids.length, 60);
    assert.equal(new Set(ids).size, 30, 'the repeat carries the same ids: the receiver drops them');
    assert.equal((await outboxIn(dir)).unsent, 0, 'nothing left on the claim');
    await p.close();
  });

  test('evacuateOutbox: a pool whose relays write no events leaves them, unwanted (the Job does not loop)', async () => {
    const dir = await tempDir();
    const left = await outboxIn(dir);
    await left.append(range(0, 4));
    const p = await peer({ outbox: false });
    const result = await evacuateOutbox({ ...deps([p.address]), dir }, Date.now() + 10_000);
    assert.deepEqual(result, { left: 4, sent: 0, unwanted: true });
    await p.close();
  });

  test('adoptOrphanOutboxes: shards at or above the worker count are moved into worker 0 and removed', async () => {
    const parent = await tempDir();
    const base = join(parent, 'events');
    const own = await outboxIn(base);
    for (const [k, from] of [
      [1, 0],
      [2, 100],
      [3, 200],
    ] as const) {
      const shard = await outboxIn(`${base}-shard-${k}`);
      await shard.append(range(from, from + 10));
      await shard.commit((await shard.read(2)).end); // two already acknowledged by the receiver
      await shard.close();
    }
    const adopted = await adoptOrphanOutboxes({
      eventsDir: base,
      count: 2,
      store: (events) => own.store(events),
      log: () => undefined,
    });
    assert.equal(adopted, 16);
    assert.deepEqual(
      await unsentIds(own),
      [...range(102, 110), ...range(202, 210)].map((e) => e.id),
    );
    assert.deepEqual(
      (await readdir(parent)).sort(),
      ['events', 'events-shard-1'],
      'shard 1 is still a worker',
    );
  });
});
