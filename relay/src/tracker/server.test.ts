// The tracker over real HTTP (node:http on a loopback port, fetch with manual redirects).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { encodeToken } from '../tracking/links.ts';
import { PIXEL, listen, trackerHandler, trackerMetrics, type TrackerMetrics } from './server.ts';

const key = Buffer.from('server-test-key-0123456789abcdef');
const oldKey = Buffer.from('previous-key-0123456789abcdef');
let server: Server;
let base: string;
let metrics: TrackerMetrics;
let registry: Registry;

before(async () => {
  registry = new Registry();
  metrics = trackerMetrics(registry);
  server = await listen(trackerHandler({ keys: () => [key, oldKey], metrics }), 0, '127.0.0.1');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const click = (url: string, k = key, messageId = 'm1@shop.example') =>
  `/c/${encodeToken(k, { kind: 'click', domain: 'shop.example', messageId, url })}`;
const open = (k = key) =>
  `/o/${encodeToken(k, { kind: 'open', domain: 'shop.example', messageId: 'm1@shop.example' })}.gif`;
const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };
const value = async (name: string, labels: Record<string, string>) =>
  (await registry.getSingleMetric(name)!.get()).values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, string>)[k] === l))
    .reduce((sum, v) => sum + v.value, 0);

describe('tracker', () => {
  test('a signed link redirects to its original URL and counts a human click', async () => {
    const url = 'https://shop.example/p/1?utm_source=news&utm_medium=email';
    const res = await fetch(base + click(url), { redirect: 'manual', headers: browser });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), url);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(
      await value('mailfleet_tracker_clicks_total', { sending_domain: 'shop.example', reader: 'human' }),
      1,
    );
  });
  test('a link signed with the previous key still redirects', async () => {
    const res = await fetch(base + click('https://shop.example/old', oldKey), {
      redirect: 'manual',
      headers: browser,
    });
    assert.equal(res.headers.get('location'), 'https://shop.example/old');
  });
  const forged = [
    ['another key', click('https://evil.example/', Buffer.from('attacker-key-0123456789abcdef'))],
    [
      'a payload swapped, MAC kept',
      click('https://shop.example/ok').replace(
        /\/c\/[^.]+/,
        `/c/${Buffer.from(JSON.stringify(['c', 'shop.example', 'm1@shop.example', 'https://evil.example/'])).toString('base64url')}`,
      ),
    ],
    ['an open token used as a link', open().replace('/o/', '/c/').replace('.gif', '')],
    ['no token', '/c/'],
    ['an unknown path', '/redirect?url=https://evil.example/'],
  ];
  for (const [name, path] of forged)
    test(`never a redirect: ${name}`, async () => {
      const res = await fetch(base + path, { redirect: 'manual', headers: browser });
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('location'), null);
    });
  test('refusals are counted by reason', async () => {
    assert.ok((await value('mailfleet_tracker_refused_total', { reason: 'bad_token' })) >= 3);
    assert.ok((await value('mailfleet_tracker_refused_total', { reason: 'not_found' })) >= 1);
  });
  test('the pixel is a GIF, not cacheable, and counts a human open', async () => {
    const res = await fetch(base + open(), { headers: browser });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/gif');
    assert.match(res.headers.get('cache-control') ?? '', /no-store/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(PIXEL));
    assert.equal(await value('mailfleet_tracker_opens_total', { reader: 'human' }), 1);
  });
  test("Gmail's image proxy fetching the pixel is a machine open", async () => {
    await fetch(base + open(), { headers: { 'user-agent': 'Mozilla/5.0 (via ggpht.com GoogleImageProxy)' } });
    assert.equal(await value('mailfleet_tracker_opens_total', { reader: 'machine' }), 1);
    assert.equal(await value('mailfleet_tracker_opens_total', { reader: 'human' }), 1);
  });
  test('a scanner following every link of a message at once: the burst counts as machine', async () => {
    const before = await value('mailfleet_tracker_clicks_total', { reader: 'machine' });
    for (const n of [1, 2, 3, 4])
      await fetch(base + click(`https://shop.example/burst/${n}`, key, 'burst@shop.example'), {
        redirect: 'manual',
        headers: browser,
      });
    assert.equal(
      (await value('mailfleet_tracker_clicks_total', { reader: 'machine' })) - before,
      2,
      'third and fourth link',
    );
  });
  test('methods other than GET and HEAD are refused', async () => {
    const res = await fetch(base + open(), { method: 'POST' });
    assert.equal(res.status, 405);
  });
});
