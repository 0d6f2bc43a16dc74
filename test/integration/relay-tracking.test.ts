// Link tracking through a real relay process: newsletters submitted over SMTP arrive at the
// upstream rewritten (tracked links, one open pixel), still parse, and carry a DKIM signature made
// after the rewrite that two independent verifiers (mailauth, OpenDKIM) accept; every link resolves
// to its original through its token; a message the sender DKIM-signed for the same domain arrives
// byte for byte as submitted (apart from the relay's own headers) and is counted.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { generateDkimKey, publicKeyRecord } from '../../relay/src/dkim/keys.ts';
import { loadPrivateKey, signMessage } from '../../relay/src/dkim/sign.ts';
import {
  ROOT,
  metricValue,
  relayConfig,
  removeDir,
  stopProcess,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { dkimVerifiers, type DkimVerifiers } from '../helpers/relay/dkim-verify.ts';
import { newsletters, type Newsletter } from '../helpers/tracking/newsletters.ts';
import { hrefs, parsed, pixels, resolveLink } from '../helpers/tracking/links.ts';
import { openUrl } from '../../relay/src/tracking/links.ts';

const HOST = 't.shop.example';
const KEY = 'integration-tracking-key-0123456789';
const keys = [Buffer.from(KEY)];

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let upstream: ScriptedUpstream;
let relay: RelayProcess;
let dir: string;
let verifiers: DkimVerifiers;
/** `mailfleet tracker` with the pool's key: where every tracked link must lead back to its original. */
let tracker: { proc: ChildProcess; base: string; metrics: string };
/** The tracker paths of the delivered newsletters' pixels, each fetched once by checkNewsletter. */
const pixelPaths: string[] = [];

async function relayed(raw: Buffer, marker: string): Promise<string> {
  const r = await sendMessage(relay.ports.smtp, {
    from: 'bounce@shop.example',
    to: ['reader@example.org'],
    raw,
  });
  assert.ok(r.ok, r.response);
  await waitFor(() => upstream.received.some((m) => m.raw.includes(marker)), 10000, `delivery of ${marker}`);
  return upstream.received.find((m) => m.raw.includes(marker))!.raw;
}

before(async () => {
  upstream = await startScripted();
  cleanups.push(() => upstream.stop());
  dir = await tempDir('tracking');
  verifiers = dkimVerifiers(dir);
  cleanups.push(() => removeDir(dir));
  const pem = generateDkimKey('rsa-sha256');
  await writeFile(join(dir, 'dkim.pem'), pem);
  await writeFile(join(dir, 'tracking.key'), KEY + '\n');
  verifiers.dns.set('s1._domainkey.shop.example', publicKeyRecord(pem));
  relay = await startRelay(
    relayConfig(join(dir, 'spool'), upstream.port, {
      sendingDomains: [
        {
          domain: 'shop.example',
          dkim: { selector: 's1', algorithm: 'rsa-sha256', keyFile: join(dir, 'dkim.pem') },
          tracking: { opens: true, clicks: true, host: HOST },
        },
      ],
      tracking: { keyFile: join(dir, 'tracking.key') },
    }),
  );
  cleanups.push(() => relay.stop());
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/mailfleet.ts'),
      'tracker',
      '--key-file',
      join(dir, 'tracking.key'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--metrics-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => stopProcess(proc, 'SIGTERM'));
  let out = '';
  proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('"tracker started"'), 60_000, 'tracker to start');
  const ports = (JSON.parse(out.split('\n')[0]!) as { ports: { tracking: number; http: number } }).ports;
  tracker = {
    proc,
    base: `http://127.0.0.1:${ports.tracking}`,
    metrics: `http://127.0.0.1:${ports.http}/metrics`,
  };
});

