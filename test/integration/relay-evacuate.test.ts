// `mailfleet relay --config <file> --evacuate` between real processes: the spool of a relay killed
// with -9 (what a StatefulSet relay lost with its node leaves on its claim) is handed, by the
// one-shot evacuation the operator's absorb Job runs, to a running relay of the pool over the
// handoff port. Ledger per test: acknowledged, handed off, delivered, duplicates, lost = 0.
// MAILFLEET_EVACUATE_MESSAGES sets the queue size (default 1200).
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT,
  deliveredIds,
  freePort,
  ledger,
  relayConfig,
  removeDir,
  startRelay,
  startScripted,
  submitMany,
  tempDir,
  waitFor,
  writeHandoffSecret,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';

const N = Number(process.env.MAILFLEET_EVACUATE_MESSAGES) || 1200;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Rig {
  upstream: ScriptedUpstream;
  /** The crashed relay: its config file (run again with --evacuate) and spool. */
  crashed: RelayProcess;
  /** The running peer that takes the mail. */
  peer: RelayProcess;
  acknowledged: string[];
}

/** A relay that accepted `count` messages (destination deferring) and was killed with -9; a running peer. */
async function crashedRelayAndPeer(count: number, prefix: string): Promise<Rig> {
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
  const secretFile = await writeHandoffSecret(dir);
  const ports = { a: await freePort(), b: await freePort() };
  // Both list both: the evacuation skips the dead address and the peer never hands to itself.
  const peers = [`127.0.0.1:${ports.a}`, `127.0.0.1:${ports.b}`];
  const config = (which: 'a' | 'b') =>
    relayConfig(spools[which], upstream.port, {
      retry: { firstRetry: '3s', maxBackoff: '5s', maxQueueLifetime: '1h' },
      handoff: { host: '127.0.0.1', port: ports[which], secretFile, peers },
      drainTimeout: '60s',
    });
  const peer = await startRelay(config('b'));
  const crashed = await startRelay(config('a'));
  cleanups.push(
    () => peer.stop('SIGKILL'),
    () => crashed.stop('SIGKILL'),
  );
  const acknowledged = await submitMany(crashed.ports.smtp, count, prefix);
  assert.equal(acknowledged.length, count);
  // Each attempted once (recipient states and attempt counts on disk), then the crash.
  await waitFor(
    async () => (await crashed.metric('mailfleet_relay_recipients_deferred_total').catch(() => 0)) >= count,
    120_000,
    'every message deferred once',
  );
  crashed.proc.kill('SIGKILL');
  await exited(crashed.proc);
  return { upstream, crashed, peer, acknowledged };
}

function exited(proc: RelayProcess['proc']): Promise<number | null> {
  return new Promise((r) =>
    proc.exitCode !== null || proc.signalCode !== null
      ? r(proc.exitCode)
      : proc.once('exit', (code) => r(code)),
  );
}

/** Runs the one-shot evacuation of `configPath`; resolves with the process and its log lines. */
function evacuate(configPath: string) {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/mailfleet.ts'), 'relay', '--config', configPath, '--evacuate'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: string[] = [];
  for (const stream of [proc.stdout, proc.stderr])
    stream.setEncoding('utf8').on('data', (chunk: string) => logs.push(...chunk.split('\n').filter(Boolean)));
  cleanups.push(async () => void proc.kill('SIGKILL'));
  return { proc, logs, exit: exited(proc) };
}

function finishedSummary(logs: string[]): Record<string, number> | undefined {
  const line = logs.findLast((l) => l.includes('"evacuation finished"'));
  return line ? (JSON.parse(line) as Record<string, number>) : undefined;
}

async function spoolMessages(spoolDir: string): Promise<string[]> {
  return (await readdir(join(spoolDir, 'queue'))).filter((n) => n.endsWith('.msg'));
}

