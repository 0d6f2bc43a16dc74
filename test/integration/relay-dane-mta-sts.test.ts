// DANE takes precedence over MTA-STS (RFC 8461 §2) against real parts: recipient domains that
// publish both an enforced MTA-STS policy (served over HTTPS by the shared TLS fixture) and TLSA
// records for their MX host in a zone knotd signs (unbound validating it). Each MX host presents a
// certificate that one policy accepts and the other refuses; control domains send to the same hosts
// under `mta-sts` alone, so each certificate's MTA-STS verdict is seen, not assumed. dnsmasq (the
// relay's delivery.dns) forwards the signed zone to the validating unbound, which DANE asks.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { relayConfig, removeDir, startRelay, tempDir, type RelayProcess } from '../helpers/relay/peers.ts';
import { stsPolicy, type StsSite } from '../helpers/tls/mta-sts.ts';
import { firstOutcome, startTlsFixture, type TlsFixture } from '../helpers/tls/fixture.ts';
import { spkiSha256 } from '../helpers/tls/test-ca.ts';
import { startDnssecDns, type DnssecDns } from '../helpers/dns/dnssec.ts';

const ZONE = 'both.test';
const DNS_ADDRESS = '127.0.74.53';
const POLICY_ADDRESS = '127.0.74.80';
const HOSTS = {
  /** A certificate of the trusted CA for another name: MTA-STS refuses it, its TLSA record matches. */
  daneOnly: { name: `mx-a.${ZONE}`, address: '127.0.74.61', cert: { names: [`elsewhere.${ZONE}`] } },
  /** A trusted certificate naming the MX host: MTA-STS accepts it, the TLSA record names another key. */
  stsOnly: { name: `mx-b.${ZONE}`, address: '127.0.74.62', cert: 'valid' as const },
};
type HostKey = keyof typeof HOSTS;

interface Case {
  name: string;
  domain: string;
  host: HostKey;
  /** The MTA-STS policy's mx patterns (enforce). */
  stsMx: string[];
  /** `mta-sts`: the control, a destination override that leaves DANE out. */
  override?: 'mta-sts';
  outcome: 'delivered' | 'deferred';
  policy: string;
  tlsResult: string;
}

const CASES: Case[] = [
  {
    name: 'both published, a certificate only the TLSA record accepts: delivered under DANE',
    domain: `dane-accepts.${ZONE}`,
    host: 'daneOnly',
    stsMx: [HOSTS.daneOnly.name],
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
  },
  {
    name: 'both published, a certificate only MTA-STS accepts: deferred by DANE',
    domain: `dane-refuses.${ZONE}`,
    host: 'stsOnly',
    stsMx: [`*.${ZONE}`],
    outcome: 'deferred',
    policy: 'dane',
    tlsResult: 'tlsa-invalid',
  },
  {
    name: 'control: MTA-STS alone refuses the first certificate (it names another host)',
    domain: `sts-refuses.${ZONE}`,
    host: 'daneOnly',
    stsMx: [HOSTS.daneOnly.name],
    override: 'mta-sts',
    outcome: 'deferred',
    policy: 'mta-sts',
    tlsResult: 'certificate-host-mismatch',
  },
  {
    name: 'control: MTA-STS alone accepts the second certificate',
    domain: `sts-accepts.${ZONE}`,
    host: 'stsOnly',
    stsMx: [`*.${ZONE}`],
    override: 'mta-sts',
    outcome: 'delivered',
    policy: 'mta-sts',
    tlsResult: 'success',
  },
];

describe('relay DANE over MTA-STS', () => {
  let fixture: TlsFixture;
  let dnssec: DnssecDns | undefined;
  let relay: RelayProcess;
  let spool: string;
  let dnsDir: string | undefined;
  const lines = new Map<string, Record<string, unknown>>();

  before(async () => {
    const sites: Record<string, StsSite> = Object.fromEntries(
      CASES.map((c) => [
        c.domain,
        { id: '1', mx: HOSTS[c.host], body: stsPolicy('enforce', c.stsMx) } satisfies StsSite,
      ]),
    );
    const dir = await tempDir('dane-sts-dns');
    dnsDir = dir;
    fixture = await startTlsFixture({
      prefix: 'dane-sts',
      peers: Object.values(HOSTS),
      sites,
      policyAddress: POLICY_ADDRESS,
      dns: async ({ certs }) => {
        dnssec = await startDnssecDns(dir, DNS_ADDRESS, [
          {
            origin: ZONE,
            signed: true,
            records: [
              ...Object.values(HOSTS).map((h) => `${h.name}. A ${h.address}`),
              `_25._tcp.${HOSTS.daneOnly.name}. TLSA 3 1 1 ${spkiSha256(certs.get(HOSTS.daneOnly.name)!.cert)}`,
              // The key of no certificate here.
              `_25._tcp.${HOSTS.stsOnly.name}. TLSA 3 1 1 ${createHash('sha256').update('another key').digest('hex')}`,
              ...CASES.flatMap((c) => [
                `${c.domain}. MX 10 ${HOSTS[c.host].name}.`,
                `mta-sts.${c.domain}. A ${POLICY_ADDRESS}`,
                `_mta-sts.${c.domain}. TXT "v=STSv1; id=1"`,
              ]),
            ],
          },
        ]);
        const [address, port] = dnssec.validating.split(':');
        return [`--server=/${ZONE}/${address}#${port}`];
      },
    });
    spool = await tempDir('spool');
    relay = await startRelay(
      relayConfig(spool, 0, {
        delivery: fixture.delivery({
          tlsPolicy: {
            default: 'dane-mta-sts',
            destinations: CASES.flatMap((c) =>
              c.override ? [{ domain: c.domain, policy: c.override }] : [],
            ),
            daneResolver: dnssec!.validating,
          },
        }),
        dsn: { enabled: false },
      }),
      undefined,
      fixture.env,
    );
    for (const c of CASES) lines.set(c.domain, await firstOutcome(relay, `rcpt@${c.domain}`));
  });
  after(async () => {
    await relay?.stop();
    if (spool) await removeDir(spool);
    await dnssec?.stop();
    if (dnsDir) await removeDir(dnsDir);
    await fixture?.stop();
  });

  for (const c of CASES)
    test(c.name, async () => {
      const recipient = `rcpt@${c.domain}`;
      const line = lines.get(c.domain)!;
      assert.equal(line.outcome, c.outcome);
      assert.equal(line.tlsPolicy, c.policy);
      assert.equal(line.tlsResult, c.tlsResult);
      // The relay fetched the domain's MTA-STS policy: it was there to be applied.
      assert.ok((fixture.policies!.fetches.get(c.domain) ?? 0) >= 1, `policy of ${c.domain} fetched`);
      const peer = fixture.peers.get(HOSTS[c.host].name)!;
      if (c.outcome === 'delivered') assert.ok(peer.delivered.includes(recipient));
      else {
        assert.match(
          String(line.reply),
          new RegExp(`ETLSPOLICY TLS ${c.policy === 'dane' ? 'dane' : 'verify'} required: ${c.tlsResult}`),
        );
        assert.equal(
          peer.recipients.some((r) => r.address === recipient),
          false,
        );
      }
      assert.ok(
        (await relay.metric('mailfleet_relay_outbound_tls_recipients_total', {
          destination: c.domain,
          policy: c.policy,
          result: c.tlsResult,
        })) >= 1,
      );
      const other = c.policy === 'dane' ? 'mta-sts' : 'dane';
      assert.equal(
        await relay.metric('mailfleet_relay_outbound_tls_recipients_total', {
          destination: c.domain,
          policy: other,
        }),
        0,
      );
    });
});
