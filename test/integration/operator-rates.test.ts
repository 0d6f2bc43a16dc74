// A SendingDomain's last hour in status.rates, and the pool's EventsDelivering condition, through
// the real control plane. A real relay and two real `mailfleet tracker` processes stand in for the
// pool's kwok pods (its relay and its <pool>-tracker Deployment's two pods, --relay-metrics-targets);
// both use the tracking key the operator generated in the cluster. The relay rewrites the HTML mail
// it delivers to an upstream that bounces half the recipients; the test follows the delivered
// pixels and links as a reader (and an image proxy) would. The relay's events go to a receiver that
// is down, then back; so do, in the last test, the events of a tracker pod whose own receiver is
// down while the relay's is up. Nothing in between is called directly by the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import {
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
} from '../helpers/relay/peers.ts';
import type { RelayProcess, ScriptedUpstream } from '../helpers/relay/peers.ts';
import { startEventsReceiver, type EventsReceiver } from '../helpers/events-receiver.ts';
import { hrefs, parsed, pixels } from '../helpers/tracking/links.ts';
import { startTracker, type TrackerProcess } from '../helpers/tracking/tracker.ts';

const NS = 'mail';
const POOL = 'news';
const HOST = 't.shop.example';
const SECRET = 'operator-rates-events-secret-0123';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let upstream: ScriptedUpstream | undefined;
let receiver: EventsReceiver | undefined;
let relay: RelayProcess | undefined;
/** The two tracker processes, standing in for the <pool>-tracker Deployment's two pods. */
const trackers: TrackerProcess[] = [];
let relayPod = '';
/** The <pool>-tracker Deployment's two pods, as the scraper's targets file maps them. */
let trackerPods: string[] = [];
let targetsFile = '';
/** The path of message 0's verified open pixel (the first test), fetched again by the last one. */
let pixel0 = '';
const dirs: string[] = [];

const k = async (args: string[], input?: string) => {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
const json = async (args: string[]) => JSON.parse(await k([...args, '-o', 'json'])) as Record<string, any>;
const apply = (o: unknown) => k(['apply', '-f', '-'], JSON.stringify(o));
const condition = (o: { status?: { conditions?: { type: string }[] } }, type: string) =>
  o.status?.conditions?.find((c) => c.type === type) as
    { status: string; reason: string; message: string } | undefined;
/** The pool's EventsDelivering condition once it has that status. */
const eventsDelivering = (status: 'True' | 'False') =>
  eventually(
    `EventsDelivering=${status}`,
    async () => {
      const c = condition(await json(['-n', NS, 'get', `rp/${POOL}`]), 'EventsDelivering');
      return c?.status === status ? c : undefined;
    },
    60_000,
  );
const podNames = async (app: string) =>
  (
    await json(['-n', NS, 'get', 'pods', '-l', `mailfleet.dev/pool=${POOL},app.kubernetes.io/name=${app}`])
  ).items.map((p: { metadata: { name: string } }) => p.metadata.name) as string[];

before(async () => {
  cp = await startCluster();
  const dir = await tempDir('rates-op');
  dirs.push(dir);
  const targets = path.join(dir, 'targets.json');
  targetsFile = targets;
  await writeFile(targets, '{}');
  await k(['create', 'namespace', NS]);
  receiver = await startEventsReceiver(Buffer.from(SECRET));
  receiver.mode = 503;
  await k(['-n', NS, 'create', 'secret', 'generic', 'hook', `--from-literal=secret=${SECRET}`]);
  operator = await startOperator(cp, 'rates', ['--scrape-interval', '1', '--relay-metrics-targets', targets]);
  await apply({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name: POOL, namespace: NS },
    spec: {
      replicas: 1,
      events: { url: receiver.url, secretRef: { name: 'hook' }, maxLag: '3s', batchInterval: '100ms' },
    },
  });
  await apply({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'SendingDomain',
    metadata: { name: 'shop-example', namespace: NS },
    spec: {
      domain: 'shop.example',
      poolRef: { name: POOL },
      tracking: { opens: true, clicks: true, host: HOST },
    },
  });
  await k(['-n', NS, 'wait', '--for=condition=Ready', `rp/${POOL}`, '--timeout=120s']);

  // The key the operator generated for the pool, given to the relay and both trackers.
  const keySecret = await json(['-n', NS, 'get', 'secret', `${POOL}-tracking`]);
  const keyFile = path.join(dir, 'tracking.key');
  await writeFile(keyFile, Buffer.from(keySecret.data.key as string, 'base64'));
  await writeFile(path.join(dir, 'events-secret'), SECRET);

  upstream = await startScripted();
  upstream.onRcpt = (to) => (to.startsWith('bad') ? { code: 550, message: '5.1.1 no such user' } : undefined);
  const spool = await tempDir('rates-spool');
  dirs.push(spool);
  relay = await startRelay(
    relayConfig(spool, upstream.port, {
      sendingDomains: [{ domain: 'shop.example', tracking: { opens: true, clicks: true, host: HOST } }],
      tracking: { keyFile },
      events: {
        url: receiver.url,
        secretFile: path.join(dir, 'events-secret'),
        batchInterval: '100ms',
        maxBackoff: '500ms',
      },
    }),
  );
  trackers.push(await startTracker(keyFile), await startTracker(keyFile));

  const relayPods = await podNames('mailfleet-relay');
  trackerPods = await eventually('the two tracker pods', async () => {
    const names = await podNames('mailfleet-tracker');
    return names.length === 2 ? names : undefined;
  });
  assert.equal(relayPods.length, 1);
  relayPod = relayPods[0]!;
  const mapping: Record<string, string> = { [`${NS}/${relayPod}`]: `${relay.base}/metrics` };
  trackerPods.forEach((pod, i) => (mapping[`${NS}/${pod}`] = trackers[i]!.metrics));
  await writeFile(targets, JSON.stringify(mapping));
});

