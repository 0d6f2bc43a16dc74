// TLS-RPT (RFC 8460) report generation with the clock injected: sessions tallied on one day are
// reported once that day is over, to the rua that dnsmasq publishes at `_smtp._tls.<domain>`: a
// real HTTPS collector (certificate from an openssl-made CA the process trusts through
// tls.setDefaultCACertificates, as NODE_EXTRA_CA_CERTS would) and a mailto: rua, whose message
// is parsed with mailparser. The JSON is checked against the fields of RFC 8460 §4.4.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { gunzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import { removeDir, tempDir, waitFor } from '../helpers/relay/peers.ts';
import { startDnsmasq, type TestDns } from '../helpers/relay/dnsmasq.ts';
import { makeTestCa } from '../helpers/tls/test-ca.ts';
import { schemaProblems, startCollector, type Collector } from '../helpers/tls/tlsrpt.ts';
import { SendRefused, TlsReporter } from '../../relay/src/tlsrpt/reporter.ts';
import { postReport } from '../../relay/src/tlsrpt/post.ts';
import { stateFile } from '../../relay/src/tlsrpt/state-file.ts';
import { stsDescription } from '../../relay/src/tlsrpt/describe.ts';
import { dayOf, type TlsAttempt } from '../../relay/src/tlsrpt/tally.ts';
import { SharedTlsCounts } from '../../relay/src/shared-state/tls-reports.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { Redis } from 'ioredis';

const D1 = Date.parse('2026-12-04T08:00:00Z');
const attempt = (over: Partial<TlsAttempt>): TlsAttempt => ({
  domain: 'reports.test',
  policy: 'mta-sts',
  result: 'success',
  mx: 'mx.reports.test',
  address: '192.0.2.1',
  sendingIp: '',
  ...stsDescription({ mode: 'enforce', mx: ['mx.reports.test'], maxAge: 86400 }),
  ...over,
});