/** The destination recovers: every acknowledged message delivered, counted. */
async function deliverAndCount(rig: Rig, name: string, figures: Record<string, number>) {
  rig.upstream.onRcpt = () => undefined;
  const ids = new Set(rig.acknowledged);
  await waitFor(
    () => [...deliveredIds(rig.upstream.received).keys()].filter((id) => ids.has(id)).length === ids.size,
    180_000,
    'the peer to deliver all',
  );
  const delivered = deliveredIds(rig.upstream.received);
  const lost = rig.acknowledged.filter((id) => !delivered.has(id));
  const duplicates = [...delivered.values()].reduce((s, n) => s + n - 1, 0);
  ledger(name, {
    acknowledged: ids.size,
    delivered: delivered.size,
    duplicates,
    lost: lost.length,
    ...figures,
  });
  assert.deepEqual(lost, []);
  return { duplicates };
}

describe('one-shot evacuation of a crashed relay spool (--evacuate)', () => {
  test(`hands all ${N} messages of a relay killed with -9 to the running peer and exits 0 with the spool empty`, async () => {
    const rig = await crashedRelayAndPeer(N, 'e');
    const started = Date.now();
    const run = evacuate(rig.crashed.configPath);
    assert.equal(await run.exit, 0, run.logs.join('\n'));
    const evacuateMs = Date.now() - started;
    const summary = finishedSummary(run.logs);
    assert.equal(summary?.recovered, N, 'the evacuation found the whole queue');
    assert.equal(summary?.handedOff, N);
    assert.equal(summary?.left, 0);
    assert.deepEqual(await spoolMessages(rig.crashed.spoolDir), [], 'nothing left in the spool');
    assert.equal(
      await rig.peer.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' }),
      N,
    );
    // The evacuation never listens: no SMTP, no HTTP, no handoff port of its own.
    assert.ok(!run.logs.some((l) => l.includes('"relay started"')));
    const { duplicates } = await deliverAndCount(rig, 'evacuate crashed spool', {
      handedOff: summary?.handedOff ?? 0,
      evacuateMs,
    });
    assert.equal(duplicates, 0);
  });

  test('killed with -9 during its evacuation and run again: 0 lost, the peer counts the duplicates', async () => {
    const rig = await crashedRelayAndPeer(N, 'x');
    const first = evacuate(rig.crashed.configPath);
    const stored = () =>
      rig.peer.metric('mailfleet_relay_handoff_received_messages_total', { result: 'stored' });
    await waitFor(async () => (await stored()) > 0, 60_000, 'the evacuation to start');
    // Frozen mid-evacuation (batches in flight, acknowledgements not yet applied), then killed.
    first.proc.kill('SIGSTOP');
    const storedBeforeKill = await stored();
    first.proc.kill('SIGKILL');
    await first.exit;
    assert.ok(storedBeforeKill < N, `killed mid-evacuation (${storedBeforeKill} of ${N} on the peer)`);
    const leftAfterKill = (await spoolMessages(rig.crashed.spoolDir)).length;
    assert.ok(leftAfterKill > 0, 'the spool still held mail after the kill');

    const second = evacuate(rig.crashed.configPath);
    assert.equal(await second.exit, 0, second.logs.join('\n'));
    const summary = finishedSummary(second.logs);
    assert.equal(summary?.left, 0);
    assert.deepEqual(await spoolMessages(rig.crashed.spoolDir), []);
    // Whatever the first run sent but could not remove before the kill, the peer already held.
    const duplicateAnswers = await rig.peer.metric('mailfleet_relay_handoff_received_messages_total', {
      result: 'duplicate',
    });
    assert.equal(summary?.duplicates, duplicateAnswers);
    assert.equal(await stored(), N, 'the peer stored every message once');
    const { duplicates } = await deliverAndCount(rig, 'evacuate killed -9 and rerun', {
      storedBeforeKill,
      leftAfterKill,
      secondRunRecovered: summary?.recovered ?? 0,
      duplicateAnswers,
    });
    // The peer recognised every repeat by queue id: none reached the destination twice.
    assert.equal(duplicates, 0);
  });
});