after(async () => {
  await operator?.stop();
  for (const t of trackers) await t.stop();
  await relay?.stop();
  await upstream?.stop();
  await receiver?.stop();
  await cp?.stop();
  for (const dir of dirs) await removeDir(dir);
});

const html = (i: number) =>
  [
    'From: news@shop.example',
    `To: good${i}@dest.example`,
    `Subject: sale ${i}`,
    `Message-ID: <sale-${i}@shop.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    '',
    `<html><body><p>Sale ${i}</p><a href="https://shop.example/sale/${i}">See the sale</a></body></html>`,
    '',
  ].join('\r\n');

test('status.rates shows the last hour measured at the relay and both tracker pods; machine opens are left out', async () => {
  // Five messages, each to one recipient the upstream takes and one it refuses for good.
  for (let i = 0; i < 5; i++) {
    const sent = await sendMessage(relay!.ports.smtp, {
      from: 'news@shop.example',
      to: [`good${i}@dest.example`, `bad${i}@dest.example`],
      raw: html(i),
    });
    assert.ok(sent.ok, sent.response);
  }
  // The copies to good<i>, in that order (the upstream also gets the relay's DSNs to the sender).
  const delivered = await eventually('five delivered copies', async () => {
    const copies = [0, 1, 2, 3, 4].map((i) =>
      upstream!.received.find((m) => m.to[0] === `good${i}@dest.example`),
    );
    return copies.every(Boolean) ? copies.map((m) => m!) : undefined;
  });
  const keys = [
    Buffer.from((await json(['-n', NS, 'get', 'secret', `${POOL}-tracking`])).data.key, 'base64'),
  ];
  const copies = await Promise.all(delivered.map(async (m) => (await parsed(Buffer.from(m.raw))).html || ''));
  // Readers of messages 0 (twice) and 1 open them at the first tracker pod, an image proxy fetches the
  // pixel of message 2 there; the reader of message 0 follows its link at the second pod.
  const pixelPath = (copy: string) => {
    const [token] = pixels(keys, HOST, copy);
    assert.ok(token, 'the delivered copy has a verified pixel');
    return /src="https:\/\/[^/]+(\/o\/[^"]+)"/.exec(copy)![1]!;
  };
  for (const [i, agent] of [
    [0, BROWSER],
    [0, BROWSER],
    [1, BROWSER],
    [2, 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)'],
  ] as const) {
    const r = await fetch(trackers[0]!.base + pixelPath(copies[i]!), { headers: { 'user-agent': agent } });
    assert.equal(r.status, 200);
  }
  pixel0 = pixelPath(copies[0]!);
  const link = hrefs(copies[0]!).find((h) => h.startsWith(`https://${HOST}/c/`));
  assert.ok(link, 'the link was rewritten');
  const click = await fetch(trackers[1]!.base + link.slice(`https://${HOST}`.length), {
    headers: { 'user-agent': BROWSER },
    redirect: 'manual',
  });
  assert.equal(click.status, 302);
  assert.equal(click.headers.get('location'), 'https://shop.example/sale/0');

  const rates = await eventually(
    'status.rates with the opens and the click',
    async () => {
      const sd = await json(['-n', NS, 'get', 'sd/shop-example']);
      const r = sd.status?.rates as Record<string, unknown> | undefined;
      return r?.delivered === 5 && r.bounced === 5 && r.totalOpens === 3 && r.clicks === 1 ? r : undefined;
    },
    60_000,
  );
  assert.deepEqual(rates, {
    window: '1h',
    delivered: 5,
    bounced: 5,
    opens: 2,
    totalOpens: 3,
    clicks: 1,
    openRate: '0.4000',
    clickThroughRate: '0.2000',
    bounceRate: '0.5000',
  });
  // `kubectl get sd -o wide` shows them (the CRD's printer columns).
  const wide = await k(['-n', NS, 'get', 'sd/shop-example', '-o', 'wide']);
  const [header = '', row = ''] = wide.split('\n');
  // Columns are aligned by position (empty cells leave gaps): read each below its heading.
  const cell = (name: string) => row.slice(header.indexOf(name)).split(/\s+/)[0];
  assert.equal(cell('OPEN-RATE'), '0.4000');
  assert.equal(cell('CLICK-RATE'), '0.2000');
});

