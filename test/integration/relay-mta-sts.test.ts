// MTA-STS (RFC 8461) end to end: dnsmasq publishes the `_mta-sts` TXT records, MX records and the
// addresses of `mta-sts.<domain>`; a Node HTTPS server on 127.0.21.1:443 (helpers/tls/mta-sts.ts)
// serves the policies with certificates of an openssl-made CA that the relay trusts through
// NODE_EXTRA_CA_CERTS; smtp-server MX hosts present a certificate of that CA (mx.good.test) or a
// self-signed one (mx.self.test). The set-up is the shared TLS fixture (helpers/tls/fixture.ts).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { relayConfig, removeDir, startRelay, tempDir, type RelayProcess } from '../helpers/relay/peers.ts';
import type { SmtpPeer } from '../helpers/tls/test-ca.ts';
import {
  stsDnsRecords,
  stsPolicy as policy,
  type PolicyServer,
  type StsSite,
} from '../helpers/tls/mta-sts.ts';
import { firstOutcome, republishDns, startTlsFixture, type TlsFixture } from '../helpers/tls/fixture.ts';

const POLICY_ADDRESS = '127.0.21.1';
const GOOD = { name: 'mx.good.test', address: '127.0.21.2' };
const SELF = { name: 'mx.self.test', address: '127.0.21.5' };

const SITES: Record<string, StsSite> = {
  'sts-good.test': { id: '1', mx: GOOD, body: policy('enforce', ['mx.good.test']) },
  'sts-mismatch.test': { id: '1', mx: GOOD, body: policy('enforce', ['mx.elsewhere.test']) },
  'sts-badcert.test': { id: '1', mx: SELF, body: policy('enforce', ['*.self.test']) },
  'sts-testing.test': { id: '1', mx: SELF, body: policy('testing', ['mx.elsewhere.test']) },
  'sts-expired.test': { id: '1', mx: SELF, body: policy('enforce', ['mx.elsewhere.test']), expired: true },
  'sts-html.test': {
    id: '1',
    mx: SELF,
    body: policy('enforce', ['mx.elsewhere.test']),
    contentType: 'text/html',
  },
  'sts-big.test': {
    id: '1',
    mx: SELF,
    body: policy('enforce', ['mx.elsewhere.test']) + `x: ${'y'.repeat(70 * 1024)}\r\n`,
  },
  'sts-change.test': { id: '1', mx: GOOD, body: policy('enforce', ['mx.good.test']) },
};

const dnsRecords = () => stsDnsRecords(SITES, POLICY_ADDRESS, [GOOD, SELF]);

