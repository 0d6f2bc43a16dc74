// Pool deletion with a successor (RelayPool spec.deletionHandOffTo) across real pod lifecycles: the
// operator on the control plane, its pools' pods run as relay processes by the test kubelet
// (test/helpers/operator/kubelet.ts), mail queued for a destination that defers. Deleting the
// pool moves every queued message to the named pool's relays, the deleted pool goes while the
// destination still defers, and once it recovers the named pool delivers all of it. Ledger:
// acknowledged, moved, delivered, duplicates, lost = 0. Second case: the named pool does not exist
// at the deletion (HandOffTargetMissing), is created, and the handoff then completes.
// MAILFLEET_LIFECYCLE_MESSAGES / 3 messages in the first case (default 500).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readyPods, type Kubelet } from '../helpers/operator/kubelet.ts';
import { departedCleanly, queueDeferred, queuedOn, recoverAndCount } from '../helpers/operator/ledger.ts';
import { NS, lifecycleRigPerFile } from '../helpers/operator/lifecycle.ts';
import { deliveredIds, waitFor, type ScriptedUpstream } from '../helpers/relay/peers.ts';

const N = Math.ceil((Number(process.env.MAILFLEET_LIFECYCLE_MESSAGES) || 1500) / 3);
let upstream: ScriptedUpstream;
let kubelet: Kubelet | undefined;
// The scraper reads the relays' queues (the deletion waits for them to be empty).
const rig = lifecycleRigPerFile('handoff-to', ['--scrape-interval', '1'], (r) => ({ upstream, kubelet } = r));
const { k, createPool } = rig;

type Deleting = { reason: string; message: string; queuedJobs?: number };

/**
 * Polls the pool until it is gone (or `until` says stop), noting each Deleting reason it reported
 * and the queuedJobs it showed with it.
 */
async function followDeletion(
  pool: string,
  timeoutMs: number,
  until: (seen: Deleting[]) => boolean = () => false,
): Promise<{ seen: Deleting[]; gone: boolean }> {
  const seen: Deleting[] = [];
  let gone = false;
  await waitFor(
    async () => {
      const r = await rig.cp.kubectl(['-n', NS, 'get', 'rp', pool, '-o', 'json'], { allowFail: true });
      if (r.code !== 0) return (gone = /NotFound/.test(r.stderr));
      const rp = JSON.parse(r.stdout) as {
        status?: { queuedJobs?: number; conditions?: { type: string; reason: string; message: string }[] };
      };
      const c = rp.status?.conditions?.find((x) => x.type === 'Deleting');
      const last = seen.at(-1);
      if (c && (c.reason !== last?.reason || rp.status?.queuedJobs !== last.queuedJobs))
        seen.push({ reason: c.reason, message: c.message, queuedJobs: rp.status?.queuedJobs });
      return until(seen);
    },
    timeoutMs,
    `${pool} deleted`,
  );
  return { seen, gone };
}

const delivered = (ids: string[]) => {
  const counts = deliveredIds(upstream.received);
  return ids.filter((id) => counts.has(id)).length;
};

