// Evacuation between real relay processes of two pools (handoff.evacuateTo, followed on hot
// reload): a relay of pool A hands its whole queue, and whatever it accepts afterwards, to the
// relay of pool B over B's internal port, signed with B's secret; B fsyncs before acknowledging
// and delivers when the destination recovers. Every test keeps a ledger: acknowledged, handed
// off, delivered, duplicates, lost = 0. MAILFLEET_EVACUATE_TO_MESSAGES sets the queue size (500).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  deliveredIds,
  freePort,
  ledger,
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  startScripted,
  submitMany,
  tempDir,
  waitFor,
  writeConfig,
  writeHandoffSecret,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { allDeferred, killMidTransfer } from '../helpers/relay/handoff.ts';

const N = Number(process.env.MAILFLEET_EVACUATE_TO_MESSAGES) || 500;
// The kill needs a queue long enough to catch the transfer in the middle.
const KILL_N = Math.max(N, 1200);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Pools {
  upstream: ScriptedUpstream;
  /** Each pool's own handoff secret file. */
  secrets: { a: string; b: string };
  ports: { a: number; b: number };
  config(which: 'a' | 'b', over?: Record<string, unknown>): Record<string, unknown>;
  /** A's config evacuating to B, signed with the secret in `secretFile`. */
  evacuating(secretFile: string): Record<string, unknown>;
}

/** One relay per pool, each with its own secret and no peer of its own; one destination for both. */
async function pools(): Promise<Pools> {
  const upstream = await startScripted();
  upstream.onRcpt = () => ({ code: 451, message: '4.4.1 destination down' });
  const dir = await tempDir('evacuate');
  const spools = { a: await tempDir('spoolA'), b: await tempDir('spoolB') };
  cleanups.push(
    () => upstream.stop(),
    () => removeDir(dir),
    () => removeDir(spools.a),
    () => removeDir(spools.b),
  );
  await mkdir(join(dir, 'a'));
  await mkdir(join(dir, 'b'));
  const secrets = {
    a: await writeHandoffSecret(join(dir, 'a'), 'pool-a-secret-0123456789abcdef'),
    b: await writeHandoffSecret(join(dir, 'b'), 'pool-b-secret-0123456789abcdef'),
  };
  const ports = { a: await freePort(), b: await freePort() };
  const config = (which: 'a' | 'b', over: Record<string, unknown> = {}) =>
    relayConfig(spools[which], upstream.port, {
      retry: { firstRetry: '2s', maxBackoff: '3s', maxQueueLifetime: '1h' },
      handoff: { host: '127.0.0.1', port: ports[which], secretFile: secrets[which] },
      drainTimeout: '60s',
      ...over,
    });
  return {
    upstream,
    secrets,
    ports,
    config,
    evacuating: (secretFile) =>
      config('a', {
        handoff: {
          host: '127.0.0.1',
          port: ports.a,
          secretFile: secrets.a,
          evacuateTo: { peers: [`127.0.0.1:${ports.b}`], secretFile },
        },
      }),
  };
}

async function start(config: Record<string, unknown>, path?: string): Promise<RelayProcess> {
  const relay = await startRelay(config, path);
  cleanups.push(() => relay.stop('SIGKILL'));
  return relay;
}

async function queued(relay: RelayProcess): Promise<number> {
  const body = (await (await relay.http('/api/messages?limit=10000')).json()) as { messages: unknown[] };
  return body.messages.length;
}

async function outcomes(relay: RelayProcess, outcome: string): Promise<Set<string>> {
  return new Set(
    (await readAccounting(relay.spoolDir)).filter((l) => l.outcome === outcome).map((l) => String(l.queueId)),
  );
}

/** Delivered once each, none lost: the ledger every test ends with. */
async function settle(p: Pools, acknowledged: string[]) {
  await waitFor(
    () => deliveredIds(p.upstream.received).size >= acknowledged.length,
    120_000,
    'all delivered',
  );
  // Let any extra copy surface before counting.
  await new Promise((r) => setTimeout(r, 4000));
  const delivered = deliveredIds(p.upstream.received);
  const lost = acknowledged.filter((id) => !delivered.has(id));
  const duplicates = [...delivered.values()].reduce((s, n) => s + n - 1, 0);
  return { delivered: delivered.size, duplicates, lost: lost.length };
}

