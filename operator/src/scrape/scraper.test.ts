import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RelayScraper, relayMetricsUrl } from './scraper.ts';
import { jsonLogger } from '../../../contract/log.ts';
import type { KubeObject } from '../desired/types.ts';
import { sendingDomain } from '../../../test/helpers/operator/fixtures.ts';

/** The pool's relay readings (the pods a drain waits for). */
const relays = (scraper: RelayScraper) =>
  scraper.scrapedPods('mail', 'transactional').flatMap((p) => (p.kind === 'relay' ? [p] : []));

const pod = (name: string, ready: boolean): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'mail', labels: { 'mailfleet.dev/pool': 'transactional' } },
  status: { podIP: '192.0.2.1', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

test('the scraper measures Ready relays through the override file and requeues on change', async () => {
  // One relay whose counters the test moves; its process started "now", inside the window.
  let delivered = 0;
  let bounced = 0;
  const started = Date.now() / 1000;
  const server = createServer((_req, res) =>
    res.end(
      [
        `mailfleet_relay_recipients_delivered_total{sending_domain="a.com",destination="x"} ${delivered}`,
        `mailfleet_relay_recipients_bounced_total{sending_domain="a.com",category="user"} ${bounced}`,
        `mailfleet_relay_process_start_time_seconds ${started}`,
      ].join('\n'),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  // The not-Ready pod maps to the same relay: counted twice if readiness were ignored.
  writeFileSync(
    targets,
    JSON.stringify({
      'mail/relay-0': `http://127.0.0.1:${port}/metrics`,
      'mail/relay-1': `http://127.0.0.1:${port}/metrics`,
    }),
  );
  const requeued: string[] = [];
  const domain = sendingDomain('a.com', { bouncePolicy: { window: '10m' } });
  const scraper = new RelayScraper({
    pods: () => [pod('relay-0', true), pod('relay-1', false)],
    domains: () => [domain],
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: (key) => requeued.push(key),
  });
  try {
    await scraper.scrapeOnce();
    assert.deepEqual(requeued, ['mail/transactional'], 'first measurement requeues the pool');
    assert.deepEqual(scraper.measurements('mail', 'transactional', [domain]).get('a-com'), {
      bounced: 0,
      total: 0,
    });

    await scraper.scrapeOnce();
    assert.equal(requeued.length, 1, 'nothing changed: no requeue');

    delivered = 30;
    bounced = 10;
    await scraper.scrapeOnce();
    assert.equal(requeued.length, 2, 'changed counters requeue the pool');
    assert.deepEqual(scraper.measurements('mail', 'transactional', [domain]).get('a-com'), {
      bounced: 10,
      total: 40,
    });
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metrics URLs of IPv4 and IPv6 pods', () => {
  assert.equal(relayMetricsUrl('10.1.2.3'), 'http://10.1.2.3:8080/metrics');
  assert.equal(relayMetricsUrl('fd00:10:244::5'), 'http://[fd00:10:244::5]:8080/metrics');
  assert.equal(new URL(relayMetricsUrl('fd00:10:244::5')).hostname, '[fd00:10:244::5]');
});

test('a failed scrape is counted and warned about once per failure streak', async () => {
  const server = createServer((_req, res) => res.end('mailfleet_relay_process_start_time_seconds 1'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  const point = (to: string) => writeFileSync(targets, JSON.stringify({ 'mail/relay-0': to }));
  const results: string[] = [];
  const lines: string[] = [];
  const scraper = new RelayScraper({
    pods: () => [pod('relay-0', true)],
    domains: () => [],
    log: jsonLogger((line) => lines.push(line)),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: () => {},
    onScrape: (result) => results.push(result),
    fetchTimeoutMs: 2_000,
  });
  try {
    point('http://127.0.0.1:1/metrics'); // nothing listens on port 1
    await scraper.scrapeOnce();
    await scraper.scrapeOnce();
    point(`http://127.0.0.1:${port}/metrics`);
    await scraper.scrapeOnce();
    assert.deepEqual(results, ['error', 'error', 'success']);
    const messages = lines.map((l) => (JSON.parse(l) as { level: string; msg: string }).msg);
    assert.deepEqual(
      messages.filter((m) => m.startsWith('relay')),
      ['relay not scraped', 'relay scraped again'],
    );
    assert.equal((JSON.parse(lines[0] ?? '{}') as { level: string }).level, 'warn');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a relay losing the shared store requeues its pool (no SendingDomain needed) and shows in its reading', async () => {
  let up = 1;
  const server = createServer((_req, res) =>
    res.end(
      [
        `mailfleet_relay_shared_state_up ${up}`,
        'mailfleet_relay_queue_oldest_message_age_seconds 0',
        `mailfleet_relay_process_start_time_seconds ${Date.now() / 1000}`,
      ].join('\n'),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  writeFileSync(targets, JSON.stringify({ 'mail/relay-0': `http://127.0.0.1:${port}/metrics` }));
  const requeued: string[] = [];
  const scraper = new RelayScraper({
    pods: () => [pod('relay-0', true)],
    domains: () => [],
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: (key) => requeued.push(key),
  });
  try {
    await scraper.scrapeOnce();
    assert.deepEqual(requeued, ['mail/transactional']);
    assert.equal(relays(scraper)[0]?.sharedStateUp, true);
    await scraper.scrapeOnce();
    assert.equal(requeued.length, 1, 'nothing changed: no requeue');
    up = 0;
    await scraper.scrapeOnce();
    assert.equal(requeued.length, 2, 'the store lost: requeued');
    assert.equal(relays(scraper)[0]?.sharedStateUp, false);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a tracker pod is scraped for the pool's rates and its events backlog, and is never one of the relays whose queues a drain waits for", async () => {
  let opens = 0;
  let trackerLag = 0;
  const started = Date.now() / 1000;
  const pages: Record<string, () => string> = {
    '/relay': () =>
      [
        'mailfleet_relay_recipients_delivered_total{sending_domain="a.com",destination="x"} 8',
        'mailfleet_relay_queue_oldest_message_age_seconds 0',
        'mailfleet_relay_events_oldest_age_seconds 0',
        `mailfleet_relay_process_start_time_seconds ${started}`,
      ].join('\n'),
    '/tracker': () =>
      [
        `mailfleet_tracker_unique_opens_total{sending_domain="a.com",reader="human"} ${opens}`,
        `mailfleet_tracker_opens_total{sending_domain="a.com",reader="human"} ${opens * 2}`,
        'mailfleet_tracker_opens_total{sending_domain="a.com",reader="machine"} 50',
        `mailfleet_tracker_events_oldest_age_seconds ${trackerLag}`,
        `mailfleet_tracker_process_start_time_seconds ${started}`,
      ].join('\n'),
  };
  const server = createServer((req, res) => res.end(pages[req.url ?? '']?.() ?? ''));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  writeFileSync(
    targets,
    JSON.stringify({ 'mail/relay-0': `${base}/relay`, 'mail/tracker-0': `${base}/tracker` }),
  );
  const tracker = pod('tracker-0', true);
  tracker.metadata!.labels!['app.kubernetes.io/name'] = 'mailfleet-tracker';
  const requeued: string[] = [];
  const domain = sendingDomain('a.com');
  const scraper = new RelayScraper({
    pods: () => [pod('relay-0', true), tracker],
    domains: () => [domain],
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: (key) => requeued.push(key),
  });
  try {
    await scraper.scrapeOnce();
    opens = 2;
    await scraper.scrapeOnce();
    assert.equal(requeued.length, 2, 'new opens requeue the pool (status.rates changes)');
    assert.deepEqual(scraper.rates('mail', 'transactional', [domain]).get('a-com'), {
      delivered: 8,
      bounced: 0,
      opens: 2,
      totalOpens: 4,
    });
    assert.deepEqual(
      relays(scraper).map((q) => [q.pod, q.queued]),
      [['relay-0', 0]],
    );
    trackerLag = 40;
    await scraper.scrapeOnce();
    assert.equal(requeued.length, 3, "the tracker's events backlog requeues the pool (EventsDelivering)");
    assert.deepEqual(
      scraper.scrapedPods('mail', 'transactional').map((p) => [p.kind, p.pod, p.eventsOldestSeconds]),
      [
        ['relay', 'relay-0', 0],
        ['tracker', 'tracker-0', 40],
      ],
    );
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a relay's intake closing requeues its pool; its reading carries when the intake first read closed", async () => {
  let open = 1;
  let clock = 1_000;
  const server = createServer((_req, res) =>
    res.end(
      [`mailfleet_relay_intake_open ${open}`, 'mailfleet_relay_queue_oldest_message_age_seconds 0'].join(
        '\n',
      ),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  writeFileSync(targets, JSON.stringify({ 'mail/relay-0': `http://127.0.0.1:${port}/metrics` }));
  const scraper = new RelayScraper({
    pods: () => [pod('relay-0', true)],
    domains: () => [],
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: (key) => requeued.push(key),
    now: () => clock,
  });
  const requeued: string[] = [];
  const reading = () => relays(scraper)[0];
  try {
    await scraper.scrapeOnce();
    assert.equal(reading()?.intakeClosedAt, undefined, 'open');
    open = 0;
    clock = 2_000;
    await scraper.scrapeOnce();
    assert.deepEqual([reading()?.intakeClosedAt, reading()?.scrapedAt], [2_000, 2_000]);
    assert.deepEqual(requeued, ['mail/transactional', 'mail/transactional'], 'first reading, then the flip');
    clock = 3_000;
    await scraper.scrapeOnce();
    assert.deepEqual([reading()?.intakeClosedAt, reading()?.scrapedAt, reading()?.queued], [2_000, 3_000, 0]);
    assert.equal(requeued.length, 2, 'closed again: no requeue');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a relay's events outbox and when it went quiet: intake closed, queue empty and no tracker pod of its pool in the cache", async () => {
  let unsent = 3;
  let clock = 1_000;
  const server = createServer((_req, res) =>
    res.end(
      [
        'mailfleet_relay_intake_open 0',
        'mailfleet_relay_queue_oldest_message_age_seconds 0',
        `mailfleet_relay_events_outbox_events ${unsent}`,
      ].join('\n'),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'scraper-'));
  const targets = path.join(dir, 'targets.json');
  writeFileSync(targets, JSON.stringify({ 'mail/relay-0': `http://127.0.0.1:${port}/metrics` }));
  // A stopping tracker pod: not Ready (not scraped), still in the cache.
  const tracker = pod('tracker-0', false);
  tracker.metadata!.labels!['app.kubernetes.io/name'] = 'mailfleet-tracker';
  let pods = [pod('relay-0', true), tracker];
  const scraper = new RelayScraper({
    pods: () => pods,
    domains: () => [],
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    intervalMs: 60_000,
    targetsFile: targets,
    onChange: () => undefined,
    now: () => clock,
  });
  const reading = () => relays(scraper)[0];
  try {
    await scraper.scrapeOnce();
    assert.deepEqual([reading()?.eventsUnsent, reading()?.quietSince], [3, undefined], 'tracker pod present');
    assert.deepEqual(
      scraper.scrapedPods('mail', 'transactional').map((p) => [p.kind, p.pod]),
      [
        ['relay', 'relay-0'],
        ['tracker', 'tracker-0'],
      ],
      'the stopping tracker pod is listed (a drain waits for it)',
    );
    pods = [pod('relay-0', true)];
    clock = 2_000;
    unsent = 0;
    await scraper.scrapeOnce();
    assert.deepEqual(
      [reading()?.eventsUnsent, reading()?.quietSince, reading()?.scrapedAt],
      [0, 2_000, 2_000],
    );
    clock = 3_000;
    await scraper.scrapeOnce();
    assert.deepEqual(
      [reading()?.eventsUnsent, reading()?.quietSince, reading()?.scrapedAt],
      [0, 2_000, 3_000],
    );
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
