// TLS-RPT (RFC 8460) in a running relay: real deliveries through `mailfleet relay` to smtp-server
// MX hosts with a certificate of the test CA (mx.good.rpt.test) and a self-signed one
// (mx.self.rpt.test) under MTA-STS policies served by helpers/tls/mta-sts.ts; dnsmasq publishes
// the MX, `_mta-sts` and `_smtp._tls` records the relay reads through `delivery.dns.servers`.
// Reports are sent through POST /api/tlsrpt/send (no clock is moved): to an https rua (the
// collector of helpers/tls/tlsrpt.ts, gunzipped and checked against RFC 8460 §4.4) and to a
// mailto rua, whose message goes through the relay's own spool to a sink MX and is parsed with
// mailparser. The relay is restarted between deliveries: counts and a pending retry survive.
// One connection per destination: messages reuse a session, and the reports count sessions (the
// TLS handshakes each peer saw), with the address each session came from as sending-mta-ip.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import {
  rawMessage,
  readAccounting,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  tempDir,
  waitFor,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import type { SmtpPeer } from '../helpers/tls/test-ca.ts';
import { stsDnsRecords, stsPolicy, type StsSite } from '../helpers/tls/mta-sts.ts';
import { startTlsFixture, type TlsFixture } from '../helpers/tls/fixture.ts';
import { schemaProblems, startCollector, type Collector } from '../helpers/tls/tlsrpt.ts';

const POLICY_ADDRESS = '127.0.23.1';
const GOOD = { name: 'mx.good.rpt.test', address: '127.0.23.2' };
const SELF = { name: 'mx.self.rpt.test', address: '127.0.23.5' };
const SINK = { name: 'mx.sink.rpt.test', address: '127.0.23.7' };

const SITES: Record<string, StsSite> = {
  'good.rpt.test': { id: '1', mx: GOOD, body: stsPolicy('enforce', [GOOD.name]) },
  // Delivered (testing mode) although the certificate does not verify: counted as failures.
  'testing.rpt.test': { id: '1', mx: SELF, body: stsPolicy('testing', [SELF.name]) },
  // Enforced against a certificate that does not verify: deferred, counted as failures.
  'badcert.rpt.test': { id: '1', mx: SELF, body: stsPolicy('enforce', [SELF.name]) },
};

interface Report {
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  policies: {
    policy: Record<string, unknown>;
    summary: Record<string, number>;
    'failure-details': Record<string, unknown>[];
  }[];
}

