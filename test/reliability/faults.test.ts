// Faults around the relay: spool write/fsync errors injected at the fs-ops layer under load, a
// really full and a read-only filesystem (tmpfs mounted for the test, root only), corrupt spool
// files, an upstream down for a long time, DNS down. Every case: replies are well formed, what got
// 250 is delivered, nothing refused is delivered, nothing is bounced for a transient fault.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeSpoolFs, type SpoolFs } from '../../relay/src/spool/fs-ops.ts';
import { loadRuntime } from '../../relay/src/config/runtime.ts';
import { Relay } from '../../relay/src/relay.ts';
import { routeDomain, type DnsClient } from '../../relay/src/delivery/mx.ts';
import {
  freePort,
  relayConfig,
  removeDir,
  spawnDnsmasq,
  startRelay,
  stopProcess,
  tempDir,
  waitFor,
  writeConfig,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import {
  LONG,
  SmtpClient,
  dataBlock,
  report,
  sleep,
  startRecordingUpstream,
  type RecordingUpstream,
} from './lib/smtp.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function message(id: string, size = 1000): string {
  return `From: a@example.com\r\nTo: b@example.org\r\nSubject: fault ${id}\r\nX-Test-Id: ${id}\r\n\r\n${'y'.repeat(size)}\r\n`;
}

type Outcome = { id: string; code: number; text: string };

/** Sends `count` messages over `sessions` connections; each outcome is the reply to the final ".". */
async function load(port: number, prefix: string, count: number, sessions = 4, size = 1000) {
  const outcomes: Outcome[] = [];
  const malformed: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const c = await SmtpClient.connect(port);
      try {
        await c.reply();
        await c.command('EHLO fault.test');
        while (next < count) {
          const id = `${prefix}-${next++}`;
          const mail = await c.command('MAIL FROM:<a@example.com>');
          if (mail.code !== 250) {
            outcomes.push({ id, code: mail.code, text: mail.lines.join(' ') });
            continue;
          }
          await c.command('RCPT TO:<b@example.org>');
          const data = await c.command('DATA');
          if (data.code !== 354) {
            outcomes.push({ id, code: data.code, text: data.lines.join(' ') });
            continue;
          }
          c.write(dataBlock(message(id, size)));
          const r = await c.reply();
          outcomes.push({ id, code: r.code, text: r.lines.join(' ') });
        }
        await c.command('QUIT').catch(() => undefined);
      } finally {
        malformed.push(...c.malformed);
        c.close();
      }
    }),
  );
  return { outcomes, malformed };
}

async function queueEmpty(http: (p: string) => Promise<Response>): Promise<boolean> {
  return ((await (await http('/api/queue')).json()) as { messages: number }).messages === 0;
}

/** The checks every fault case ends with. */
function assertOutcomes(suite: string, outcomes: Outcome[], upstream: RecordingUpstream, extra = {}) {
  const acked = outcomes.filter((o) => o.code === 250);
  const refused = outcomes.filter((o) => o.code !== 250);
  for (const o of refused)
    assert.match(`${o.code} ${o.text}`, /^4(21|51|52) .*4\.\d\.\d/, `${o.id}: a transient refusal`);
  const lost = acked.filter((o) => !upstream.delivered.has(o.id)).map((o) => o.id);
  const leaked = refused.filter((o) => upstream.delivered.has(o.id)).map((o) => o.id);
  const duplicates = [...upstream.delivered.values()].filter((n) => n > 1).length;
  report(suite, {
    sent: outcomes.length,
    acked: acked.length,
    refused: refused.length,
    codes: [...new Set(refused.map((o) => o.code))].join('/') || '-',
    lost: lost.length,
    duplicates,
    ...extra,
  });
  assert.deepEqual(lost, [], 'every 250 delivered');
  assert.deepEqual(leaked, [], 'nothing refused delivered');
  assert.equal(duplicates, 0, 'no duplicates without a crash');
  assert.deepEqual(upstream.unknown, [], 'no DSNs or stray messages');
}

