// Lifecycle rounds on real pod lifecycles (the operator on a control plane, its relays run by the
// test kubelet, test/helpers/operator/lifecycle.ts). Each round, mail is submitted to the pool's
// relays while, at a random moment, the pool is scaled to a random size (1-3) or rolled out (a
// listener port change: a restart-checksum change); the destination defers or accepts at random.
// Every relay that goes must drain before SIGKILL with nothing left. At the end the destination
// accepts: every acknowledged message delivered once (ledger.ts: lost 0, duplicates 0).
// Short mode: 2 rounds of 40 messages; MAILFLEET_LONG=1: 12 rounds of 300. MAILFLEET_SEED replays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readyPods } from '../helpers/operator/kubelet.ts';
import type { Termination } from '../helpers/operator/kubelet.ts';
import { departedCleanly, recoverAndCount } from '../helpers/operator/ledger.ts';
import { NS, createPool, startLifecycleRig } from '../helpers/operator/lifecycle.ts';
import type { LifecycleRig } from '../helpers/operator/lifecycle.ts';
import { submitMany, waitFor } from '../helpers/relay/peers.ts';
import { LONG, report, sleep } from './lib/smtp.ts';

const ROUNDS = LONG ? 12 : 2;
const PER_ROUND = LONG ? 300 : 40;
/** Longest random wait between the first submission and the lifecycle event. */
const MAX_DELAY_MS = LONG ? 5000 : 2000;
const POOL = 'rounds';
const SEED = Number(process.env.MAILFLEET_SEED) || Date.now() % 2 ** 31;

/** mulberry32: a small seeded generator, so a failing round can be replayed with MAILFLEET_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let rig: LifecycleRig | undefined;

before(async () => {
  rig = await startLifecycleRig('rounds', ['--scrape-interval', '0']);
});

after(async () => {
  await rig?.stop();
});

type Round = {
  event: string;
  deferring: boolean;
  delayMs: number;
  sent: number;
  acknowledged: number;
  stopped: number;
  handedOff: number;
  maxDrainMs: number;
};

test(`${ROUNDS} lifecycle rounds (scale-down/up, rollout) at random moments under mail: nothing acknowledged is lost`, async () => {
  assert.ok(rig);
  const { k, kubelet, upstream } = rig;
  const rand = random(SEED);
  process.stdout.write(`# seed ${SEED}\n`);
  let replicas = 3;
  let port = 2525;
  await createPool(k, POOL, replicas, { listeners: { smtp: { port } } });
  await readyPods(kubelet, POOL, replicas);
  const acknowledged: string[] = [];
  const rounds: Round[] = [];
  const pods = () =>
    [...kubelet.running.values()].filter((r) => r.pod.metadata.labels?.['mailfleet.dev/pool'] === POOL);

  for (let i = 0; i < ROUNDS; i++) {
    const deferring = rand() < 0.6;
    upstream.onRcpt = deferring ? () => ({ code: 451, message: '4.4.1 destination down' }) : () => undefined;
    const relays = await readyPods(kubelet, POOL, replicas);
    const before = kubelet.terminations.length;
    // Alternate the kinds so both are exercised in any run; the target and the timing are random.
    const rollout = i % 2 === 1;
    const target = rollout ? replicas : [1, 2, 3].filter((n) => n !== replicas)[Math.floor(rand() * 2)]!;
    const delayMs = Math.floor(rand() * MAX_DELAY_MS);
    const share = Math.ceil(PER_ROUND / relays.length);
    const submitting = Promise.all(
      relays.map((r, j) =>
        submitMany(r.ports.smtp ?? port, share, `round${i}-${j}`, (n) => `r${n}@dest.example`, 2, r.ip),
      ),
    );
    await sleep(delayMs);
    if (rollout) {
      port = port === 2525 ? 2587 : 2525;
      await k([
        '-n',
        NS,
        'patch',
        `rp/${POOL}`,
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { listeners: { smtp: { port } } } }),
      ]);
    } else await k(['-n', NS, 'scale', `rp/${POOL}`, `--replicas=${target}`]);
    const sent = (await submitting).flat();
    acknowledged.push(...sent);
    // Settled: the pods of the new spec Ready, every replaced or removed one gone.
    await waitFor(
      () =>
        pods().length === target &&
        pods().every((r) => r.ready && r.terminatingSince === undefined && r.ports.smtp === port),
      240_000,
      `round ${i}: ${target} ready relays on port ${port}`,
    );
    const gone: Termination[] = kubelet.terminations.slice(before);
    // Every relay that went drained before SIGKILL and left nothing in its emptyDir.
    const { handedOff, maxDrainMs } = departedCleanly(gone);
    rounds.push({
      event: rollout ? `rollout x${replicas}` : `scale ${replicas}->${target}`,
      deferring,
      delayMs,
      sent: share * relays.length,
      acknowledged: sent.length,
      stopped: gone.length,
      handedOff,
      maxDrainMs: Math.max(0, maxDrainMs),
    });
    replicas = target;
  }

  for (const [i, r] of rounds.entries()) report(`lifecycle-rounds round ${i}`, r);
  report('lifecycle-rounds', {
    seed: SEED,
    rounds: rounds.length,
    sent: rounds.reduce((s, r) => s + r.sent, 0),
    acknowledged: acknowledged.length,
    relaysStopped: rounds.reduce((s, r) => s + r.stopped, 0),
    handedOff: rounds.reduce((s, r) => s + r.handedOff, 0),
  });
  assert.ok(acknowledged.length > 0, 'mail was acknowledged');
  // The destination recovers: every acknowledged message delivered once (lost 0, duplicates 0).
  await recoverAndCount(upstream, 'lifecycle-rounds', acknowledged, { rounds: rounds.length });
});
