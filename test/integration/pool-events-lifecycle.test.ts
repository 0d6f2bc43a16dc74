// Events across real pod lifecycles: the operator's RelayPool with spec.events and a tracking
// SendingDomain on the control plane, its relays and its <pool>-tracker pods run by the test kubelet
// (test/helpers/operator/kubelet.ts: SIGTERM then SIGKILL after the grace period, the emptyDir
// removed with the pod, Service names through dnsmasq; a tracker pod runs the rendered
// `mailfleet tracker` args, its `--handoff-service` resolved there). The webhook receiver answers
// 503 while it matters: every relay holds delivered events, the tracker pods hold opened and clicked
// events. The tracker pods are deleted (their events go to a relay through the rendered handoff
// flags), then the pool is scaled 3 -> 1 (the removed relays hand their outboxes, the trackers'
// events included, to the remaining relay). The receiver answers 200: every event arrives, counted
// by what it is about and by id (made, received, duplicates, lost = 0).
// Second case: a pool deleted with Drain (kubectl delete rp) while the receiver is down keeps its
// relays until every event is delivered: the tracker stops first and hands its events to the
// relays, the pool stays Deleting EventsPending with the count, and goes once the receiver is back.
// MAILFLEET_EVENTS_LIFECYCLE_MESSAGES sets the message count (default 300; a fifth in the second case).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { LOCAL_NODE, readyPods, type Kubelet, type RunningPod } from '../helpers/operator/kubelet.ts';
import { departedCleanly } from '../helpers/operator/ledger.ts';
import { NS, lifecycleRigPerFile } from '../helpers/operator/lifecycle.ts';
import { ledger, metricValue, sendMessage, waitFor } from '../helpers/relay/peers.ts';
import { startEventsReceiver, type EventsReceiver } from '../helpers/events-receiver.ts';
import { hrefs, parsed, pixels } from '../helpers/tracking/links.ts';
import type { MailEvent } from '../../relay/src/events/event.ts';

const N = Number(process.env.MAILFLEET_EVENTS_LIFECYCLE_MESSAGES) || 300;
const SECRET = 'pool-events-lifecycle-secret-0123';
const HOST = 'track.example.com';
const POOL = 'ev';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const PROXY = 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)';

let receiver: EventsReceiver | undefined;
let kubelet: Kubelet;
const rig = lifecycleRigPerFile('events-lifecycle', ['--scrape-interval', '1'], (r) => (kubelet = r.kubelet));
const { k, createPool } = rig;

before(async () => {
  receiver = await startEventsReceiver(Buffer.from(SECRET));
});

after(async () => {
  await receiver?.stop();
});

/** What an event is about, the same however often it is sent: a delivery's recipient, a fetch's message and reader or URL. */
function about(e: Pick<MailEvent, 'type' | 'recipient' | 'messageId' | 'reader' | 'url'>): string {
  return e.type === 'delivered'
    ? `delivered ${e.recipient}`
    : `${e.type} ${e.messageId} ${e.type === 'clicked' ? e.url : e.reader}`;
}

async function metricOf(r: RunningPod, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await (await fetch(`http://${r.ip}:${r.ports.http}/metrics`)).text(), name, labels);
}

const sum = async (pods: RunningPod[], name: string, labels: Record<string, string> = {}) =>
  (await Promise.all(pods.map((r) => metricOf(r, name, labels)))).reduce((a, b) => a + b, 0);

