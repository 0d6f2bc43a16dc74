// Unique opens across the pool's tracker pods through the shared store (spec.sharedState): two
// real `mailfleet tracker` processes with the flags the operator renders for a pool with
// spec.sharedState (its store URL, key prefix and password file) and a real redis-server. A message
// opened at both pods counts once; with the store stopped each pod decides on its own memory
// (counted as fallback) and the store's return makes them decide together again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { metricValue, removeDir, tempDir, waitFor } from '../helpers/relay/peers.ts';
import { startRedis } from '../helpers/redis.ts';
import { startTracker, type TrackerProcess } from '../helpers/tracking/tracker.ts';
import { openUrl } from '../../relay/src/tracking/links.ts';
import { relayPool } from '../helpers/operator/fixtures.ts';
import { withDefaults } from '../../operator/src/api/defaults.ts';
import { trackerDeployment } from '../../operator/src/desired/tracker.ts';

const KEY = 'tracker-unique-key-0123456789abcdef';
const BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const metric = async (t: TrackerProcess, name: string, labels: Record<string, string> = {}) =>
  metricValue(await (await fetch(t.metrics)).text(), name, labels);
const sum = async (ts: TrackerProcess[], name: string, labels: Record<string, string> = {}) =>
  (await Promise.all(ts.map((t) => metric(t, name, labels)))).reduce((a, b) => a + b, 0);

test('two tracker pods on the pool store: a message opened at both counts once; the store down, each pod decides alone (counted); back, together again', async () => {
  const dir = await tempDir('tracker-unique');
  cleanups.push(() => removeDir(dir));
  const redis = await startRedis(dir);
  cleanups.push(() => redis.stop());
  await writeFile(join(dir, 'key'), KEY);
  // The --shared-state-* flags the operator renders for a pool on this store, the password Secret's
  // mount path mapped to the file here.
  const pool = withDefaults(
    relayPool({ sharedState: { url: redis.url, passwordSecretRef: { name: 'store', key: 'pw' } } }),
  ).resource;
  const rendered = trackerDeployment({ pool, image: 'mailfleet:test' }).spec!.template.spec!.containers[0]!
    .args!;
  const from = rendered.indexOf('--shared-state-url');
  assert.ok(from > 0, 'the tracker gets the store');
  const flags = rendered.slice(from).map((a) => (a.endsWith('/password') ? redis.passwordFile : a));
  assert.deepEqual(flags.slice(0, 4), [
    '--shared-state-url',
    redis.url,
    '--shared-state-key-prefix',
    `mailfleet:${pool.metadata.namespace}/${pool.metadata.name}:`,
  ]);
  const trackers = [await startTracker(join(dir, 'key'), flags), await startTracker(join(dir, 'key'), flags)];
  cleanups.push(...trackers.map((t) => () => t.stop()));
  const up = (value: number) =>
    waitFor(
      async () => (await sum(trackers, 'mailfleet_tracker_shared_state_up')) === value * trackers.length,
      20_000,
      value ? 'both trackers on the store' : 'both trackers off the store',
    );
  await up(1);
  const open = async (t: TrackerProcess, id: string, agent = BROWSER) => {
    const url = openUrl(Buffer.from(KEY), 't.example', 'shop.example', id);
    const res = await fetch(t.base + url.slice('https://t.example'.length), {
      headers: { 'user-agent': agent },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  };
  const unique = (reader = 'human') =>
    sum(trackers, 'mailfleet_tracker_unique_opens_total', { sending_domain: 'shop.example', reader });
  const settled = async (expected: number, what: string, reader = 'human') => {
    await waitFor(async () => (await unique(reader)) >= expected, 10_000, what);
    // Nothing more arrives: the count stays where it is.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await unique(reader), expected, what);
  };
  const [a, b] = trackers as [TrackerProcess, TrackerProcess];

  // m1 at a, then at b, then at a again; m2 at b twice: 2 messages opened, 5 fetches.
  for (const [t, id] of [
    [a, 'm1'],
    [b, 'm1'],
    [a, 'm1'],
    [b, 'm2'],
    [b, 'm2'],
  ] as const)
    await open(t, id);
  await settled(2, 'one unique open per message across both pods');
  assert.equal(
    await sum(trackers, 'mailfleet_tracker_opens_total', { sending_domain: 'shop.example', reader: 'human' }),
    5,
  );
  // An image proxy's fetch is apart: it does not use up the reader's open, nor the reader its.
  await open(
    b,
    'm1',
    'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)',
  );
  await settled(1, 'the machine open of m1 counts once, apart', 'machine');
  assert.equal(await sum(trackers, 'mailfleet_tracker_unique_opens_fallback_total'), 0);

  // The store down: m3 opened at both pods counts at each (2), m1 again at b counts nowhere (b saw it).
  await redis.stop();
  await up(0);
  for (const [t, id] of [
    [a, 'm3'],
    [b, 'm3'],
    [b, 'm1'],
  ] as const)
    await open(t, id);
  await settled(4, 'each pod counts m3 once on its own memory');
  assert.equal(
    await sum(trackers, 'mailfleet_tracker_unique_opens_fallback_total'),
    3,
    'three opens decided per pod',
  );

  // Back: m4 at both pods counts once again.
  await redis.restart();
  await up(1);
  await open(a, 'm4');
  await open(b, 'm4');
  await settled(5, 'm4 once across both pods');
  assert.equal(await sum(trackers, 'mailfleet_tracker_unique_opens_fallback_total'), 3);
  process.stdout.write(
    `# unique opens: human fetches=${await sum(trackers, 'mailfleet_tracker_opens_total', { sending_domain: 'shop.example', reader: 'human' })} unique=${await unique()} (per-pod memory alone would count 7) fallback=3\n`,
  );
});
