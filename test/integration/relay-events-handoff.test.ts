// The events outbox goes with the queue, through real relay processes, a real smtp-sink and a real
// webhook receiver that is down (503) while it matters: a relay SIGTERMed with unsent events hands
// them to its peer before it exits and its spool is deleted (an emptyDir going with its pod); a
// relay killed with -9 in the middle of that handoff has its spool absorbed by `relay --evacuate`,
// outbox included; a relay restarted with fewer worker processes takes over the removed worker's
// outbox. Each test keeps a ledger: events made, delivered to the receiver, duplicates (the same
// id again), lost = 0.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  ROOT,
  freePort,
  ledger,
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  startSink,
  submitMany,
  tempDir,
  waitFor,
  writeHandoffSecret,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import { exited } from '../helpers/relay/handoff.ts';
import { startEventsEndpoint, type EventsReceiver } from '../helpers/events-receiver.ts';
import { cleanupsAfterFile } from '../helpers/cleanups.ts';

const cleanups = cleanupsAfterFile();

async function start(config: Record<string, unknown>, path?: string): Promise<RelayProcess> {
  const relay = await startRelay(config, path);
  cleanups.push(() => relay.stop('SIGKILL'));
  return relay;
}

/** Two relays of one pool (A, B), each with its own spool and outbox, one receiver answering 503. */
async function pool() {
  const sink = await startSink();
  const dir = await tempDir('events-handoff');
  const { receiver, events } = await startEventsEndpoint(dir);
  receiver.mode = 503;
  const spools = { a: await tempDir('spoolA'), b: await tempDir('spoolB') };
  cleanups.push(
    () => sink.stop(),
    () => receiver.stop(),
    () => removeDir(dir),
    () => removeDir(spools.a),
    () => removeDir(spools.b),
  );
  const handoffSecret = await writeHandoffSecret(dir);
  const ports = { a: await freePort(), b: await freePort() };
  const peers = [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`];
  const config = (which: 'a' | 'b', over: Record<string, unknown> = {}) =>
    relayConfig(spools[which], sink.port, {
      accounting: { file: join(spools[which], 'accounting.jsonl') },
      handoff: { host: '127.0.0.1', port: ports[which], secretFile: handoffSecret, peers },
      events,
      drainTimeout: '20s',
      ...over,
    });
  return { sink, receiver, spools, config };
}

function withoutPeers(config: Record<string, unknown>): Record<string, unknown> {
  const { handoff: _handoff, ...rest } = config;
  return rest;
}

/** Delivers `count` messages through `relay` while the receiver is down: `count` events wait in its outbox. */
async function eventsWaiting(relay: RelayProcess, count: number, prefix: string): Promise<void> {
  const acknowledged = await submitMany(
    relay.ports.smtp,
    count,
    prefix,
    (i) => `${prefix}${i}@example.org`,
    4,
  );
  assert.equal(acknowledged.length, count);
  await waitFor(
    async () => (await relay.metric('mailfleet_relay_events_outbox_events')) === count,
    120_000,
    `${count} events in the outbox`,
  );
}

/** Ids of the delivered events a relay made (its accounting log, read before its spool goes). */
async function deliveredRecipients(spool: string): Promise<Set<string>> {
  return new Set(
    (await readAccounting(spool)).filter((r) => r.outcome === 'delivered').map((r) => String(r.recipient)),
  );
}

/** Once the receiver answers again: the ledger of what it got against what was made. */
async function settle(receiver: EventsReceiver, made: Set<string>, name: string, relays: RelayProcess[]) {
  receiver.mode = 200;
  for (const relay of relays)
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_events_outbox_events')) === 0,
      60_000,
      'the outboxes to empty',
    );
  const got = () =>
    new Set(receiver.events.filter((e) => e.type === 'delivered').map((e) => e.recipient ?? ''));
  await waitFor(() => [...made].every((r) => got().has(r)), 60_000, `every event of ${name}`);
  const ids = new Set(receiver.events.map((e) => e.id));
  // Every distinct event has one id: a repeat is the same event again, which the receiver drops.
  const idsPerEvent = new Map<string, Set<string>>();
  for (const e of receiver.events)
    idsPerEvent.set(
      `${e.type} ${e.recipient}`,
      (idsPerEvent.get(`${e.type} ${e.recipient}`) ?? new Set()).add(e.id),
    );
  for (const [key, set] of idsPerEvent) assert.equal(set.size, 1, `${key} sent under ${set.size} ids`);
  const figures = {
    made: made.size,
    delivered: [...made].filter((r) => got().has(r)).length,
    duplicates: receiver.events.length - ids.size,
    lost: [...made].filter((r) => !got().has(r)).length,
  };
  ledger(name, figures);
  assert.equal(figures.lost, 0);
  assert.equal(receiver.badSignatures, 0);
  return figures;
}

describe('events outbox handoff', () => {
  test('a relay SIGTERMed with the receiver down hands its unsent events to its peer; its spool deleted after exit loses none', async () => {
    const { receiver, spools, config } = await pool();
    const a = await start(config('a'));
    const b = await start(config('b'));
    await eventsWaiting(a, 300, 'a');
    await eventsWaiting(b, 20, 'b');
    const made = new Set([
      ...(await deliveredRecipients(spools.a)),
      ...(await deliveredRecipients(spools.b)),
    ]);
    assert.equal(made.size, 320);
    await a.stop('SIGTERM');
    // The pod is gone and its emptyDir with it.
    await removeDir(spools.a);
    assert.equal(await b.metric('mailfleet_relay_handoff_received_events_total', { result: 'stored' }), 300);
    assert.equal(await b.metric('mailfleet_relay_events_outbox_events'), 320);
    assert.ok(a.logs.some((l) => l.includes('"events handoff"') && l.includes('"left":0')));
    const figures = await settle(receiver, made, 'sigterm-then-spool-deleted', [b]);
    assert.equal(figures.duplicates, 0, 'nothing crashed: each event once');
  });

  test('kill -9 during the outbox handoff, then relay --evacuate on the spool: every event arrives, repeats only under the same id', async () => {
    const { receiver, spools, config } = await pool();
    const a = await start(config('a'));
    const b = await start(config('b'));
    await eventsWaiting(a, 2500, 'k');
    const made = await deliveredRecipients(spools.a);
    a.proc.kill('SIGTERM');
    await waitFor(
      async () => (await b.metric('mailfleet_relay_handoff_received_events_total', { result: 'stored' })) > 0,
      60_000,
      'the events handoff to start',
    );
    a.proc.kill('SIGSTOP');
    const storedAtKill = await b.metric('mailfleet_relay_handoff_received_events_total', {
      result: 'stored',
    });
    a.proc.kill('SIGKILL');
    await exited(a);
    // The absorb Job: the dead relay's spool (a claim) handed to the pool, outbox included.
    const job = spawn(
      process.execPath,
      [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', a.configPath, '--evacuate'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const logs: string[] = [];
    job.stdout.setEncoding('utf8').on('data', (c: string) => logs.push(c));
    cleanups.push(async () => void job.kill('SIGKILL'));
    const code = await new Promise<number | null>((r) => job.once('exit', (c) => r(c)));
    assert.equal(code, 0, logs.join(''));
    assert.ok(logs.join('').includes('"events evacuation finished"'));
    const stored = await b.metric('mailfleet_relay_handoff_received_events_total', { result: 'stored' });
    const figures = await settle(receiver, made, 'kill9-mid-events-handoff', [b]);
    assert.equal(stored - made.size, figures.duplicates, 'the only repeats are what the peer stored twice');
    process.stdout.write(`# events stored by the peer before the kill: ${storedAtKill}\n`);
  });

  test('a relay restarted with fewer worker processes sends the removed worker outbox', async () => {
    const { receiver, spools, config } = await pool();
    // No peers: the drain keeps each worker's outbox on the spool, as a StatefulSet's claim would.
    const two = await start(withoutPeers(config('a', { workers: 2, drainTimeout: '2s' })));
    await eventsWaiting(two, 200, 'w');
    const made = await deliveredRecipients(spools.a);
    await two.stop('SIGTERM');
    const one = await start(withoutPeers(config('a', { workers: 1 })), two.configPath);
    assert.ok(one.logs.some((l) => l.includes('"events outbox shard adopted"')));
    assert.equal(await one.metric('mailfleet_relay_events_outbox_events'), made.size);
    await settle(receiver, made, 'workers-2-to-1', [one]);
  });
});