describe('TLS-RPT reports', () => {
  let dir: string;
  let dns: TestDns;
  let collector: Collector;
  let posted: Collector['posted'];
  const mailed: { from: string; to: string[]; body: Buffer }[] = [];
  let now = D1;
  let reporter: TlsReporter;

  before(async () => {
    dir = await tempDir('tlsrpt');
    const ca = await makeTestCa(dir);
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(ca.caFile, 'utf8')]);
    collector = await startCollector(ca);
    posted = collector.posted;
    dns = await startDnsmasq([
      // One domain per scheme: dnsmasq splits a TXT text at its commas, so one record cannot list both.
      `--txt-record=_smtp._tls.reports.test,v=TLSRPTv1; rua=${collector.url('/tlsrpt')}`,
      `--txt-record=_smtp._tls.mailrua.test,v=TLSRPTv1; rua=mailto:tls@mailrua.test`,
    ]);
    const resolver = new Resolver();
    resolver.setServers([dns.server]);
    reporter = new TlsReporter({
      settings: () => ({
        organizationName: 'Mailfleet Test',
        from: 'tlsrpt@sender.test',
        contactInfo: 'ops@sender.test',
      }),
      resolveTxt: (name) => resolver.resolveTxt(name),
      mail: async (from, to, body) => void mailed.push({ from, to, body }),
      post: postReport,
      now: () => now,
      instance: 'relay-a',
      log: () => undefined,
    });
    for (const domain of ['reports.test', 'mailrua.test']) {
      reporter.record(attempt({ domain }));
      reporter.record(attempt({ domain }));
      reporter.record(attempt({ domain, result: 'certificate-expired' }));
    }
    // No _smtp._tls record: tallied, never reported.
    reporter.record(attempt({ domain: 'silent.test' }));
  });
  after(async () => {
    await collector?.stop();
    await dns?.stop();
    await removeDir(dir);
  });

  test('nothing is sent before the day is over', async () => {
    now = Date.parse('2026-12-04T23:59:00Z');
    await reporter.sendFinishedDays();
    assert.equal(posted.length, 0);
    assert.equal(mailed.length, 0);
  });

  test('after midnight UTC the https rua gets the gzip JSON report, once', async () => {
    now = Date.parse('2026-12-05T00:30:00Z');
    await reporter.sendFinishedDays();
    await reporter.sendFinishedDays();
    assert.equal(posted.length, 1);
    assert.equal(posted[0]!.type, 'application/tlsrpt+gzip');
    const report = JSON.parse(gunzipSync(posted[0]!.body).toString());
    assert.deepEqual(schemaProblems(report), []);
    assert.equal(report['organization-name'], 'Mailfleet Test');
    assert.equal(report['contact-info'], 'ops@sender.test');
    assert.deepEqual(report['date-range'], {
      'start-datetime': '2026-12-04T00:00:00Z',
      'end-datetime': '2026-12-04T23:59:59Z',
    });
    assert.equal(report.policies.length, 1);
    const [p] = report.policies;
    assert.equal(p.policy['policy-type'], 'sts');
    assert.equal(p.policy['policy-domain'], 'reports.test');
    assert.deepEqual(p.summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 1 });
    assert.deepEqual(p['failure-details'], [
      {
        'result-type': 'certificate-expired',
        'receiving-mx-hostname': 'mx.reports.test',
        'receiving-ip': '192.0.2.1',
        'failed-session-count': 1,
      },
    ]);
  });

  test('the mailto rua gets a multipart/report message with the same report, once', async () => {
    assert.equal(mailed.length, 1);
    assert.deepEqual(mailed[0]!.to, ['tls@mailrua.test']);
    assert.equal(mailed[0]!.from, 'tlsrpt@sender.test');
    const parsed = await simpleParser(mailed[0]!.body);
    assert.equal(parsed.headers.get('tls-report-domain'), 'mailrua.test');
    assert.equal(parsed.headers.get('tls-report-submitter'), 'sender.test');
    assert.match(
      String(parsed.subject),
      /^Report Domain: mailrua\.test Submitter: sender\.test Report-ID: </,
    );
    const report = parsed.attachments.find((a) => a.contentType === 'application/tlsrpt+gzip');
    assert.match(
      String(report?.filename),
      /^sender\.test!mailrua\.test!1796342400!1796428799!\w+\.json\.gz$/,
    );
    const json = JSON.parse(gunzipSync(report!.content).toString());
    assert.deepEqual(schemaProblems(json), []);
    const [p] = json.policies;
    assert.equal(p.policy['policy-domain'], 'mailrua.test');
    const [posted1] = JSON.parse(gunzipSync(posted[0]!.body).toString()).policies;
    assert.deepEqual(p.summary, posted1.summary);
    assert.deepEqual(p['failure-details'], posted1['failure-details']);
  });

  test('a POST the collector refuses is tried again 5 minutes later, not before', async () => {
    reporter.record(attempt({}));
    collector.refuse.add('/tlsrpt');
    now = Date.parse('2026-12-06T00:30:00Z');
    const first = await reporter.sendFinishedDays();
    assert.deepEqual(
      first.map((r) => [r.domain, r.ok, r.detail]),
      [['reports.test', false, 'HTTP 503']],
    );
    collector.refuse.clear();
    now += 4 * 60_000;
    assert.deepEqual(await reporter.sendFinishedDays(), []);
    now += 60_000;
    const retried = await reporter.sendFinishedDays();
    assert.deepEqual(
      retried.map((r) => [r.domain, r.day, r.ok]),
      [['reports.test', '2026-12-05', true]],
    );
    const report = JSON.parse(gunzipSync(posted.at(-1)!.body).toString());
    assert.equal(report['date-range']['start-datetime'], '2026-12-05T00:00:00Z');
    assert.deepEqual(report.policies[0].summary, {
      'total-successful-session-count': 1,
      'total-failure-session-count': 0,
    });
    // Sent once: not retried again.
    now += 3600_000;
    assert.deepEqual(await reporter.sendFinishedDays(), []);
  });

  test('each domain gets its own report only', () => {
    assert.deepEqual(
      posted.map((p) => JSON.parse(gunzipSync(p.body).toString()).policies[0].policy['policy-domain']),
      ['reports.test', 'reports.test'],
    );
    assert.equal(mailed.length, 1);
  });

  test('a domain that publishes no TLSRPT record gets nothing', () => {
    const all = [
      ...posted.map((p) => gunzipSync(p.body).toString()),
      ...mailed.map((m) => m.body.toString()),
    ];
    assert.equal(
      all.some((x) => x.includes('silent.test')),
      false,
    );
  });
});