function newsletter(i: number): string {
  return [
    'From: news@example.com',
    `To: u${i}@dest.example`,
    `Subject: sale ${i}`,
    `Message-ID: <ev-${i}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    '',
    `<html><body><p>Sale ${i}</p><a href="https://shop.example/sale/${i}">See the sale</a></body></html>`,
    '',
  ].join('\r\n');
}

/** The path of the first tracked link or pixel of a delivered copy, as the tracker serves it. */
const trackedPath = (url: string) => url.slice(`https://${HOST}`.length);

/**
 * A pool of `replicas` relays with spec.events (to the receiver) and a tracking domain, its two
 * tracker pods running here, its relays with the tracking key, the destination accepting.
 */
async function trackingPool(
  pool: string,
  replicas: number,
): Promise<{ relays: RunningPod[]; trackers: RunningPod[] }> {
  // The receiver's signing secret, applied (each case makes sure it is there).
  const hook = ['-n', NS, 'create', 'secret', 'generic', 'hook', `--from-literal=secret=${SECRET}`];
  await k(['apply', '-f', '-'], await k([...hook, '--dry-run=client', '-o', 'yaml']));
  // The tracker Deployment has no node selector (spec.scheduling is the relays'): with the kwok
  // nodes cordoned, its pods land on the test kubelet's node and run as processes.
  for (const node of (await k(['get', 'nodes', '-o', 'name'])).split('\n').filter(Boolean))
    if (node !== `node/${LOCAL_NODE}`) await k(['cordon', node]);
  await createPool(
    pool,
    replicas,
    { events: { url: receiver!.url, secretRef: { name: 'hook' }, batchInterval: '100ms' } },
    { tracking: { opens: true, clicks: true, host: HOST } },
  );
  const trackers = await readyPods(kubelet, pool, 2, 120_000, 'mailfleet-tracker');
  // Settled: the relays run with the tracking key. The first pods may have come before the domain
  // (a busy operator): their replacements are the relays, so the ready pods are read again each time.
  const withKey = (r: RunningPod) =>
    r.pod.spec.volumes?.some((v) => JSON.stringify(v).includes(`${pool}-tracking`)) === true;
  let relays: RunningPod[] = [];
  await waitFor(
    async () => (relays = await readyPods(kubelet, pool, replicas)).every(withKey),
    180_000,
    'relays with the tracking key',
  );
  rig.upstream.onRcpt = () => undefined;
  return { relays, trackers };
}

/** The pool's tracking key (its links and pixels are signed with it). */
async function trackingKeys(pool: string): Promise<Buffer[]> {
  const secret = JSON.parse(await k(['-n', NS, 'get', 'secret', `${pool}-tracking`, '-o', 'json'])) as {
    data: { key: string };
  };
  return [Buffer.from(secret.data.key, 'base64')];
}

/** One fetch of a tracked pixel (200) or link (302) at a tracker pod, as a reader's client makes it. */
async function read(
  tracker: RunningPod,
  at: string,
  agent: string,
  type: 'opened' | 'clicked',
): Promise<void> {
  const res = await fetch(`http://${tracker.ip}:${tracker.ports.tracking}${at}`, {
    headers: { 'user-agent': agent },
    redirect: 'manual',
  });
  assert.equal(res.status, type === 'opened' ? 200 : 302);
  await res.arrayBuffer();
}

/** A delivered newsletter's number, verified pixel token, pixel path and rewritten link. */
async function trackedCopy(copy: { raw: string; to: string[] }, keys: Buffer[]) {
  const html = (await parsed(Buffer.from(copy.raw, 'latin1'))).html || '';
  const i = Number(/^u(\d+)@/.exec(copy.to[0] ?? '')?.[1]);
  const [token] = pixels(keys, HOST, html);
  assert.ok(token, `message ${i} carries a verified pixel`);
  const pixel = trackedPath(/src="(https:\/\/[^"]+\/o\/[^"]+)"/.exec(html)![1]!);
  const link = hrefs(html).find((h) => h.startsWith(`https://${HOST}/c/`));
  assert.ok(link, `message ${i}: the link was rewritten`);
  return { i, token, pixel, link };
}

test(`tracker pods deleted, then scale-down 3 -> 1, with ${N} delivered events and the opens and clicks unsent: every event arrives once the receiver is back`, async () => {
  const rx = receiver!;
  rx.mode = 503;
  const { relays, trackers } = await trackingPool(POOL, 3);
  const upstream = rig.upstream;

  // N newsletters spread over the three relays; the destination takes each: one delivered event each.
  const viaRelay = new Map<string, number>();
  await Promise.all(
    relays.map(async (r, n) => {
      for (let i = n; i < N; i += relays.length) {
        const sent = await sendMessage(
          r.ports.smtp ?? 25,
          { from: 'news@example.com', to: [`u${i}@dest.example`], raw: newsletter(i) },
          { host: r.ip },
        );
        assert.ok(sent.ok, sent.response);
        viaRelay.set(r.pod.metadata.name, (viaRelay.get(r.pod.metadata.name) ?? 0) + 1);
      }
    }),
  );
  await waitFor(
    async () =>
      (
        await Promise.all(
          relays.map(
            async (r) =>
              (await metricOf(r, 'mailfleet_relay_events_outbox_events')) ===
              viaRelay.get(r.pod.metadata.name),
          ),
        )
      ).every(Boolean),
    120_000,
    'each relay holding its delivered events',
  );
  const made = new Set<string>();
  for (let i = 0; i < N; i++) made.add(about({ type: 'delivered', recipient: `u${i}@dest.example` }));

  // Readers: every third message opened by a person, every seventh fetched by an image proxy, every
  // fifth clicked; the fetches alternate between the two tracker pods. Each fetch is one event.
  const keys = await trackingKeys(POOL);
  const copies = upstream.received.filter(
    (m) => m.to[0]?.startsWith('u') && m.to[0].endsWith('@dest.example'),
  );
  assert.equal(copies.length, N, 'each newsletter delivered once');
  let fetches = 0;
  for (const copy of copies) {
    const { i, token, pixel, link } = await trackedCopy(copy, keys);
    const reads: [string, string, 'opened' | 'clicked'][] = [
      ...(i % 3 === 0 ? [[pixel, BROWSER, 'opened'] as [string, string, 'opened']] : []),
      ...(i % 7 === 0 ? [[pixel, PROXY, 'opened'] as [string, string, 'opened']] : []),
      ...(i % 5 === 0 ? [[trackedPath(link), BROWSER, 'clicked'] as [string, string, 'clicked']] : []),
    ];
    for (const [at, agent, type] of reads) {
      await read(trackers[fetches++ % trackers.length]!, at, agent, type);
      made.add(
        about({
          type,
          messageId: token.messageId,
          reader: agent === PROXY ? 'machine' : 'human',
          url: `https://shop.example/sale/${i}`,
        }),
      );
    }
  }
  const trackerEvents = made.size - N;
  assert.equal(trackerEvents, fetches, 'each fetch a different event');
  await waitFor(
    async () => (await sum(trackers, 'mailfleet_tracker_events_outbox_events')) === trackerEvents,
    60_000,
    'the tracker pods holding the opens and clicks',
  );
  assert.equal(rx.events.length, 0, 'nothing arrived while the receiver answered 503');

  // The tracker pods deleted (a node drain would do the same): the Deployment replaces them; each
  // stopping tracker tries the receiver, then hands its outbox to a relay through the headless Service.
  let mark = kubelet.terminations.length;
  await k(['-n', NS, 'delete', 'pod', '-l', `app.kubernetes.io/name=mailfleet-tracker`, '--wait=false']);
  await waitFor(
    () => trackers.every((t) => kubelet.terminations.some((x) => x.pod === `${NS}/${t.pod.metadata.name}`)),
    120_000,
    'both tracker pods gone',
  );
  for (const t of trackers) {
    const gone = kubelet.terminations.slice(mark).find((x) => x.pod === `${NS}/${t.pod.metadata.name}`);
    assert.equal(gone?.signal, null, `${t.pod.metadata.name} exited before SIGKILL`);
    assert.equal(gone?.exitCode, 0);
    const summary = t.logs.findLast((l) => l.includes('"events handoff"'));
    assert.match(summary ?? '', /"left":0/, `${t.pod.metadata.name} handed off every event: ${summary}`);
    assert.ok(!t.logs.some((l) => l.includes('events left unsent at stop')));
    await assert.rejects(access(outboxDir(t)), `${t.pod.metadata.name}'s emptyDir went with the pod`);
  }
  const fromTrackers = await sum(relays, 'mailfleet_relay_handoff_received_events_total', {
    result: 'stored',
  });
  assert.equal(fromTrackers, trackerEvents, 'the relays stored every tracker event');
  await readyPods(kubelet, POOL, 2, 120_000, 'mailfleet-tracker');

  // 3 -> 1: the two removed relays drain (no mail left) and hand their outboxes to the remaining one.
  mark = kubelet.terminations.length;
  await k(['-n', NS, 'scale', `rp/${POOL}`, '--replicas=1']);
  await waitFor(() => kubelet.terminations.length >= mark + 2, 180_000, 'two relays gone');
  const gone = kubelet.terminations.slice(mark);
  departedCleanly(gone);
  const departed = relays.filter((r) => gone.some((x) => x.pod === `${NS}/${r.pod.metadata.name}`));
  assert.equal(departed.length, 2);
  let handedOff = 0;
  for (const r of departed) {
    const summary = r.logs.findLast((l) => l.includes('"events handoff"'));
    assert.match(summary ?? '', /"left":0/, `${r.pod.metadata.name} handed off every event: ${summary}`);
    handedOff += Number(/"sent":(\d+)/.exec(summary ?? '')?.[1] ?? NaN);
    await assert.rejects(access(r.spoolDir), `${r.pod.metadata.name}'s emptyDir went with the pod`);
  }
  const [survivor] = await readyPods(kubelet, POOL, 1);
  assert.ok(survivor && relays.includes(survivor), 'the remaining relay is one of the three');
  assert.equal(
    await metricOf(survivor, 'mailfleet_relay_events_outbox_events'),
    made.size,
    'the remaining relay holds every event',
  );
  assert.equal(rx.events.length, 0);

  // The receiver is back: each event arrives, once, under one id.
  rx.mode = 200;
  await waitFor(
    async () => (await metricOf(survivor, 'mailfleet_relay_events_outbox_events')) === 0,
    180_000,
    'the outbox to empty',
  );
  const ids = new Map<string, Set<string>>();
  for (const e of rx.events) ids.set(about(e), (ids.get(about(e)) ?? new Set()).add(e.id));
  for (const [key, set] of ids) assert.equal(set.size, 1, `${key} sent under ${set.size} ids`);
  const received = new Set(rx.events.map((e) => e.id));
  const figures = {
    made: made.size,
    delivered: N,
    opened: [...made].filter((m) => m.startsWith('opened')).length,
    clicked: [...made].filter((m) => m.startsWith('clicked')).length,
    trackerHandedOff: fromTrackers,
    relaysHandedOff: handedOff,
    received: received.size,
    duplicates: rx.events.length - received.size,
    lost: [...made].filter((m) => !ids.has(m)).length,
    unexpected: [...ids.keys()].filter((m) => !made.has(m)).length,
  };
  ledger('tracker pods deleted, relays 3->1, receiver down', figures);
  assert.equal(figures.lost, 0);
  assert.equal(figures.unexpected, 0);
  assert.equal(figures.duplicates, 0, 'nothing crashed: each event once');
  assert.equal(rx.badSignatures, 0);
});

/** The local directory of a tracker pod's events outbox (its `--events-dir`, an emptyDir). */
function outboxDir(t: RunningPod): string {
  const args = t.proc.spawnargs;
  return args[args.indexOf('--events-dir') + 1] ?? '';
}

/** The Deleting condition of `pool` at each change of reason or message; `gone` once it is deleted. */
type Deleting = { reason: string; message: string; at: number };
async function deletingNow(pool: string): Promise<Deleting | 'gone' | undefined> {
  const r = await rig.cp.kubectl(['-n', NS, 'get', 'rp', pool, '-o', 'json'], { allowFail: true });
  if (r.code !== 0) return /NotFound/.test(r.stderr) ? 'gone' : undefined;
  const rp = JSON.parse(r.stdout) as {
    status?: { conditions?: { type: string; reason: string; message: string }[] };
  };
  const c = rp.status?.conditions?.find((x) => x.type === 'Deleting');
  return c ? { reason: c.reason, message: c.message, at: Date.now() } : undefined;
}

test('kubectl delete rp (Drain) with the receiver down: the tracker stops first, the pool stays Deleting EventsPending with the count, and goes once every event arrived', async () => {
  const rx = receiver!;
  const pool = 'evd';
  const M = Math.max(12, Math.ceil(N / 5));
  rx.mode = 503;
  const mark = rx.events.length;
  const { relays, trackers } = await trackingPool(pool, 2);
  const upstream = rig.upstream;
  // M newsletters (recipients u10000 and up, apart from the first test's) over the two relays.
  const made = new Set<string>();
  for (let n = 0; n < M; n++) {
    const i = 10_000 + n;
    const r = relays[n % relays.length]!;
    const sent = await sendMessage(
      r.ports.smtp ?? 25,
      { from: 'news@example.com', to: [`u${i}@dest.example`], raw: newsletter(i) },
      { host: r.ip },
    );
    assert.ok(sent.ok, sent.response);
    made.add(about({ type: 'delivered', recipient: `u${i}@dest.example` }));
  }
  await waitFor(
    async () => (await sum(relays, 'mailfleet_relay_events_outbox_events')) === M,
    120_000,
    'the relays holding the delivered events',
  );
  // Each copy opened by a person, every third clicked, through the two tracker pods in turn.
  const keys = await trackingKeys(pool);
  const copies = upstream.received.filter((m) => Number(/^u(\d+)@/.exec(m.to[0] ?? '')?.[1]) >= 10_000);
  assert.equal(copies.length, M, 'each newsletter delivered once');
  let fetches = 0;
  for (const copy of copies) {
    const { i, token, pixel, link } = await trackedCopy(copy, keys);
    const reads: [string, 'opened' | 'clicked'][] = [
      [pixel, 'opened'],
      ...(i % 3 === 0 ? [[trackedPath(link), 'clicked'] as [string, 'clicked']] : []),
    ];
    for (const [at, type] of reads) {
      await read(trackers[fetches++ % trackers.length]!, at, BROWSER, type);
      made.add(
        about({ type, messageId: token.messageId, reader: 'human', url: `https://shop.example/sale/${i}` }),
      );
    }
  }
  assert.equal(made.size, M + fetches);
  await waitFor(
    async () => (await sum(trackers, 'mailfleet_tracker_events_outbox_events')) === fetches,
    60_000,
    'the tracker pods holding the opens and clicks',
  );

  // The deletion: the tracker is scaled to 0 and hands its events to the relays; the pool waits.
  const terminated = kubelet.terminations.length;
  const deletedAt = Date.now();
  await k(['-n', NS, 'delete', `rp/${pool}`, '--wait=false']);
  const seen: Deleting[] = [];
  const note = (d: Deleting) => {
    const last = seen.at(-1);
    if (d.reason !== last?.reason || d.message !== last.message) seen.push(d);
  };
  const pending = new RegExp(
    `^deletionPolicy Drain: .*; ${made.size} webhook events not yet acknowledged by`,
  );
  await waitFor(
    async () => {
      const d = await deletingNow(pool);
      assert.notEqual(d, 'gone', 'the pool went with events unsent');
      if (d && d !== 'gone') note(d);
      return d !== undefined && d !== 'gone' && d.reason === 'EventsPending' && pending.test(d.message);
    },
    180_000,
    `Deleting EventsPending with ${made.size} events`,
  );
  const pendingAt = Date.now();
  for (const t of trackers) {
    const gone = kubelet.terminations.slice(terminated).find((x) => x.pod === `${NS}/${t.pod.metadata.name}`);
    assert.equal(gone?.exitCode, 0, `${t.pod.metadata.name} stopped before the relays, cleanly`);
    assert.match(t.logs.findLast((l) => l.includes('"events handoff"')) ?? '', /"left":0/);
  }
  assert.ok(
    !kubelet.terminations
      .slice(terminated)
      .some((x) => x.pod.startsWith(`${NS}/${pool}-`) && !x.pod.includes('tracker')),
    'no relay stopped while events are pending',
  );
  // Held while the receiver stays down: still there, still counting every event.
  await new Promise((r) => setTimeout(r, 8000));
  const held = await deletingNow(pool);
  assert.ok(
    held && held !== 'gone' && held.reason === 'EventsPending' && pending.test(held.message),
    JSON.stringify(held),
  );
  assert.equal(rx.events.length, mark, 'nothing arrived while the receiver answered 503');

  // The receiver is back: every event arrives, then the pool goes.
  rx.mode = 200;
  const upAt = Date.now();
  await waitFor(
    async () => {
      const d = await deletingNow(pool);
      if (d && d !== 'gone') note(d);
      return d === 'gone';
    },
    180_000,
    `${pool} deleted`,
  );
  const goneAt = Date.now();
  const arrived = rx.events.slice(mark);
  const ids = new Map<string, Set<string>>();
  for (const e of arrived) ids.set(about(e), (ids.get(about(e)) ?? new Set()).add(e.id));
  const received = new Set(arrived.map((e) => e.id));
  const reasons = seen.map((s) => s.reason);
  process.stdout.write(`# Deleting reasons: ${[...new Set(reasons)].join(' ')}\n`);
  for (const reason of reasons)
    assert.ok(
      [
        'QueueUnknown',
        'ClosingIntake',
        'DrainingQueue',
        'StoppingTracker',
        'EventsPending',
        'Drained',
      ].includes(reason),
      `reasons seen: ${reasons.join(', ')}`,
    );
  await waitFor(
    () =>
      kubelet.terminations.slice(terminated).filter((x) => x.pod.startsWith(`${NS}/${pool}-`)).length >= 4,
    120_000,
    'both relays stopped after the pool went',
  );
  const figures = {
    made: made.size,
    delivered: M,
    opened: [...made].filter((m) => m.startsWith('opened')).length,
    clicked: [...made].filter((m) => m.startsWith('clicked')).length,
    received: received.size,
    duplicates: arrived.length - received.size,
    lost: [...made].filter((m) => !ids.has(m)).length,
    unexpected: [...ids.keys()].filter((m) => !made.has(m)).length,
    deleteToPendingMs: pendingAt - deletedAt,
    receiverUpToGoneMs: goneAt - upAt,
  };
  ledger('kubectl delete rp (Drain), receiver down', figures);
  assert.equal(figures.lost, 0);
  assert.equal(figures.unexpected, 0);
  assert.equal(rx.badSignatures, 0);
});