describe('relay evacuation to another pool (handoff.evacuateTo)', () => {
  test(`a relay told to evacuate on reload hands ${N} deferred messages, and mail it accepts afterwards, to the other pool, which delivers each once`, async () => {
    const p = await pools();
    const b = await start(p.config('b'));
    const a = await start(p.config('a'));
    const acknowledged = await submitMany(a.ports.smtp, N, 'e');
    assert.equal(acknowledged.length, N);
    await allDeferred(a, N);

    const started = Date.now();
    await writeConfig(a.configPath, p.evacuating(p.secrets.b));
    await waitFor(async () => (await queued(a)) === 0, 120_000, 'A to hand its queue to B');
    const evacuateMs = Date.now() - started;
    assert.equal(await b.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }), N);
    assert.equal(await queued(b), N, 'B holds all of them');

    // The destination recovers; A, still evacuating, delivers nothing itself: what it accepts now
    // goes to B as well.
    p.upstream.onRcpt = () => undefined;
    const late = await submitMany(a.ports.smtp, 50, 'late');
    assert.equal(late.length, 50);
    const result = await settle(p, [...acknowledged, ...late]);
    const handedOff = await outcomes(a, 'handedoff');
    ledger('evacuate A -> B', {
      acknowledged: acknowledged.length + late.length,
      handedOff: handedOff.size,
      ...result,
      evacuateMs,
    });
    assert.equal(handedOff.size, N + 50, 'every message accounted as handed off on A');
    assert.equal((await outcomes(a, 'delivered')).size, 0, 'A delivered nothing itself');
    assert.equal((await outcomes(b, 'delivered')).size, N + 50, 'B delivered every one');
    assert.equal(result.lost, 0);
    assert.equal(result.duplicates, 0);
  });

  test('a target that refuses the signature (a wrong secret) takes nothing; the relay keeps delivering itself', async () => {
    const p = await pools();
    const b = await start(p.config('b'));
    // A signs with its own pool's secret, which B does not hold.
    const a = await start(p.evacuating(p.secrets.a));
    const acknowledged = await submitMany(a.ports.smtp, 50, 'w');
    assert.equal(acknowledged.length, 50);
    await allDeferred(a, 50);
    await waitFor(
      () => a.logs.some((l) => l.includes('no target relay takes mail')),
      30_000,
      'A to say why it delivers itself',
    );
    assert.ok(
      b.logs.some((l) => l.includes('handoff request refused') && l.includes('bad signature')),
      'B refused the signature',
    );
    assert.equal(await queued(a), 50, 'A still holds every message');
    p.upstream.onRcpt = () => undefined;
    const result = await settle(p, acknowledged);
    ledger('evacuate with a wrong secret', { acknowledged: acknowledged.length, ...result });
    assert.equal(result.lost, 0);
    assert.equal(result.duplicates, 0);
    assert.equal((await outcomes(a, 'delivered')).size, 50, 'A delivered them itself');
    assert.equal(await b.metric('mailfleet_relay_handoff_received_messages_total'), 0);
  });

  test('a relay killed with -9 while evacuating loses nothing: restarted, it evacuates the rest; the target counts the duplicates', async () => {
    const p = await pools();
    const b = await start(p.config('b'));
    const a = await start(p.config('a'));
    const acknowledged = await submitMany(a.ports.smtp, KILL_N, 'k');
    assert.equal(acknowledged.length, KILL_N);
    await allDeferred(a, KILL_N);

    await writeConfig(a.configPath, p.evacuating(p.secrets.b));
    const storedBeforeKill = await killMidTransfer(a, b);
    assert.ok(
      storedBeforeKill < KILL_N,
      `killed mid-evacuation (${storedBeforeKill} of ${KILL_N} stored on B)`,
    );

    // Restarted with the evacuating config, it moves what it still holds at once.
    const again = await start(p.evacuating(p.secrets.b), a.configPath);
    await waitFor(async () => (await queued(again)) === 0, 120_000, 'the restarted A to hand off the rest');
    p.upstream.onRcpt = () => undefined;
    const result = await settle(p, acknowledged);
    const duplicatesOnB = await b.metric('mailfleet_relay_handoff_received_messages_total', {
      result: 'duplicate',
    });
    ledger('evacuate A -> B, A killed -9', {
      acknowledged: acknowledged.length,
      storedBeforeKill,
      duplicatesOnB,
      ...result,
    });
    assert.equal(result.lost, 0);
    // A copy sent twice is recognised by id on B: never delivered twice.
    assert.equal(result.duplicates, 0);
  });
});
