// TLS-RPT in a relay of two worker processes (config `workers`): both workers deliver to an
// MTA-STS MX (their own sessions), worker 1 sends the sessions it counts through the primary to
// worker 0, and POST /api/tlsrpt/send on the primary's management port (which reaches worker 0)
// sends one report for the domain with every session of the relay: as many as the MX saw.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  readAccounting,
  relayConfig,
  removeDir,
  startRelay,
  submitMany,
  tempDir,
  waitFor,
  writeConfig,
  type RelayProcess,
} from '../helpers/relay/peers.ts';
import { stsDnsRecords, stsPolicy, type StsSite } from '../helpers/tls/mta-sts.ts';
import { startTlsFixture, type TlsFixture } from '../helpers/tls/fixture.ts';
import { schemaProblems, startCollector, type Collector } from '../helpers/tls/tlsrpt.ts';

const POLICY_ADDRESS = '127.0.24.1';
const MX = { name: 'mx.w.rpt.test', address: '127.0.24.2' };
const SITES: Record<string, StsSite> = {
  'w.rpt.test': { id: '1', mx: MX, body: stsPolicy('enforce', [MX.name]) },
};
const MESSAGES = 12;

async function journalFiles(dir: string): Promise<number> {
  return (await readdir(join(dir, 'journal')).catch(() => [])).length;
}

describe('TLS-RPT from a relay with two worker processes', () => {
  let fixture: TlsFixture;
  let collector: Collector;
  let spool: string;
  let relay: RelayProcess;
  let config: ReturnType<typeof relayConfig>;

  before(async () => {
    fixture = await startTlsFixture({
      prefix: 'tlsrpt-workers',
      peers: [MX],
      sites: SITES,
      policyAddress: POLICY_ADDRESS,
      dns: async ({ ca }) => {
        collector = await startCollector(ca);
        return [
          ...stsDnsRecords(SITES, POLICY_ADDRESS, [MX]),
          `--txt-record=_smtp._tls.w.rpt.test,v=TLSRPTv1; rua=${collector.url('/w')}`,
        ];
      },
    });
    spool = await tempDir('spool');
    config = relayConfig(spool, 0, {
      workers: 2,
      delivery: fixture.delivery({
        tlsPolicy: { default: 'mta-sts' },
        tlsReports: { organizationName: 'Workers', from: 'tlsrpt@example.com' },
      }),
      dsn: { enabled: false },
    });
    // The sending domain suspended at first: the mail is held in the shards that took it (their
    // journals), not delivered and removed before the test has looked.
    relay = await startRelay(
      { ...config, sendingDomains: [{ domain: 'example.com', suspended: true }] },
      undefined,
      fixture.env,
    );
  });
  after(async () => {
    await relay?.stop();
    await collector?.stop();
    await fixture?.stop();
    await removeDir(spool);
  });

  test("one report for the domain, with both workers' sessions", async () => {
    const acked = await submitMany(relay.ports.smtp, MESSAGES, 'w', (i) => `r${i}@w.rpt.test`);
    assert.equal(acked.length, MESSAGES);
    // Each worker took some of the mail (its shard's journal), and delivers what it took itself.
    assert.ok((await journalFiles(spool)) > 0, 'worker 0 spooled');
    assert.ok((await journalFiles(join(spool, 'shard-1'))) > 0, 'worker 1 spooled');
    await writeConfig(relay.configPath, config);
    await waitFor(
      async () => (await readAccounting(spool)).filter((l) => l.outcome === 'delivered').length === MESSAGES,
      20000,
      'every message delivered',
    );
    const sessions = fixture.peers.get(MX.name)!.tlsSessions.length;
    assert.ok(sessions >= 2, `a session per worker at least (${sessions})`);

    const today = new Date().toISOString().slice(0, 10);
    const res = await relay.http(`/api/tlsrpt/send?day=${today}`, { method: 'POST' });
    const body = (await res.json()) as { reports: { domain: string; ok: boolean }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.reports.map((r) => [r.domain, r.ok]),
      [['w.rpt.test', true]],
    );
    assert.equal(collector.posted.length, 1);
    const report = JSON.parse(gunzipSync(collector.posted[0]!.body).toString());
    assert.deepEqual(schemaProblems(report), []);
    assert.deepEqual(report.policies[0].summary, {
      'total-successful-session-count': sessions,
      'total-failure-session-count': 0,
    });
  });
});