describe('relay MTA-STS', () => {
  let fixture: TlsFixture;
  let policies: PolicyServer;
  let good: SmtpPeer;
  let self: SmtpPeer;
  let relay: RelayProcess;
  let spool: string;

  /** Sends one message to `recipient`; its first accounting line. */
  const outcome = (recipient: string) => firstOutcome(relay, recipient);

  before(async () => {
    fixture = await startTlsFixture({
      prefix: 'mtasts',
      peers: [GOOD, { ...SELF, cert: 'self-signed' }],
      sites: SITES,
      policyAddress: POLICY_ADDRESS,
      dns: dnsRecords,
    });
    policies = fixture.policies!;
    good = fixture.peers.get(GOOD.name)!;
    self = fixture.peers.get(SELF.name)!;
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, 0, {
        delivery: fixture.delivery({ tlsPolicy: { default: 'mta-sts' } }),
        retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h' },
        dsn: { enabled: false },
      }),
      undefined,
      fixture.env,
    );
  });
  after(async () => {
    await relay?.stop();
    await fixture?.stop();
    await removeDir(spool);
  });

  test('enforce: an MX host the policy lists, with a valid certificate, gets the mail', async () => {
    const line = await outcome('good1@sts-good.test');
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.tlsPolicy, 'mta-sts');
    assert.equal(line.tlsResult, 'success');
    assert.deepEqual(good.recipients, [{ address: 'good1@sts-good.test', tls: true }]);
  });

  test('enforce: an MX host the policy does not list gets nothing, the mail is deferred', async () => {
    const line = await outcome('mis1@sts-mismatch.test');
    assert.equal(line.outcome, 'deferred');
    assert.equal(line.tlsPolicy, 'mta-sts');
    assert.equal(line.tlsResult, 'validation-failure');
    assert.match(String(line.reply), /no MX host of sts-mismatch\.test is in its policy/);
    assert.equal(
      good.recipients.some((r) => r.address === 'mis1@sts-mismatch.test'),
      false,
    );
  });

  test('enforce: a listed MX host whose certificate does not verify gets nothing', async () => {
    const line = await outcome('bad1@sts-badcert.test');
    assert.equal(line.outcome, 'deferred');
    assert.equal(line.tlsResult, 'certificate-not-trusted');
    assert.equal(
      self.recipients.some((r) => r.address === 'bad1@sts-badcert.test'),
      false,
    );
  });

  test('testing: the mail goes although the policy is not met; the failures are reported', async () => {
    const line = await outcome('test1@sts-testing.test');
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.tlsPolicy, 'mta-sts-testing');
    assert.equal(line.tlsResult, 'certificate-not-trusted');
    const problems = relay.logs.filter(
      (l) => l.includes('outbound TLS policy problem') && l.includes('sts-testing.test'),
    );
    assert.ok(
      problems.some((l) => l.includes('"failure":"validation-failure"')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((l) => l.includes('"failure":"certificate-not-trusted"')),
      problems.join('\n'),
    );
  });

  test('an expired certificate on the policy host: no policy (delivered as opportunistic), reported', async () => {
    const line = await outcome('exp1@sts-expired.test');
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.tlsPolicy, 'opportunistic');
    assert.equal(
      policies.fetches.get('sts-expired.test'),
      undefined,
      'the TLS handshake failed before any request',
    );
    assert.ok(
      (await relay.metric('mailfleet_relay_outbound_tls_problems_total', {
        failure: 'sts-webpki-invalid',
      })) >= 1,
    );
    assert.ok(
      relay.logs.some(
        (l) =>
          l.includes('sts-expired.test') &&
          l.includes('"failure":"sts-webpki-invalid"') &&
          l.includes('CERT_HAS_EXPIRED'),
      ),
    );
  });

  test('a policy served as text/html is refused: no policy, reported', async () => {
    const line = await outcome('html1@sts-html.test');
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.tlsPolicy, 'opportunistic');
    assert.ok(
      relay.logs.some((l) => l.includes('sts-html.test') && l.includes('"failure":"sts-policy-fetch-error"')),
    );
  });

  test('a policy over 64 KiB is refused: no policy, reported', async () => {
    const line = await outcome('big1@sts-big.test');
    assert.equal(line.outcome, 'delivered');
    assert.equal(line.tlsPolicy, 'opportunistic');
    assert.ok(relay.logs.some((l) => l.includes('sts-big.test') && l.includes('larger than 65536 bytes')));
  });

  test('a policy is cached while its id stays, and fetched again when the id changes', async () => {
    assert.equal((await outcome('chg1@sts-change.test')).outcome, 'delivered');
    assert.equal(policies.fetches.get('sts-change.test'), 1);
    // The file changes but the TXT id does not: the cached policy still applies.
    SITES['sts-change.test']!.body = policy('enforce', ['mx.elsewhere.test']);
    assert.equal((await outcome('chg2@sts-change.test')).outcome, 'delivered');
    assert.equal(policies.fetches.get('sts-change.test'), 1);
    // A new id: the new policy is fetched, and it no longer lists the MX host.
    SITES['sts-change.test']!.id = '2';
    await republishDns(fixture, dnsRecords());
    const line = await outcome('chg3@sts-change.test');
    assert.equal(line.outcome, 'deferred');
    assert.equal(line.tlsResult, 'validation-failure');
    assert.equal(policies.fetches.get('sts-change.test'), 2);
  });
});