describe('TLS-RPT reports whose record lookup fails', () => {
  let dir: string;
  let dns: TestDns;
  let collector: Collector;
  let now = D1;
  let reporter: TlsReporter;
  const dropped: string[] = [];

  before(async () => {
    dir = await tempDir('tlsrpt-lookup');
    const ca = await makeTestCa(dir);
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(ca.caFile, 'utf8')]);
    collector = await startCollector(ca);
    // dnsmasq is authoritative for .test only: for late.example it answers REFUSED.
    dns = await startDnsmasq([]);
    // REFUSED comes at once; the timeout only has to outlast a stall of a loaded machine, which
    // would turn the exact EREFUSED into ETIMEOUT.
    const resolver = new Resolver({ timeout: 5000, tries: 1 });
    resolver.setServers([dns.server]);
    reporter = new TlsReporter({
      settings: () => ({
        organizationName: 'Lookup',
        from: 'tlsrpt@sender.test',
        contactInfo: 'ops@sender.test',
      }),
      resolveTxt: (name) => resolver.resolveTxt(name),
      mail: async () => undefined,
      post: postReport,
      now: () => now,
      instance: 'relay-a',
      log: () => undefined,
      dropped: (reason) => void dropped.push(reason),
    });
    reporter.record(attempt({ domain: 'late.example' }));
    reporter.record(attempt({ domain: 'late.example' }));
    reporter.record(attempt({ domain: 'late.example', result: 'certificate-expired' }));
    reporter.record(attempt({ domain: 'silent.test' }));
  });
  after(async () => {
    await collector?.stop();
    await dns?.stop();
    await removeDir(dir);
  });

  test('REFUSED: the counts are kept, and a domain with no record is dropped and counted', async () => {
    now = Date.parse('2026-12-05T00:30:00Z');
    const sent = await reporter.sendFinishedDays();
    assert.deepEqual(
      sent.map((r) => [r.domain, r.ok, r.detail]),
      [
        [
          'late.example',
          false,
          '_smtp._tls.late.example lookup failed (EREFUSED), retry at 2026-12-05T00:35:00.000Z',
        ],
      ],
    );
    assert.deepEqual(dropped, ['no-record']);
    assert.equal(collector.posted.length, 0);
  });

  test('the resolver down at the retry: still kept, looked up again 10 minutes later', async () => {
    await dns.stop();
    now += 4 * 60_000;
    assert.deepEqual(await reporter.sendFinishedDays(), []);
    now += 60_000;
    const sent = await reporter.sendFinishedDays();
    assert.deepEqual(
      sent.map((r) => [r.domain, r.ok, r.detail]),
      [
        [
          'late.example',
          false,
          '_smtp._tls.late.example lookup failed (ECONNREFUSED), retry at 2026-12-05T00:45:00.000Z',
        ],
      ],
    );
    assert.equal(collector.posted.length, 0);
  });

  test("the record back: the report arrives with the day's counts, once", async () => {
    dns = await startDnsmasq(
      [`--txt-record=_smtp._tls.late.example,v=TLSRPTv1; rua=${collector.url('/late')}`],
      dns.port,
    );
    now = Date.parse('2026-12-05T00:45:00Z');
    const sent = await reporter.sendFinishedDays();
    assert.deepEqual(
      sent.map((r) => [r.domain, r.ok, r.rua]),
      [['late.example', true, [collector.url('/late')]]],
    );
    assert.equal(collector.posted.length, 1);
    const report = JSON.parse(gunzipSync(collector.posted[0]!.body).toString());
    assert.deepEqual(schemaProblems(report), []);
    assert.deepEqual(report['date-range'], {
      'start-datetime': '2026-12-04T00:00:00Z',
      'end-datetime': '2026-12-04T23:59:59Z',
    });
    assert.equal(report.policies[0].policy['policy-domain'], 'late.example');
    assert.deepEqual(report.policies[0].summary, {
      'total-successful-session-count': 2,
      'total-failure-session-count': 1,
    });
    now += 3 * 3600_000;
    assert.deepEqual(await reporter.sendFinishedDays(), []);
    assert.equal(collector.posted.length, 1);
    assert.deepEqual(dropped, ['no-record']);
  });
});

