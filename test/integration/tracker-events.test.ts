// The tracker's opened/clicked events through a real `mailfleet tracker` process, run with the
// flags and volumes the operator renders into a pool's <pool>-tracker Deployment, and a real
// receiver: each open and click is one signed event with the sending domain, message id, URL and
// reader class; a receiver that is down gets them once it is back, from the tracker's outbox, or
// from a relay of the pool the stopping tracker handed them to.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ROOT,
  freePort,
  relayConfig,
  removeDir,
  startRelay,
  startSink,
  stopProcess,
  tempDir,
  waitFor,
  writeHandoffSecret,
} from '../helpers/relay/peers.ts';
import { startEventsReceiver } from '../helpers/events-receiver.ts';
import { clickUrl, openUrl } from '../../relay/src/tracking/links.ts';
import { relayPool } from '../helpers/operator/fixtures.ts';
import { withDefaults } from '../../operator/src/api/defaults.ts';
import { trackerDeployment } from '../../operator/src/desired/tracker.ts';
import { startTracker } from '../helpers/tracking/tracker.ts';

const KEY = 'tracker-events-key-0123456789abcdef';
const SECRET = 'tracker-events-secret-0123456789';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

test('the rendered tracker: opens and clicks become signed events, kept in the outbox while the receiver is down', async () => {
  const dir = await tempDir('tracker-events');
  const receiver = await startEventsReceiver(Buffer.from(SECRET));
  cleanups.push(
    () => removeDir(dir),
    () => receiver.stop(),
  );
  receiver.mode = 503;
  // The flags, Secret files and outbox directory the operator renders for a pool with
  // spec.events, with each volume a directory here and the ports on loopback.
  const pool = withDefaults(
    relayPool({
      events: { url: receiver.url, secretRef: { name: 'hook', key: 'hmac' }, batchInterval: '100ms' },
    }),
  ).resource;
  const podSpec = trackerDeployment({ pool, image: 'mailfleet:test' }).spec!.template.spec!;
  const container = podSpec.containers[0]!;
  const local = new Map(container.volumeMounts!.map((m) => [m.mountPath, join(dir, m.name)]));
  for (const volume of podSpec.volumes!) {
    const at = local.get(container.volumeMounts!.find((m) => m.name === volume.name)!.mountPath)!;
    await mkdir(at, { recursive: true });
    const file = volume.secret?.items?.[0]?.path;
    if (file) await writeFile(join(at, file), volume.secret?.secretName === 'hook' ? SECRET : KEY);
  }
  const args = container.args!.map((arg) => {
    const mount = [...local.keys()].find((m) => arg.startsWith(`${m}/`) || arg === m);
    return mount ? local.get(mount)! + arg.slice(mount.length) : arg;
  });
  const set = (flag: string, value: string) => (args[args.indexOf(flag) + 1] = value);
  set('--port', '0');
  set('--metrics-port', '0');
  const proc = spawn(process.execPath, [join(ROOT, 'bin/mailfleet.ts'), ...args, '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => stopProcess(proc, 'SIGTERM'));
  let out = '';
  proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => out.includes('"tracker started"'), 60_000, 'tracker to start');
  const ports = (
    JSON.parse(out.split('\n').find((l) => l.includes('tracker started'))!) as {
      ports: { tracking: number };
    }
  ).ports;
  const base = `http://127.0.0.1:${ports.tracking}`;
  const key = Buffer.from(KEY);
  const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };
  const path = (url: string) => url.slice('https://t.example'.length);
  assert.equal(
    (await fetch(base + path(openUrl(key, 't.example', 'shop.example', 'm1@shop')), { headers: browser }))
      .status,
    200,
  );
  const click = await fetch(
    base + path(clickUrl(key, 't.example', 'shop.example', 'm1@shop', 'https://shop.example/a')),
    {
      headers: browser,
      redirect: 'manual',
    },
  );
  assert.equal(click.status, 302);
  await fetch(base + path(openUrl(key, 't.example', 'shop.example', 'm2@shop')), {
    headers: { 'user-agent': 'GoogleImageProxy' },
  });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(receiver.events.length, 0, 'nothing arrives while the receiver answers 503');
  receiver.mode = 200;
  await waitFor(() => receiver.events.length >= 3, 20000, 'the three events');
  assert.deepEqual(
    receiver.events.map((e) => [e.type, e.sendingDomain, e.messageId, e.url, e.reader]),
    [
      ['opened', 'shop.example', 'm1@shop', undefined, 'human'],
      ['clicked', 'shop.example', 'm1@shop', 'https://shop.example/a', 'human'],
      ['opened', 'shop.example', 'm2@shop', undefined, 'machine'],
    ],
  );
  assert.equal(new Set(receiver.events.map((e) => e.id)).size, 3, 'each fetch is its own event');
  assert.equal(receiver.badSignatures, 0);

  // A rotated Secret: the kubelet replaces the mounted file; the next batch is signed with it.
  const rotated = 'tracker-events-rotated-secret-0123';
  const secretFile = args[args.indexOf('--events-secret-file') + 1]!;
  await writeFile(`${secretFile}.new`, rotated);
  await rename(`${secretFile}.new`, secretFile);
  receiver.secret = Buffer.from(rotated);
  await fetch(base + path(openUrl(key, 't.example', 'shop.example', 'm3@shop')), { headers: browser });
  await waitFor(() => receiver.events.length >= 4, 20000, 'the event signed with the rotated secret');
  assert.equal(receiver.events[3]?.messageId, 'm3@shop');
  assert.equal(receiver.badSignatures, 0, 'signed with the new secret without a restart');
});