async function inProcessRelay(config: Record<string, unknown>, spoolFs: SpoolFs): Promise<Relay> {
  const dir = await tempDir('faults-cfg');
  cleanups.push(() => removeDir(dir));
  const configPath = join(dir, 'relay.yaml');
  await writeConfig(configPath, config);
  const loaded = await loadRuntime(configPath, { defaultHostname: 'test' });
  assert.ok(loaded.ok);
  const relay = new Relay({
    configPath,
    runtime: loaded.runtime,
    defaultHostname: 'test',
    log: () => {},
    spoolFs,
  });
  await relay.start();
  cleanups.push(() => relay.close());
  return relay;
}

function mount(args: string[]): boolean {
  return spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
}

describe('spool faults', () => {
  test('random write/fsync/rename errors injected at the spool layer under load → 451, nothing lost', async () => {
    const upstream = await startRecordingUpstream();
    const spool = await tempDir('faults-spool');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
    );
    let rate = 0.15;
    let injected = 0;
    const failing = new Set(['createFile', 'syncFile', 'syncDir', 'syncDirFd', 'renameSync']);
    // Any write-path call may fail with EIO or ENOSPC, as a sick disk would.
    const fs = new Proxy(nodeSpoolFs, {
      get(target, key: string) {
        const original = (target as unknown as Record<string, unknown>)[key];
        if (typeof original !== 'function' || !failing.has(key)) return original;
        return (...args: unknown[]) => {
          if (Math.random() < rate) {
            injected++;
            const code = Math.random() < 0.5 ? 'EIO' : 'ENOSPC';
            const err = Object.assign(new Error(`${code}: injected, ${key}`), { code });
            if (key === 'createFile' || key === 'renameSync') throw err;
            return Promise.reject(err);
          }
          return (original as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const relay = await inProcessRelay(relayConfig(spool, upstream.port, { dsn: { enabled: false } }), fs);
    const count = LONG ? 5000 : 600;
    const { outcomes, malformed } = await load(relay.ports.smtp!, 'inj', count, 6);
    rate = 0;
    await waitFor(() => relay.scheduler.messages.size === 0, 60_000, 'the queue to drain');
    await sleep(200);
    assert.deepEqual(malformed, []);
    assertOutcomes('injected-fs-errors', outcomes, upstream, { injected });
    assert.ok(injected > 0 && outcomes.some((o) => o.code === 451), 'faults were injected and seen');
  });

  test('a really full filesystem (tmpfs) → 452/451, then delivered when space returns; read-only → 451', async (t) => {
    const mnt = await tempDir('faults-tmpfs');
    if (process.getuid?.() !== 0 || !mount(['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt])) {
      await removeDir(mnt);
      t.skip('needs root and tmpfs mounts');
      return;
    }
    cleanups.push(async () => {
      spawnSync('umount', ['-l', mnt]);
      await removeDir(mnt);
    });
    const upstream = await startRecordingUpstream();
    cleanups.push(() => upstream.stop());
    upstream.refuse = true; // 451 upstream: everything stays queued and the disk fills up
    const relay = await startRelay(
      relayConfig(join(mnt, 'spool'), upstream.port, {
        spool: { dir: join(mnt, 'spool'), minFreeBytes: 0 },
        accounting: { file: '' },
        dsn: { enabled: false },
      }),
    );
    cleanups.push(() => relay.stop('SIGKILL'));
    const full = await load(relay.ports.smtp, 'full', 120, 4, 60_000);
    assert.ok(
      full.outcomes.some((o) => o.code !== 250),
      `the 4 MiB disk filled up (${full.outcomes.filter((o) => o.code === 250).length} accepted)`,
    );
    assert.equal(relay.proc.exitCode, null, 'the relay survives a full disk');
    upstream.refuse = false;
    await waitFor(() => queueEmpty(relay.http), 60_000, 'the queue to drain once the upstream is back');
    const again = await load(relay.ports.smtp, 'after', 10, 2, 60_000);
    assert.ok(
      again.outcomes.every((o) => o.code === 250),
      'space returned: accepted again',
    );
    // Read-only: remount under the running relay. The kernel refuses (EBUSY) while a file is open
    // for writing, which a relay does for a moment at a time (a batch's done log, a delayed queue
    // copy): retry until none is. A descriptor held open for good would never let it through.
    let remounted = false;
    for (let tries = 0; !remounted && tries < 100; tries++) {
      remounted = mount(['-o', 'remount,ro', mnt]);
      if (!remounted) await sleep(100);
    }
    assert.ok(remounted, 'the spool volume was remounted read-only within 10 s');
    const ro = await load(relay.ports.smtp, 'ro', 20, 2);
    assert.ok(mount(['-o', 'remount,rw', mnt]));
    assert.equal(relay.proc.exitCode, null, 'the relay survives a read-only spool');
    const back = await load(relay.ports.smtp, 'rw', 10, 2);
    await waitFor(() => queueEmpty(relay.http), 60_000, 'the queue to drain');
    await sleep(300);
    assert.deepEqual([...full.malformed, ...ro.malformed, ...again.malformed], []);
    assert.ok(
      ro.outcomes.every((o) => o.code !== 250),
      'nothing acknowledged on a read-only spool',
    );
    assertOutcomes(
      'full-and-readonly-fs',
      [...full.outcomes, ...again.outcomes, ...ro.outcomes, ...back.outcomes],
      upstream,
      {
        fullRefused: full.outcomes.filter((o) => o.code !== 250).length,
        readOnlyRefused: ro.outcomes.length,
      },
    );
  });

  test('corrupt spool files: each message is delivered intact or quarantined, never altered', async () => {
    const upstream = await startRecordingUpstream();
    const spool = await tempDir('faults-corrupt');
    cleanups.push(
      () => upstream.stop(),
      () => removeDir(spool),
    );
    upstream.refuse = true;
    const config = relayConfig(spool, upstream.port, { dsn: { enabled: false } });
    const first = await startRelay(config);
    const sent = await load(first.ports.smtp, 'cor', 40, 4, 3000);
    await first.stop('SIGKILL');
    const originals = new Map(
      sent.outcomes.filter((o) => o.code === 250).map((o) => [o.id, message(o.id, 3000)]),
    );
    // Damage a third of the files (queue copies and journal batches alike).
    let damaged = 0;
    for (const sub of ['queue', 'journal']) {
      const dir = join(spool, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!/\.(msg|jnl)$/.test(name) || Math.random() > 0.33) continue;
        const path = join(dir, name);
        const bytes = await readFile(path);
        const how = damaged++ % 3;
        if (how === 0) await truncate(path, Math.floor(bytes.length * Math.random()));
        else if (how === 1) {
          const at = Math.floor(bytes.length * Math.random());
          bytes[at] = bytes[at]! ^ 0x5a;
          await writeFile(path, bytes);
        } else
          await writeFile(path, Buffer.concat([bytes.subarray(0, 20), Buffer.from('garbage\n\x00\xff')]));
      }
    }
    await mkdir(join(spool, 'queue'), { recursive: true });
    await writeFile(join(spool, 'queue', 'JUNKJUNK.msg'), 'not a spool record at all');
    upstream.refuse = false;
    const second = await startRelay(config, first.configPath);
    cleanups.push(() => second.stop('SIGKILL'));
    await waitFor(() => queueEmpty(second.http), 30_000, 'the recovered queue to drain');
    await sleep(300);
    const quarantined = await second.metric('mailfleet_relay_spool_quarantined_total');
    const altered: string[] = [];
    for (const [id, raw] of upstream.bodies) {
      const original = originals.get(id);
      if (!original || !raw.endsWith(original)) altered.push(id);
    }
    report('corrupt-spool', {
      acked: originals.size,
      filesDamaged: damaged,
      delivered: upstream.delivered.size,
      quarantined,
      altered: altered.length,
    });
    assert.deepEqual(altered, [], 'nothing delivered that differs from what was accepted');
    assert.ok(quarantined >= 1, 'the junk file (at least) is quarantined');
    assert.ok((await readdir(join(spool, 'quarantine'))).includes('JUNKJUNK.msg'));
    assert.equal(second.proc.exitCode, null);
  });
});

describe('delivery faults', () => {
  test(`upstream down for ${LONG ? '3 minutes' : '12 s'} → deferred, then delivered on recovery`, async () => {
    let upstream = await startRecordingUpstream();
    const port = upstream.port;
    const spool = await tempDir('faults-down');
    cleanups.push(() => removeDir(spool));
    const relay = await startRelay(relayConfig(spool, port, { dsn: { enabled: false } }));
    cleanups.push(() => relay.stop('SIGKILL'));
    await upstream.stop();
    const downAt = Date.now();
    const sent = await load(relay.ports.smtp, 'down', 50, 4);
    await sleep(LONG ? 180_000 : 12_000);
    const deferred = await relay.metric('mailfleet_relay_recipients_deferred_total');
    const delivered = upstream.delivered.size;
    upstream = await startRecordingUpstream(port);
    const upAt = Date.now();
    cleanups.push(() => upstream.stop());
    await waitFor(() => queueEmpty(relay.http), 60_000, 'delivery after recovery');
    const recoveryMs = Date.now() - upAt;
    const bounced = await relay.metric('mailfleet_relay_recipients_bounced_total');
    assertOutcomes('upstream-down', sent.outcomes, upstream, {
      downSeconds: Math.round((upAt - downAt) / 1000),
      deferredAttempts: deferred,
      bounced,
      recoveryMs,
    });
    assert.equal(delivered, 0);
    assert.ok(deferred > 0, 'attempts were deferred while the upstream was down');
    assert.equal(bounced, 0, 'nothing bounced for a transient outage');
  });

  test('DNS down (no resolver answering) → deferred, not bounced; delivered once DNS is back', async () => {
    const dnsPort = await freePort();
    const mxPort = await freePort('127.0.0.2');
    const mx = await startRecordingUpstream(mxPort, '127.0.0.2');
    cleanups.push(() => mx.stop());
    const spool = await tempDir('faults-dns');
    cleanups.push(() => removeDir(spool));
    const relay: RelayProcess = await startRelay(
      relayConfig(spool, 0, {
        delivery: {
          mode: 'direct',
          dns: { servers: [`127.0.0.1:${dnsPort}`] },
          directPort: mxPort,
          connectTimeout: '2s',
        },
        dsn: { enabled: false },
      }),
    );
    cleanups.push(() => relay.stop('SIGKILL'));
    const sent = await load(relay.ports.smtp, 'dns', 20, 2);
    await waitFor(
      async () => (await relay.metric('mailfleet_relay_recipients_deferred_total')) >= 20,
      30_000,
      'DNS failures to defer every recipient',
    );
    const bouncedWhileDown = await relay.metric('mailfleet_relay_recipients_bounced_total');
    const dns: ChildProcess = spawnDnsmasq(dnsPort, [
      '--local=/org/',
      '--mx-host=example.org,mx.example.org,10',
      '--host-record=mx.example.org,127.0.0.2',
    ]);
    cleanups.push(() => stopProcess(dns, 'SIGTERM'));
    const upAt = Date.now();
    await waitFor(() => queueEmpty(relay.http), 60_000, 'delivery once DNS answers');
    assertOutcomes('dns-down', sent.outcomes, mx, {
      bouncedWhileDown,
      recoveryMs: Date.now() - upAt,
    });
    assert.equal(bouncedWhileDown, 0);
    assert.equal(await relay.metric('mailfleet_relay_recipients_bounced_total'), 0);
  });

  test('an MX lookup with no data whose A lookup then fails is deferred, not bounced', async () => {
    const fail = (code: string) => Promise.reject(Object.assign(new Error(code), { code }));
    const dns = {
      resolveMx: () => fail('ENODATA'),
      resolve4: () => fail('ESERVFAIL'),
      resolve6: () => fail('ETIMEOUT'),
    } as unknown as DnsClient;
    const r = await routeDomain('example.org', dns);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.permanent, false, `a DNS failure must defer: ${!r.ok && r.reply}`);
  });
});