/** What sessions with mx.self.rpt.test (self-signed certificate) from `from` are reported as. */
const selfFailures = (count: number, from: string) => [
  {
    'result-type': 'certificate-not-trusted',
    'sending-mta-ip': from,
    'receiving-mx-hostname': SELF.name,
    'receiving-ip': SELF.address,
    'failed-session-count': count,
  },
];
const today = () => new Date().toISOString().slice(0, 10);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('TLS-RPT from a running relay', () => {
  let fixture: TlsFixture;
  let spool: string;
  let collector: Collector;
  let good: SmtpPeer;
  let self: SmtpPeer;
  let sink: SmtpPeer;
  let relay: RelayProcess;
  let config: Record<string, unknown>;
  let env: Record<string, string>;
  /** The end of the first report of today: the next one starts a second later. */
  let firstEnd = '';

  const deliver = async (domain: string, ids: string[], outcome: string) => {
    for (const id of ids) {
      const r = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: [`${id}@${domain}`],
        raw: rawMessage(id),
      });
      assert.ok(r.ok, r.response);
    }
    await waitFor(
      async () => {
        const lines = await readAccounting(spool);
        return ids.every((id) =>
          lines.some((l) => l.recipient === `${id}@${domain}` && l.outcome === outcome),
        );
      },
      15000,
      `${outcome} outcomes for ${ids.join(', ')}`,
    );
  };
  const sendReports = async (query = '') => {
    const res = await relay.http(`/api/tlsrpt/send${query}`, { method: 'POST' });
    const body = (await res.json()) as {
      reports: { domain: string; rua: string[]; ok: boolean; detail: string }[];
    };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.reports;
  };
  const postedReport = (path: string, nth = 0): Report => {
    const posts = collector.posted.filter((p) => p.path === path);
    assert.ok(posts[nth], `POST ${nth + 1} to ${path} (${collector.posted.length} posts in all)`);
    assert.equal(posts[nth]!.type, 'application/tlsrpt+gzip');
    const report = JSON.parse(gunzipSync(posts[nth]!.body).toString()) as Report;
    assert.deepEqual(schemaProblems(report), []);
    return report;
  };

  before(async () => {
    fixture = await startTlsFixture({
      prefix: 'tlsrpt-relay',
      peers: [GOOD, { ...SELF, cert: 'self-signed' }, SINK],
      sites: SITES,
      policyAddress: POLICY_ADDRESS,
      dns: async ({ ca }) => {
        collector = await startCollector(ca);
        return [
          ...stsDnsRecords(SITES, POLICY_ADDRESS, [GOOD, SELF, SINK]),
          `--mx-host=sink.rpt.test,${SINK.name},10`,
          // One rua a record: dnsmasq splits a TXT text at its commas.
          `--txt-record=_smtp._tls.good.rpt.test,v=TLSRPTv1; rua=${collector.url('/good')}`,
          `--txt-record=_smtp._tls.testing.rpt.test,v=TLSRPTv1; rua=${collector.url('/testing')}`,
          `--txt-record=_smtp._tls.badcert.rpt.test,v=TLSRPTv1; rua=mailto:tls@sink.rpt.test`,
        ];
      },
    });
    good = fixture.peers.get(GOOD.name)!;
    self = fixture.peers.get(SELF.name)!;
    sink = fixture.peers.get(SINK.name)!;
    spool = await tempDir('spool');
    config = relayConfig(spool, 0, {
      delivery: fixture.delivery({
        maxConnectionsPerDestination: 1,
        tlsPolicy: { default: 'mta-sts' },
        tlsReports: { organizationName: 'Mailfleet Test', from: 'tlsrpt@example.com' },
      }),
      // One attempt per deferred message within the test: the failure counts stay exact.
      retry: { firstRetry: '1h', maxBackoff: '1h', maxQueueLifetime: '1d' },
      dsn: { enabled: false },
    });
    env = fixture.env;
    relay = await startRelay(config, undefined, env);
  });
  after(async () => {
    await relay?.stop();
    await collector?.stop();
    await fixture?.stop();
    await removeDir(spool);
  });

  test('POST /api/tlsrpt/send: a read token, a bad day and a day not begun are refused', async () => {
    const read = await relay.http('/api/tlsrpt/send', {
      method: 'POST',
      headers: { authorization: 'Bearer test-read-token-not-secret-0001' },
    });
    assert.equal(read.status, 403);
    assert.equal((await relay.http('/api/tlsrpt/send?day=2026-13-01', { method: 'POST' })).status, 400);
    const tomorrow = new Date(Date.now() + 86400_000).toISOString().slice(0, 10);
    assert.equal((await relay.http(`/api/tlsrpt/send?day=${tomorrow}`, { method: 'POST' })).status, 409);
  });

  test("today's report: counts equal the TLS sessions, to the https and the mailto rua", async () => {
    await deliver('good.rpt.test', ['g1', 'g2', 'g3'], 'delivered');
    await deliver('testing.rpt.test', ['t1', 't2'], 'delivered');
    await deliver('badcert.rpt.test', ['b1', 'b2'], 'deferred');
    collector.refuse.add('/testing');
    const sent = await sendReports(`?day=${today()}`);
    assert.deepEqual(sent.map((r) => [r.domain, r.rua.join(' '), r.ok, r.detail]).sort(), [
      ['badcert.rpt.test', 'mailto:tls@sink.rpt.test', true, 'queued'],
      ['good.rpt.test', collector.url('/good'), true, 'HTTP 201'],
      ['testing.rpt.test', collector.url('/testing'), false, 'HTTP 503'],
    ]);

    const report = postedReport('/good');
    assert.equal(report['date-range']['start-datetime'], `${today()}T00:00:00Z`);
    firstEnd = report['date-range']['end-datetime'];
    assert.deepEqual(report.policies, [
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': ['version: STSv1', 'mode: enforce', `mx: ${GOOD.name}`, 'max_age: 86400'],
          'policy-domain': 'good.rpt.test',
          'mx-host': [GOOD.name],
        },
        summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
        'failure-details': [],
      },
    ]);
    // Three messages, one session (RFC 8460 counts sessions).
    assert.equal(good.tlsSessions.length, 1);
    // testing.rpt.test: two messages over one session; badcert.rpt.test: two sessions refused.
    assert.equal(self.tlsSessions.length, 3);
    const from = self.tlsSessions[0]!;
    assert.ok(self.tlsSessions.every((a) => a === from));

    await waitFor(() => sink.messages.length > 0, 15000, 'the mailed report at the sink');
    const [mail] = sink.messages;
    assert.deepEqual(mail!.to, ['tls@sink.rpt.test']);
    assert.equal(mail!.from, 'tlsrpt@example.com');
    const parsed = await simpleParser(mail!.raw);
    assert.equal(parsed.headers.get('tls-report-domain'), 'badcert.rpt.test');
    assert.equal(parsed.headers.get('tls-report-submitter'), 'example.com');
    const attachment = parsed.attachments.find((a) => a.contentType === 'application/tlsrpt+gzip');
    assert.match(String(attachment?.filename), /^example\.com!badcert\.rpt\.test!\d+!\d+!\w+\.json\.gz$/);
    const mailed = JSON.parse(gunzipSync(attachment!.content).toString()) as Report;
    assert.deepEqual(schemaProblems(mailed), []);
    assert.deepEqual(mailed.policies[0]!.summary, {
      'total-successful-session-count': 0,
      'total-failure-session-count': 2,
    });
    assert.deepEqual(mailed.policies[0]!['failure-details'], selfFailures(2, from));
  });

  test('counts and a failed POST survive a restart; the retry and the rest of the day are sent', async () => {
    await deliver('good.rpt.test', ['g4', 'g5'], 'delivered');
    await relay.stop();
    relay = await startRelay(config, relay.configPath, env);
    await deliver('good.rpt.test', ['g6'], 'delivered');
    collector.refuse.clear();

    // No day: every pending retry (and finished day) now.
    const retried = await sendReports();
    assert.deepEqual(
      retried.map((r) => [r.domain, r.ok]),
      [['testing.rpt.test', true]],
    );
    const testing = postedReport('/testing');
    assert.deepEqual(testing.policies[0]!.summary, {
      'total-successful-session-count': 0,
      'total-failure-session-count': 1,
    });
    assert.deepEqual(testing.policies[0]!['failure-details'], selfFailures(1, self.tlsSessions[0]!));

    const sent = await sendReports(`?day=${today()}`);
    assert.ok(sent.some((r) => r.domain === 'good.rpt.test' && r.ok));
    const second = postedReport('/good', 1);
    // g4 and g5 went over the session already counted in the first report; g6, after the
    // restart, over a new one: one session more, nothing of the first report again.
    assert.equal(good.tlsSessions.length, 2);
    assert.deepEqual(second.policies[0]!.summary, {
      'total-successful-session-count': 1,
      'total-failure-session-count': 0,
    });
    assert.equal(second['date-range']['start-datetime'], iso(Date.parse(firstEnd) + 1000));
  });
});