describe('link tracking in the relay, before DKIM signing', () => {
  for (const n of newsletters()) {
    test(n.name, async () => {
      const marker = /Message-ID: <([^>]+)>/.exec(n.raw.toString('latin1'))![1]!;
      const raw = await relayed(n.raw, `<${marker}>`);
      const [verdict] = await verifiers.mailauth(raw);
      assert.equal(verdict?.status.result, 'pass', JSON.stringify(verdict?.status));
      assert.equal(verdict?.signingDomain, 'shop.example');
      const odk = verifiers.opendkim(raw, marker.replace(/\W/g, '_'));
      assert.ok(odk.pass, odk.output);
      await checkLinks(n, Buffer.from(raw, 'latin1'));
    });
  }

  test('a message DKIM-signed by the sender for the domain is delivered unmodified, and counted', async () => {
    const n = newsletters()[1]!;
    const senderKey = generateDkimKey('rsa-sha256');
    verifiers.dns.set('sender._domainkey.shop.example', publicKeyRecord(senderKey));
    const unique = Buffer.from(n.raw.toString('latin1').replace('<b64-latin1@', '<presigned@'), 'latin1');
    const signed = signMessage(unique, {
      domain: 'shop.example',
      selector: 'sender',
      algorithm: 'rsa-sha256',
      privateKey: loadPrivateKey(senderKey, 'rsa-sha256'),
    });
    const before = await relay.metric('mailfleet_relay_tracking_messages_total', {
      result: 'signed_by_sender',
    });
    const raw = await relayed(signed, '<presigned@');
    const body = (s: string) => s.slice(s.indexOf('\r\n\r\n'));
    assert.equal(body(raw), body(signed.toString('latin1')), 'body byte for byte');
    const verdicts = await verifiers.mailauth(raw);
    assert.ok(
      verdicts.some((v) => v.status.result === 'pass' && v.selector === 'sender'),
      'the sender signature still verifies',
    );
    assert.ok(
      (await relay.metric('mailfleet_relay_tracking_messages_total', { result: 'signed_by_sender' })) >
        before,
    );
  });

  test('the tracker counted the opens and clicks of the newsletters, per sending domain', async () => {
    const text = await (await fetch(tracker.metrics)).text();
    const opens = metricValue(text, 'mailfleet_tracker_opens_total', {
      sending_domain: 'shop.example',
      reader: 'human',
    });
    const clicks = metricValue(text, 'mailfleet_tracker_clicks_total', { sending_domain: 'shop.example' });
    const trackable = newsletters().reduce((sum, n) => sum + n.trackable.length, 0);
    assert.equal(opens, newsletters().filter((n) => !n.htmlSkipped).length);
    assert.ok(clicks >= trackable, `${clicks} clicks for ${trackable} distinct tracked links`);
  });

  test('a reader opening a message twice: one unique open, two opens', async () => {
    const human = { sending_domain: 'shop.example', reader: 'human' };
    const count = async () => {
      const text = await (await fetch(tracker.metrics)).text();
      return [
        metricValue(text, 'mailfleet_tracker_unique_opens_total', human),
        metricValue(text, 'mailfleet_tracker_opens_total', human),
      ];
    };
    // Each delivered pixel was fetched once so far: as many unique opens as opens.
    assert.deepEqual(await count(), [pixelPaths.length, pixelPaths.length]);
    // A new message of the domain (its token signed with the pool's key), opened twice.
    const again = openUrl(keys[0]!, HOST, 'shop.example', '<twice@shop.example>').slice(
      `https://${HOST}`.length,
    );
    const ua = {
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1',
    };
    for (let i = 0; i < 2; i++)
      assert.equal((await fetch(tracker.base + again, { headers: ua })).status, 200);
    assert.deepEqual(await count(), [pixelPaths.length + 1, pixelPaths.length + 2]);
    // A delivered newsletter's pixel fetched a second time adds an open, not a unique one.
    assert.equal((await fetch(tracker.base + pixelPaths[0]!, { headers: ua })).status, 200);
    assert.deepEqual(await count(), [pixelPaths.length + 1, pixelPaths.length + 3]);
  });

  test('rewritten messages and their links are counted per sending domain', async () => {
    assert.ok(
      (await relay.metric('mailfleet_relay_tracking_messages_total', {
        sending_domain: 'shop.example',
        result: 'rewritten',
      })) >= 4,
    );
    assert.ok(
      (await relay.metric('mailfleet_relay_tracking_links_total', { sending_domain: 'shop.example' })) >= 10,
    );
  });
});

async function checkLinks(n: Newsletter, raw: Buffer): Promise<void> {
  const before = await parsed(n.raw);
  const after = await parsed(raw);
  const html = after.html || '';
  const links = hrefs(html).map((h) => resolveLink(keys, HOST, h));
  assert.deepEqual(
    links.map((l) => l.url),
    hrefs(before.html || ''),
  );
  const tracked = new Set(links.filter((l) => l.token).map((l) => l.url));
  assert.deepEqual([...tracked].sort(), [...new Set(n.trackable)].sort());
  assert.equal(pixels(keys, HOST, html).length, n.htmlSkipped ? 0 : 1);
  // Through the tracker process: every tracked link redirects to its original, the pixel is a GIF.
  const browser = {
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1',
  };
  for (const href of hrefs(html).filter((h) => h.startsWith(`https://${HOST}/`))) {
    const res = await fetch(tracker.base + href.slice(`https://${HOST}`.length), {
      redirect: 'manual',
      headers: browser,
    });
    assert.equal(res.status, 302, href);
    assert.equal(res.headers.get('location'), resolveLink(keys, HOST, href).url);
  }
  for (const src of html.match(new RegExp(`https://${HOST.replace(/\./g, '\\.')}/o/[^"]+`, 'g')) ?? []) {
    pixelPaths.push(src.slice(`https://${HOST}`.length));
    const res = await fetch(tracker.base + src.slice(`https://${HOST}`.length), { headers: browser });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/gif');
  }
}