test('a stopping tracker sends what its outbox holds at once (its emptyDir goes with the pod)', async () => {
  const dir = await tempDir('tracker-flush');
  const receiver = await startEventsReceiver(Buffer.from(SECRET));
  cleanups.push(
    () => removeDir(dir),
    () => receiver.stop(),
  );
  await writeFile(join(dir, 'key'), KEY);
  await writeFile(join(dir, 'secret'), SECRET);
  // A batch interval far longer than the test: only the stop can send the event.
  const tracker = await startTracker(join(dir, 'key'), [
    ...['--events-url', receiver.url, '--events-secret-file', join(dir, 'secret')],
    ...['--events-dir', join(dir, 'outbox'), '--events-batch-interval', '10m'],
  ]);
  const open = openUrl(Buffer.from(KEY), 't.example', 'shop.example', 'flush@shop');
  const pixel = await fetch(tracker.base + open.slice('https://t.example'.length), {
    headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' },
  });
  assert.equal(pixel.status, 200);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(receiver.events.length, 0, 'the batch waits for its interval');
  const exited = new Promise<number | null>((r) => tracker.proc.once('exit', (code) => r(code)));
  tracker.proc.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.deepEqual(
    receiver.events.map((e) => [e.type, e.messageId]),
    [['opened', 'flush@shop']],
  );
});

test('a tracker stopped while the receiver is down hands its events to a relay of the pool; its outbox deleted, none is lost', async () => {
  const dir = await tempDir('tracker-handoff');
  const spool = await tempDir('tracker-handoff-spool');
  const receiver = await startEventsReceiver(Buffer.from(SECRET));
  const sink = await startSink();
  cleanups.push(
    () => removeDir(dir),
    () => removeDir(spool),
    () => receiver.stop(),
    () => sink.stop(),
  );
  receiver.mode = 503;
  await writeFile(join(dir, 'key'), KEY);
  await writeFile(join(dir, 'secret'), SECRET);
  const handoffSecret = await writeHandoffSecret(dir);
  const handoffPort = await freePort();
  const relay = await startRelay(
    relayConfig(spool, sink.port, {
      handoff: { host: '127.0.0.1', port: handoffPort, secretFile: handoffSecret, peers: [] },
      events: {
        url: receiver.url,
        secretFile: join(dir, 'secret'),
        batchInterval: '100ms',
        maxBackoff: '500ms',
      },
    }),
  );
  cleanups.push(() => relay.stop('SIGKILL'));
  const tracker = await startTracker(join(dir, 'key'), [
    ...['--events-url', receiver.url, '--events-secret-file', join(dir, 'secret')],
    ...['--events-dir', join(dir, 'outbox'), '--events-batch-interval', '100ms'],
    ...['--handoff-peers', `127.0.0.1:${handoffPort}`, '--handoff-secret-file', handoffSecret],
  ]);
  const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };
  const made = ['h1@shop', 'h2@shop', 'h3@shop'];
  for (const id of made) {
    const open = openUrl(Buffer.from(KEY), 't.example', 'shop.example', id);
    assert.equal(
      (await fetch(tracker.base + open.slice('https://t.example'.length), { headers: browser })).status,
      200,
    );
  }
  await waitFor(() => receiver.requests > 0, 10000, 'a refused batch');
  const exited = new Promise<number | null>((r) => tracker.proc.once('exit', (code) => r(code)));
  tracker.proc.kill('SIGTERM');
  assert.equal(await exited, 0);
  // The pod is gone and its emptyDir with it.
  await removeDir(join(dir, 'outbox'));
  assert.equal(await relay.metric('mailfleet_relay_handoff_received_events_total', { result: 'stored' }), 3);
  assert.equal(receiver.events.length, 0, 'nothing reached the receiver while it was down');
  receiver.mode = 200;
  await waitFor(() => receiver.events.length >= 3, 20000, 'the events from the relay');
  assert.deepEqual(
    receiver.events.map((e) => [e.type, e.messageId]),
    made.map((id) => ['opened', id]),
    'each once, in the order they happened',
  );
  assert.equal(receiver.badSignatures, 0);
});
