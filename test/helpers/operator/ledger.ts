// The ledger of queued mail through pod lifecycles (pool-lifecycle, chart-upgrade-mail): messages
// queued for a destination that defers, what each departing relay did with them, and the count
// once the destination recovers: acknowledged, delivered, duplicates, lost.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  deliveredIds,
  readAccounting,
  smtpTransaction,
  submitMany,
  waitFor,
  type ScriptedUpstream,
} from '../relay/peers.ts';
import type { RunningPod, Termination } from './kubelet.ts';

/**
 * Waits until every relay answers 250 to MAIL FROM of each sender (a transaction without a
 * recipient, nothing queued): a relay refuses a sending domain (550 5.7.1) until its config lists it.
 */
export function sendersAccepted(relays: RunningPod[], senders: string[], timeoutMs = 120_000): Promise<void> {
  return waitFor(
    async () => {
      for (const r of relays)
        for (const sender of senders) {
          const replies = await smtpTransaction(r.ports.smtp ?? 25, `<${sender}>`, [], undefined, r.ip).catch(
            () => [],
          );
          if (!replies[2]?.startsWith('250')) return false;
        }
      return true;
    },
    timeoutMs,
    `every relay accepts MAIL FROM ${senders.join(', ')}`,
  );
}

/**
 * Submits `count` messages spread over the relays; every one is acknowledged, then deferred by the
 * destination. A relay may be Ready before the SendingDomain reaches its config (the domain is
 * applied after the pool, the ConfigMap follows and the relay reloads): it refuses the sender
 * until then, so each relay is first asked for MAIL FROM until it accepts it.
 */
export async function queueDeferred(
  upstream: ScriptedUpstream,
  relays: RunningPod[],
  count: number,
  prefix: string,
): Promise<string[]> {
  upstream.onRcpt = () => ({ code: 451, message: '4.4.1 destination down' });
  await explained(relays, sendersAccepted(relays, ['a@example.com']));
  const share = Math.ceil(count / relays.length);
  const failures: string[] = [];
  const acknowledged = (
    await Promise.all(
      relays.map((r, i) =>
        submitMany(
          r.ports.smtp ?? 25,
          Math.min(share, count - i * share),
          `${prefix}${i}`,
          (j) => `r${j}@dest.example`,
          3,
          r.ip,
          failures,
        ),
      ),
    )
  ).flat();
  assert.equal(failures.length, 0, `refused submissions (${failures.length}), first: ${failures[0]}`);
  // Every message attempted once (and deferred) before the lifecycle event.
  await explained(
    relays,
    waitFor(
      async () => {
        let deferred = 0;
        for (const r of relays)
          deferred += new Set(
            (await readAccounting(r.spoolDir)).filter((l) => l.outcome === 'deferred').map((l) => l.queueId),
          ).size;
        return deferred >= acknowledged.length;
      },
      180_000,
      'every message deferred once',
    ),
  );
  return acknowledged;
}

/** On failure, what each relay was doing: its last log lines and the first queued messages. */
export async function explained<T>(relays: RunningPod[], waiting: Promise<T>): Promise<T> {
  try {
    return await waiting;
  } catch (err) {
    for (const r of relays) {
      const token = await readFile(path.join(r.configDir, 'admin-tokens/read'), 'utf8').catch(() => '');
      const queued = await fetch(`http://${r.ip}:${r.ports.http}/api/messages?limit=2`, {
        headers: { authorization: `Bearer ${token.trim()}` },
      })
        .then((res) => res.text())
        .catch((e: Error) => e.message);
      process.stdout.write(
        `# ${r.pod.metadata.name} ${r.ip} spool ${r.spoolDir}:\n# ${r.logs.slice(-8).join('\n# ')}\n# queue: ${queued.replace(/\s+/g, ' ')}\n`,
      );
    }
    throw err;
  }
}

/** How many messages a relay holds (its queue API, with the read token of its config volume). */
export async function queuedOn(r: RunningPod): Promise<number> {
  const token = await readFile(path.join(r.configDir, 'admin-tokens/read'), 'utf8');
  const res = await fetch(`http://${r.ip}:${r.ports.http}/api/queue`, {
    headers: { authorization: `Bearer ${token.trim()}` },
  });
  return ((await res.json()) as { messages: number }).messages;
}

/** Each departed relay drained before SIGKILL and left nothing behind; returns how many it handed off. */
export function departedCleanly(gone: Termination[]): { handedOff: number; maxDrainMs: number } {
  for (const t of gone) {
    assert.equal(t.signal, null, `${t.pod} drained and exited before SIGKILL`);
    assert.ok(t.drain, `${t.pod} logged its drain summary`);
    assert.equal(t.drain.remaining, 0, `${t.pod} left no message in its emptyDir`);
  }
  return {
    handedOff: gone.reduce((s, t) => s + (t.drain?.handedOff ?? 0), 0),
    maxDrainMs: Math.max(...gone.map((t) => t.drainMs)),
  };
}

export async function recoverAndCount(
  upstream: ScriptedUpstream,
  name: string,
  acknowledged: string[],
  extra: Record<string, number>,
): Promise<void> {
  upstream.onRcpt = () => undefined;
  const ids = new Set(acknowledged);
  const delivered = () => [...deliveredIds(upstream.received).keys()].filter((id) => ids.has(id)).length;
  await waitFor(() => delivered() === ids.size, 300_000, `all ${ids.size} acknowledged messages delivered`);
  // Any extra copy has had time to arrive (retry every 3-5 s).
  await new Promise((r) => setTimeout(r, 8000));
  const counts = deliveredIds(upstream.received);
  const lost = acknowledged.filter((id) => !counts.has(id));
  const duplicates = acknowledged.reduce((s, id) => s + Math.max(0, (counts.get(id) ?? 0) - 1), 0);
  process.stdout.write(
    `# ledger ${name}: ${Object.entries({
      sent: acknowledged.length,
      acknowledged: acknowledged.length,
      delivered: delivered(),
      duplicates,
      lost: lost.length,
      ...extra,
    })
      .map(([key, v]) => `${key}=${v}`)
      .join(' ')}\n`,
  );
  assert.deepEqual(lost, []);
  // A SIGTERM handoff removes a message here only after the peer acknowledged it: no second copy.
  assert.equal(duplicates, 0);
}