describe('TLS-RPT reports across a pool with a shared store', () => {
  let dir: string;
  let dns: TestDns;
  let redis: RedisServer;
  let collector: Collector;
  const clients: Redis[] = [];
  let now = D1;
  const relays: TlsReporter[] = [];
  const ownState = (instance: string) => join(dir, `${instance}-tlsrpt.json`);
  /** Sessions a relay counted itself (every day), from its state file. */
  const ownCounts = async (instance: string) => {
    const state = await stateFile(ownState(instance)).load();
    return Object.values(state?.tally.days ?? {})
      .flatMap((counts) => Object.values(counts))
      .reduce((n, c) => n + c, 0);
  };

  before(async () => {
    dir = await tempDir('tlsrpt-pool');
    const ca = await makeTestCa(dir);
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(ca.caFile, 'utf8')]);
    collector = await startCollector(ca);
    dns = await startDnsmasq([`--txt-record=_smtp._tls.pool.test,v=TLSRPTv1; rua=${collector.url('/r')}`]);
    redis = await startRedis(dir);
    const resolver = new Resolver();
    resolver.setServers([dns.server]);
    for (const instance of ['relay-a', 'relay-b']) {
      // As the relay's store connection: commands fail at once while the store is down.
      const client = new Redis(redis.url, {
        password: redis.password,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 200,
      });
      client.on('error', () => undefined);
      await new Promise((r) => client.once('ready', r));
      clients.push(client);
      const reporter = new TlsReporter({
        settings: () => ({
          organizationName: 'Pool',
          from: 'tlsrpt@sender.test',
          contactInfo: 'ops@sender.test',
        }),
        resolveTxt: (name) => resolver.resolveTxt(name),
        mail: async () => undefined,
        post: postReport,
        now: () => now,
        instance,
        log: () => undefined,
        // The relay's own counts (those the store did not take) as the relay keeps them: in its
        // state file, written at each change here so a test can see them.
        store: stateFile(ownState(instance)),
        saveDelayMs: 0,
      });
      reporter.pool = new SharedTlsCounts({ redis: client, keyPrefix: 'mailfleet:test:' });
      relays.push(reporter);
    }
  });
  after(async () => {
    // Their last state file writes finish before the directory goes.
    for (const r of relays) await r.stop();
    for (const c of clients) c.disconnect();
    await redis?.stop();
    await collector?.stop();
    await dns?.stop();
    await removeDir(dir);
  });

  test('both relays count into one report, sent once by one of them', async () => {
    const [a, b] = relays as [TlsReporter, TlsReporter];
    a.record(attempt({ domain: 'pool.test' }));
    a.record(attempt({ domain: 'pool.test', result: 'certificate-expired' }));
    b.record(attempt({ domain: 'pool.test' }));
    b.record(attempt({ domain: 'pool.test' }));
    b.record(attempt({ domain: 'pool.test', result: 'certificate-expired', address: '192.0.2.9' }));
    // The counts reach the store asynchronously; wait until all five are there.
    await waitFor(
      async () => {
        const fields = await clients[0]!.hvals('mailfleet:test:tlsrpt:2026-12-04');
        return fields.reduce((n, v) => n + Number(v), 0) === 5;
      },
      5000,
      'the counts in the store',
    );
    now = Date.parse('2026-12-05T01:00:00Z');
    await Promise.all([a.sendFinishedDays(), b.sendFinishedDays()]);
    await a.sendFinishedDays();
    await b.sendFinishedDays();
    assert.equal(collector.posted.length, 1);
    const report = JSON.parse(gunzipSync(collector.posted[0]!.body).toString());
    assert.deepEqual(schemaProblems(report), []);
    const [p] = report.policies;
    assert.deepEqual(p.summary, { 'total-successful-session-count': 3, 'total-failure-session-count': 2 });
    assert.deepEqual(
      p['failure-details']
        .map((f: Record<string, unknown>) => [f['receiving-ip'], f['failed-session-count']])
        .sort(),
      [
        ['192.0.2.1', 1],
        ['192.0.2.9', 1],
      ],
    );
  });

  test("today cannot be sent early: the pool's counts leave once the day is over", async () => {
    const [a] = relays as [TlsReporter];
    await assert.rejects(a.sendNow(dayOf(now)), SendRefused);
  });

  test('with the store down, each relay reports what it counted itself', async () => {
    await redis.stop();
    const [a, b] = relays as [TlsReporter, TlsReporter];
    a.record(attempt({ domain: 'pool.test' }));
    b.record(attempt({ domain: 'pool.test', result: 'certificate-expired' }));
    now = Date.parse('2026-12-06T01:00:00Z');
    // The failed writes fall back to the relays' own tallies once each client sees the store gone.
    await waitFor(
      async () => (await ownCounts('relay-a')) === 1 && (await ownCounts('relay-b')) === 1,
      10_000,
      "each relay's own count of its session",
    );
    const before = collector.posted.length;
    await a.sendFinishedDays();
    await b.sendFinishedDays();
    const reports = collector.posted.slice(before).map((x) => JSON.parse(gunzipSync(x.body).toString()));
    assert.deepEqual(
      reports
        .map((r) => r.policies[0].summary)
        .sort((x, y) => x['total-successful-session-count'] - y['total-successful-session-count']),
      [
        { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
        { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
      ],
    );
  });
});
