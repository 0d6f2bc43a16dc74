// Per-destination TLS policy of direct delivery against real peers: smtp-server MX hosts with a
// certificate from an openssl-made CA, one for another name, an expired one, a self-signed one and
// none at all, found through dnsmasq. The relay trusts the CA through NODE_EXTRA_CA_CERTS. The
// set-up is the shared TLS fixture (helpers/tls/fixture.ts).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
import { startTlsFixture, type PeerSpec, type TlsFixture } from '../helpers/tls/fixture.ts';

/** MX hosts: name, address, what they present. */
const HOSTS = {
  good: { name: 'mx.good.test', address: '127.0.0.2' },
  wrongname: { name: 'mx.wrongname.test', address: '127.0.0.3', cert: { names: ['other.test'] } },
  expired: { name: 'mx.expired.test', address: '127.0.0.4', cert: 'expired' },
  self: { name: 'mx.self.test', address: '127.0.0.5', cert: 'self-signed' },
  plain: { name: 'mx.plain.test', address: '127.0.0.6', cert: 'plain' },
} as const satisfies Record<string, PeerSpec>;
type HostKey = keyof typeof HOSTS;

interface Case {
  name: string;
  /** Recipient domain; its MX hosts in preference order. */
  domain: string;
  mx: HostKey[];
  /** Outcome, the host that got the message (delivered), the TLS result in the accounting log. */
  outcome: 'delivered' | 'deferred';
  host?: HostKey;
  policy: string;
  tlsResult: string;
}