test('EventsDelivering: False naming the relay while the receiver is down, True once it takes the events', async () => {
  // The relay has held events (the first test's deliveries and bounces) since before it.
  const behind = await eventsDelivering('False');
  assert.equal(behind.reason, 'Behind');
  assert.match(behind.message, new RegExp(`${relayPod}: oldest unsent event \\d+s old \\(maxLag 3s\\)`));
  assert.equal(receiver!.events.length, 0);

  receiver!.mode = 200;
  const delivering = await eventsDelivering('True');
  assert.equal(delivering.reason, 'AsExpected');
  // The backlog arrived: the first test's deliveries and bounces (and the DSNs' deliveries).
  const shop = receiver!.events.filter((e) => e.sendingDomain === 'shop.example');
  assert.deepEqual(
    ['delivered', 'bounced'].map(
      (type) => new Set(shop.filter((e) => e.type === type).map((e) => e.recipient)).size,
    ),
    [5, 5],
  );
  assert.equal(receiver!.badSignatures, 0);
});

test("the pool's tracker Deployment in the cluster carries the events flags, Secret and outbox (spec.events)", async () => {
  const deployment = await json(['-n', NS, 'get', 'deployment', `${POOL}-tracker`]);
  const pod = deployment.spec.template.spec;
  const args = pod.containers[0].args as string[];
  const flag = (name: string) => args[args.indexOf(name) + 1];
  assert.equal(flag('--events-url'), receiver!.url);
  assert.equal(flag('--events-types'), 'opened,clicked');
  assert.equal(flag('--events-batch-interval'), '100ms');
  const volumes = pod.volumes as { name: string; secret?: { secretName: string }; emptyDir?: object }[];
  assert.ok(volumes.some((v) => v.secret?.secretName === 'hook'));
  assert.ok(volumes.some((v) => v.emptyDir && v.name === 'events-outbox'));
});

test('EventsDelivering: False naming the tracker pod whose events fall behind while the relay keeps up, True once they arrive', async () => {
  // The second tracker pod is now a tracker run with the events flags, posting to a receiver that
  // is down (the relay's receiver answers 200 since the test before).
  const dir = await tempDir('rates-tracker-events');
  dirs.push(dir);
  const down = await startEventsReceiver(Buffer.from(SECRET));
  down.mode = 503;
  await writeFile(path.join(dir, 'events-secret'), SECRET);
  const keySecret = await json(['-n', NS, 'get', 'secret', `${POOL}-tracking`]);
  await writeFile(path.join(dir, 'tracking.key'), Buffer.from(keySecret.data.key as string, 'base64'));
  const lagging = await startTracker(path.join(dir, 'tracking.key'), [
    ...['--events-url', down.url, '--events-secret-file', path.join(dir, 'events-secret')],
    ...['--events-dir', path.join(dir, 'outbox'), '--events-batch-interval', '100ms'],
  ]);
  try {
    const mapping = JSON.parse(await readFile(targetsFile, 'utf8')) as Record<string, string>;
    mapping[`${NS}/${trackerPods[1]!}`] = lagging.metrics;
    await writeFile(targetsFile, JSON.stringify(mapping));
    // A reader opens message 0 at that pod: its opened event waits in the tracker's outbox.
    const open = await fetch(lagging.base + pixel0, { headers: { 'user-agent': BROWSER } });
    assert.equal(open.status, 200);

    const behind = await eventsDelivering('False');
    assert.equal(behind.reason, 'Behind');
    assert.match(
      behind.message,
      new RegExp(`^${trackerPods[1]} \\(tracker\\): oldest unsent event \\d+s old \\(maxLag 3s\\)`),
    );
    assert.ok(!behind.message.includes(relayPod), `the relay keeps up: ${behind.message}`);
    assert.match(behind.message, /mailfleet_tracker_events_failures_total/);

    down.mode = 200;
    const delivering = await eventsDelivering('True');
    assert.equal(delivering.reason, 'AsExpected');
    assert.deepEqual(
      down.events.map((e) => [e.type, e.sendingDomain]),
      [['opened', 'shop.example']],
    );
  } finally {
    await lagging.stop();
    await down.stop();
  }
});