test(`kubectl delete rp with deletionHandOffTo: ${N} deferred messages move to the named pool, the pool goes while the destination still defers, the named pool delivers them all`, async () => {
  assert.ok(kubelet);
  await createPool('successor', 1);
  const [successor] = await readyPods(kubelet, 'successor', 1);
  assert.ok(successor);
  await createPool('outgoing', 2, { deletionHandOffTo: 'successor' });
  const relays = await readyPods(kubelet, 'outgoing', 2);
  // Mounted from the start (so the deletion does not roll the relays): the successor's own secret.
  for (const r of relays)
    assert.equal(
      await readFile(path.join(r.configDir, 'handoff-to/secret'), 'utf8'),
      await readFile(path.join(successor.configDir, 'handoff/secret'), 'utf8'),
      `${r.pod.metadata.name} holds the successor's handoff secret`,
    );
  const acknowledged = await queueDeferred(upstream, relays, N, 'h');
  assert.equal(acknowledged.length, N);
  const heldBySuccessor = await queuedOn(successor);
  const before = kubelet.terminations.length;
  const deletedAt = Date.now();
  await k(['-n', NS, 'delete', 'rp/outgoing', '--wait=false']);
  const { seen, gone } = await followDeletion('outgoing', 240_000);
  const goneMs = Date.now() - deletedAt;
  assert.ok(gone);
  // The intake closes and the evacuation starts with the same ConfigMap: a fast handoff may empty
  // the queues before a reading shows HandingOff (the reasons are table-tested in handoff-to.test).
  const reasons = seen.map((s) => s.reason);
  process.stdout.write(
    `# Deleting reasons: ${seen.map((s) => `${s.reason}(${s.queuedJobs ?? '-'})`).join(' ')}\n`,
  );
  // Drained is written in the step that removes the finalizer, so the last readings may show it.
  const drainedFrom = reasons.includes('Drained') ? reasons.indexOf('Drained') : reasons.length;
  for (const [i, reason] of reasons.entries())
    assert.ok(
      i < drainedFrom
        ? ['QueueUnknown', 'ClosingIntake', 'HandingOff'].includes(reason)
        : reason === 'Drained',
      `reasons seen: ${reasons.join(', ')}`,
    );
  // The destination has deferred everything all along: nothing was delivered, all of it moved.
  assert.equal(delivered(acknowledged), 0, 'nothing delivered before the pool went');
  const moved = (await queuedOn(successor)) - heldBySuccessor;
  assert.equal(moved, acknowledged.length, 'the successor holds every message');
  // The relays of the deleted pool stopped with nothing left to hand to anyone.
  await waitFor(() => kubelet!.terminations.length >= before + 2, 120_000, 'both relays stopped');
  const stopped = kubelet.terminations.slice(before).filter((t) => t.pod.startsWith(`${NS}/outgoing-`));
  assert.equal(stopped.length, 2);
  const { handedOff, maxDrainMs } = departedCleanly(stopped);
  assert.equal(handedOff, 0, 'moved by the evacuation before their pods were deleted');
  await recoverAndCount(upstream, 'delete with deletionHandOffTo', acknowledged, {
    moved,
    deleteToGoneMs: goneMs,
    maxQueuedJobs: Math.max(0, ...seen.map((s) => s.queuedJobs ?? 0)),
    maxDrainMs,
  });
});

test('the named pool does not exist at the deletion: HandOffTargetMissing, the relays keep the mail; created, it receives the queue and the deletion completes', async () => {
  assert.ok(kubelet);
  await createPool('orphan', 1, { deletionHandOffTo: 'heir' });
  const relays = await readyPods(kubelet, 'orphan', 1);
  const acknowledged = await queueDeferred(upstream, relays, 60, 'o');
  await k(['-n', NS, 'delete', 'rp/orphan', '--wait=false']);
  const missing = await followDeletion('orphan', 90_000, (seen) =>
    seen.some((s) => s.reason === 'HandOffTargetMissing'),
  );
  const reported = missing.seen.find((s) => s.reason === 'HandOffTargetMissing');
  assert.match(reported?.message ?? '', /pool heir does not exist in namespace mail/);
  assert.equal(reported?.queuedJobs, acknowledged.length, 'the queue is counted meanwhile');
  // Held while the destination defers and there is nowhere to hand it to.
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(await queuedOn(relays[0]!), acknowledged.length, 'the relay still holds its queue');

  await createPool('heir', 1);
  const [heir] = await readyPods(kubelet, 'heir', 1);
  assert.ok(heir);
  const { gone } = await followDeletion('orphan', 180_000);
  assert.ok(gone);
  assert.equal(delivered(acknowledged), 0, 'nothing delivered: all of it was handed off');
  assert.equal(await queuedOn(heir), acknowledged.length, 'the heir holds every message');
  await recoverAndCount(upstream, 'deletionHandOffTo created late', acknowledged, {
    moved: acknowledged.length,
  });
});