const CASES: Case[] = [
  {
    name: 'verify: a trusted certificate naming the MX host is used',
    domain: 'verify-good.test',
    mx: ['good'],
    outcome: 'delivered',
    host: 'good',
    policy: 'verify',
    tlsResult: 'success',
  },
  {
    name: 'verify: a certificate for another name defers',
    domain: 'verify-name.test',
    mx: ['wrongname'],
    outcome: 'deferred',
    policy: 'verify',
    tlsResult: 'certificate-host-mismatch',
  },
  {
    name: 'verify: an expired certificate defers',
    domain: 'verify-expired.test',
    mx: ['expired'],
    outcome: 'deferred',
    policy: 'verify',
    tlsResult: 'certificate-expired',
  },
  {
    name: 'verify: a self-signed certificate defers',
    domain: 'verify-self.test',
    mx: ['self'],
    outcome: 'deferred',
    policy: 'verify',
    tlsResult: 'certificate-not-trusted',
  },
  {
    name: 'verify: a wildcard override covers a subdomain',
    domain: 'eu.partner.test',
    mx: ['self'],
    outcome: 'deferred',
    policy: 'verify',
    tlsResult: 'certificate-not-trusted',
  },
  {
    name: 'verify: when the first MX fails the policy the next MX that meets it gets the mail',
    domain: 'verify-fallback.test',
    mx: ['self', 'good'],
    outcome: 'delivered',
    host: 'good',
    policy: 'verify',
    tlsResult: 'success',
  },
  {
    name: 'encrypt: no STARTTLS defers, nothing goes in clear text',
    domain: 'encrypt-plain.test',
    mx: ['plain'],
    outcome: 'deferred',
    policy: 'encrypt',
    tlsResult: 'starttls-not-supported',
  },
  {
    name: 'encrypt: a self-signed certificate is good enough',
    domain: 'encrypt-self.test',
    mx: ['self'],
    outcome: 'delivered',
    host: 'self',
    policy: 'encrypt',
    tlsResult: 'success',
  },
  {
    name: 'opportunistic (the default): clear text when STARTTLS is not offered',
    domain: 'opp-plain.test',
    mx: ['plain'],
    outcome: 'delivered',
    host: 'plain',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
  {
    name: 'opportunistic: a self-signed certificate is used',
    domain: 'opp-self.test',
    mx: ['self'],
    outcome: 'delivered',
    host: 'self',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
];

describe('relay outbound TLS policy', () => {
  let fixture: TlsFixture;
  const peers = new Map<HostKey, SmtpPeer>();
  let relay: RelayProcess;
  let spool: string;

  before(async () => {
    fixture = await startTlsFixture({
      prefix: 'tlsca',
      peers: Object.values(HOSTS),
      dns: () => [
        ...Object.values(HOSTS).map((h) => `--host-record=${h.name},${h.address}`),
        ...CASES.flatMap((c) => c.mx.map((m, i) => `--mx-host=${c.domain},${HOSTS[m].name},${10 * (i + 1)}`)),
      ],
    });
    for (const key of Object.keys(HOSTS) as HostKey[]) peers.set(key, fixture.peers.get(HOSTS[key].name)!);
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, 0, {
        delivery: fixture.delivery({
          tlsPolicy: {
            default: 'opportunistic',
            destinations: [
              { domain: 'verify-good.test', policy: 'verify' },
              { domain: 'verify-name.test', policy: 'verify' },
              { domain: 'verify-expired.test', policy: 'verify' },
              { domain: 'verify-self.test', policy: 'verify' },
              { domain: '*.partner.test', policy: 'verify' },
              { domain: 'verify-fallback.test', policy: 'verify' },
              { domain: 'encrypt-plain.test', policy: 'encrypt' },
              { domain: 'encrypt-self.test', policy: 'encrypt' },
            ],
          },
        }),
        // Deferred mail is retried every second or two: each retry meets the same refusal.
        retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h' },
        dsn: { enabled: false },
      }),
      undefined,
      fixture.env,
    );
    for (const c of CASES) {
      const r = await sendMessage(relay.ports.smtp, {
        from: 'a@example.com',
        to: [`rcpt@${c.domain}`],
        raw: rawMessage(c.domain),
      });
      assert.ok(r.ok, r.response);
    }
    await waitFor(
      async () => {
        const lines = await readAccounting(spool);
        return CASES.every((c) =>
          lines.some((l) => l.recipient === `rcpt@${c.domain}` && l.outcome === c.outcome),
        );
      },
      20000,
      'an outcome for every destination',
    );
  });
  after(async () => {
    await relay?.stop();
    await fixture?.stop();
    await removeDir(spool);
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const recipient = `rcpt@${c.domain}`;
      const line = (await readAccounting(spool)).find(
        (l) => l.recipient === recipient && l.outcome === c.outcome,
      );
      assert.equal(line?.tlsPolicy, c.policy);
      assert.equal(line?.tlsResult, c.tlsResult);
      const gotIt = [...peers.entries()].filter(([, p]) => p.delivered.includes(recipient)).map(([k]) => k);
      if (c.outcome === 'delivered') {
        assert.deepEqual(gotIt, [c.host]);
        assert.match(String(line?.host), new RegExp(`^${HOSTS[c.host!].name.replaceAll('.', '\\.')}\\[`));
        // Over TLS whenever the host offers it, whatever the policy.
        const rcpt = peers.get(c.host!)!.recipients.find((r) => r.address === recipient);
        assert.equal(rcpt?.tls, c.host !== 'plain');
      } else {
        assert.match(String(line?.reply), new RegExp(`ETLSPOLICY TLS ${c.policy} required: ${c.tlsResult}`));
        // Not even the envelope went to a host that failed the policy.
        for (const p of peers.values())
          assert.equal(
            p.recipients.some((r) => r.address === recipient),
            false,
          );
      }
    });
  }

  test('the metrics count recipients by destination, policy and result', async () => {
    const count = (labels: Record<string, string>) =>
      relay.metric('mailfleet_relay_outbound_tls_recipients_total', labels);
    for (const c of CASES)
      assert.ok(
        (await count({ destination: c.domain, policy: c.policy, result: c.tlsResult })) >= 1,
        `${c.domain} ${c.policy} ${c.tlsResult}`,
      );
    assert.equal(await count({ destination: 'verify-good.test', result: 'certificate-not-trusted' }), 0);
  });
});
