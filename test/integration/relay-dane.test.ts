// DANE (RFC 7672) of direct delivery against real parts: knotd serves a zone it signs itself
// (dane.test) and an unsigned one (plain.test); unbound validates with dane.test's key as trust
// anchor, a second unbound resolves without validating; the MX hosts are smtp-server peers
// presenting openssl-made certificates that the TLSA records match, or not. No CA is trusted by
// the relay: whatever authenticates a host here, the TLSA records do.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import {
  freePort,
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
import { certSha256, makeTestCa, spkiSha256, startSmtpPeer, type SmtpPeer } from '../helpers/tls/test-ca.ts';
import { startDnssecDns, type DnssecDns } from '../helpers/dns/dnssec.ts';

const HOSTS = {
  ee: { name: 'mx-ee.dane.test', address: '127.0.72.61' },
  mismatch: { name: 'mx-mismatch.dane.test', address: '127.0.72.62' },
  ta: { name: 'mx-ta.dane.test', address: '127.0.72.63' },
  taname: { name: 'mx-taname.dane.test', address: '127.0.72.64' },
  unsigned: { name: 'mx.plain.test', address: '127.0.72.65' },
  many: { name: 'mx-many.dane.test', address: '127.0.72.66' },
  bogus: { name: 'mx-bogus.dane.test', address: '127.0.72.67' },
  // MX host names that are CNAMEs (RFC 7672 §2.2.3): `alias` is the MX host, `name` its target.
  cname: { name: 'mx-target.dane.test', address: '127.0.72.68', alias: 'mx-alias.dane.test' },
  cnameMismatch: {
    name: 'mx-target-mismatch.dane.test',
    address: '127.0.72.69',
    alias: 'mx-alias-mismatch.dane.test',
  },
  cnameAliasOnly: {
    name: 'mx-target-only.dane.test',
    address: '127.0.72.72',
    alias: 'mx-alias-only.dane.test',
  },
  cnameTa: { name: 'mx-target-ta.dane.test', address: '127.0.72.70', alias: 'mx-alias-ta.dane.test' },
  cnameInsecure: {
    name: 'mx-insecure.plain.test',
    address: '127.0.72.71',
    alias: 'mx-alias-insecure.dane.test',
  },
} as const;
type HostKey = keyof typeof HOSTS;
type AliasKey = 'cname' | 'cnameMismatch' | 'cnameAliasOnly' | 'cnameTa' | 'cnameInsecure';

interface Case {
  name: string;
  domain: string;
  host: HostKey;
  outcome: 'delivered' | 'deferred';
  policy: string;
  tlsResult: string;
  /** The server name (SNI) the relay sent: the TLSA base domain. */
  sni?: string;
}

/** Through the validating resolver, policy dane-mta-sts (the RelayPool default). */
const VALIDATING: Case[] = [
  {
    name: 'DANE-EE: a self-signed certificate whose key the TLSA record names gets the mail',
    domain: 'ee.dane.test',
    host: 'ee',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
  },
  {
    name: 'DANE-EE: a certificate the TLSA record does not match defers, the host never sees RCPT',
    domain: 'mismatch.dane.test',
    host: 'mismatch',
    outcome: 'deferred',
    policy: 'dane',
    tlsResult: 'tlsa-invalid',
  },
  {
    name: 'DANE-TA: a certificate for the MX host issued by the CA the TLSA record names gets the mail',
    domain: 'ta.dane.test',
    host: 'ta',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
  },
  {
    name: 'DANE-TA: a certificate from that CA for another name defers',
    domain: 'taname.dane.test',
    host: 'taname',
    outcome: 'deferred',
    policy: 'dane',
    tlsResult: 'tlsa-invalid',
  },
  {
    name: 'a TLSA RRset too large for UDP (the resolver truncates it) is read over TCP and matched',
    domain: 'many.dane.test',
    host: 'many',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
  },
  {
    name: 'bogus TLSA records (a DS with no matching key: the resolver answers SERVFAIL) defer the mail',
    domain: 'bogus.dane.test',
    host: 'bogus',
    outcome: 'deferred',
    policy: 'dane',
    tlsResult: 'dnssec-invalid',
  },
  {
    name: "a CNAME'd MX host: the TLSA records at its target authenticate it, SNI names the target",
    domain: 'cname.dane.test',
    host: 'cname',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
    sni: HOSTS.cname.name,
  },
  {
    name: "a CNAME'd MX host: the records at the target come first (they mismatch; the alias's match)",
    domain: 'cname-mismatch.dane.test',
    host: 'cnameMismatch',
    outcome: 'deferred',
    policy: 'dane',
    tlsResult: 'tlsa-invalid',
  },
  {
    name: "a CNAME'd MX host: no records at its target, those at the MX host name apply (and name SNI)",
    domain: 'cname-alias-only.dane.test',
    host: 'cnameAliasOnly',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
    sni: HOSTS.cnameAliasOnly.alias,
  },
  {
    name: "a CNAME'd MX host: DANE-TA accepts a certificate naming the MX host name, not the target",
    domain: 'cname-ta.dane.test',
    host: 'cnameTa',
    outcome: 'delivered',
    policy: 'dane',
    tlsResult: 'success',
    sni: HOSTS.cnameTa.name,
  },
  {
    name: 'a CNAME chain with an unsigned link: no DANE, the mismatching records at both names ignored',
    domain: 'cname-insecure.dane.test',
    host: 'cnameInsecure',
    outcome: 'delivered',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
  {
    name: 'unsigned zone: its (mismatching) TLSA records are ignored, MTA-STS/opportunistic applies',
    domain: 'plain.test',
    host: 'unsigned',
    outcome: 'delivered',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
];

/** Through a resolver that does not validate: DANE is never claimed, the mismatch goes through. */
const NOT_VALIDATING: Case[] = [
  {
    name: 'no validation: matching TLSA records are not used',
    domain: 'ee.dane.test',
    host: 'ee',
    outcome: 'delivered',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
  {
    name: 'no validation: mismatching TLSA records do not stop the mail either',
    domain: 'mismatch.dane.test',
    host: 'mismatch',
    outcome: 'delivered',
    policy: 'opportunistic',
    tlsResult: 'success',
  },
];

describe('relay DANE', () => {
  let dir: string;
  let dns: DnssecDns;
  const peers = new Map<HostKey, SmtpPeer>();
  const relays: { relay: RelayProcess; spool: string; cases: Case[] }[] = [];

  before(async () => {
    dir = await tempDir('dane');
    const ca = await makeTestCa(dir);
    const caPem = await readFile(ca.caFile, 'utf8');
    const self = await ca.issue({ names: ['not-the-mx.test'], selfSigned: true });
    const other = await ca.issue({ names: ['unrelated.test'], selfSigned: true });
    const ta = await ca.issue({ names: [HOSTS.ta.name] });
    const taname = await ca.issue({ names: ['elsewhere.test'] });
    const taAlias = await ca.issue({ names: [HOSTS.cnameTa.alias] });
    const withChain = (k: { cert: string; key: string }) => ({
      key: k.key,
      cert: `${k.cert.trim()}\n${caPem}`,
    });
    const port = await freePort(HOSTS.ee.address);
    peers.set('ee', await startSmtpPeer(HOSTS.ee.address, port, self));
    peers.set('mismatch', await startSmtpPeer(HOSTS.mismatch.address, port, self));
    peers.set('ta', await startSmtpPeer(HOSTS.ta.address, port, withChain(ta)));
    peers.set('taname', await startSmtpPeer(HOSTS.taname.address, port, withChain(taname)));
    peers.set('unsigned', await startSmtpPeer(HOSTS.unsigned.address, port, self));
    peers.set('many', await startSmtpPeer(HOSTS.many.address, port, self));
    peers.set('bogus', await startSmtpPeer(HOSTS.bogus.address, port, self));
    peers.set('cname', await startSmtpPeer(HOSTS.cname.address, port, self));
    peers.set('cnameMismatch', await startSmtpPeer(HOSTS.cnameMismatch.address, port, self));
    peers.set('cnameAliasOnly', await startSmtpPeer(HOSTS.cnameAliasOnly.address, port, self));
    peers.set('cnameTa', await startSmtpPeer(HOSTS.cnameTa.address, port, withChain(taAlias)));
    peers.set('cnameInsecure', await startSmtpPeer(HOSTS.cnameInsecure.address, port, self));

    const mxAndA = (domain: string, host: HostKey) => [
      `${domain}. MX 10 ${HOSTS[host].name}.`,
      `${HOSTS[host].name}. A ${HOSTS[host].address}`,
    ];
    const tlsa = (host: HostKey, rdata: string) => `_25._tcp.${HOSTS[host].name}. TLSA ${rdata}`;
    /** The MX record names the alias, a CNAME to the host (whose A record is in its own zone). */
    const mxViaCname = (domain: string, host: AliasKey) => [
      `${domain}. MX 10 ${HOSTS[host].alias}.`,
      `${HOSTS[host].alias}. CNAME ${HOSTS[host].name}.`,
    ];
    const aliasTlsa = (host: AliasKey, rdata: string) => `_25._tcp.${HOSTS[host].alias}. TLSA ${rdata}`;
    const a = (host: HostKey) => `${HOSTS[host].name}. A ${HOSTS[host].address}`;
    dns = await startDnssecDns(join(dir, 'dns'), '127.0.72.53', [
      {
        origin: 'dane.test',
        signed: true,
        records: [
          ...mxAndA('ee.dane.test', 'ee'),
          tlsa('ee', `3 1 1 ${spkiSha256(self.cert)}`),
          ...mxAndA('mismatch.dane.test', 'mismatch'),
          tlsa('mismatch', `3 1 1 ${spkiSha256(other.cert)}`),
          ...mxAndA('ta.dane.test', 'ta'),
          tlsa('ta', `2 0 1 ${certSha256(caPem)}`),
          ...mxAndA('taname.dane.test', 'taname'),
          tlsa('taname', `2 0 1 ${certSha256(caPem)}`),
          ...mxAndA('many.dane.test', 'many'),
          // 24 records that match nothing, then the one that does: ~2.4 KB, over the 1232 bytes of UDP.
          ...Array.from({ length: 24 }, (_, i) =>
            tlsa('many', `3 1 2 ${createHash('sha512').update(String(i)).digest('hex')}`),
          ),
          tlsa('many', `3 1 1 ${spkiSha256(self.cert)}`),
          ...mxAndA('bogus.dane.test', 'bogus'),
          // The TLSA name is a zone of its own, delegated with a DS no key of it matches.
          `_25._tcp.${HOSTS.bogus.name}. NS ns.dane.test.`,
          `_25._tcp.${HOSTS.bogus.name}. DS 4242 13 2 ${'ab'.repeat(32)}`,
          ...mxViaCname('cname.dane.test', 'cname'),
          a('cname'),
          tlsa('cname', `3 1 1 ${spkiSha256(self.cert)}`),
          ...mxViaCname('cname-mismatch.dane.test', 'cnameMismatch'),
          a('cnameMismatch'),
          tlsa('cnameMismatch', `3 1 1 ${spkiSha256(other.cert)}`),
          aliasTlsa('cnameMismatch', `3 1 1 ${spkiSha256(self.cert)}`),
          ...mxViaCname('cname-alias-only.dane.test', 'cnameAliasOnly'),
          a('cnameAliasOnly'),
          aliasTlsa('cnameAliasOnly', `3 1 1 ${spkiSha256(self.cert)}`),
          ...mxViaCname('cname-ta.dane.test', 'cnameTa'),
          a('cnameTa'),
          tlsa('cnameTa', `2 0 1 ${certSha256(caPem)}`),
          // The CNAME is signed, its target (in plain.test) is not.
          ...mxViaCname('cname-insecure.dane.test', 'cnameInsecure'),
          aliasTlsa('cnameInsecure', `3 1 1 ${spkiSha256(other.cert)}`),
        ],
      },
      {
        // Matches, so only the failed validation can stop the mail.
        origin: `_25._tcp.${HOSTS.bogus.name}`,
        signed: false,
        records: [`@ TLSA 3 1 1 ${spkiSha256(self.cert)}`],
      },
      {
        origin: 'plain.test',
        signed: false,
        records: [
          ...mxAndA('plain.test', 'unsigned'),
          tlsa('unsigned', `3 1 1 ${spkiSha256(other.cert)}`),
          a('cnameInsecure'),
          tlsa('cnameInsecure', `3 1 1 ${spkiSha256(other.cert)}`),
        ],
      },
    ]);

    for (const [resolver, cases] of [
      [dns.validating, VALIDATING],
      [dns.plain, NOT_VALIDATING],
    ] as const) {
      const spool = await tempDir('spool');
      const relay = await startRelay(
        relayConfig(spool, 0, {
          delivery: {
            mode: 'direct',
            dns: { servers: [resolver] },
            directPort: port,
            connectTimeout: '2s',
            commandTimeout: '5s',
            tlsPolicy: { default: 'dane-mta-sts', destinations: [], daneResolver: resolver },
          },
          retry: { firstRetry: '1s', maxBackoff: '2s', maxQueueLifetime: '1h' },
          dsn: { enabled: false },
        }),
      );
      relays.push({ relay, spool, cases });
      for (const c of cases) {
        const r = await sendMessage(relay.ports.smtp, {
          from: 'a@example.com',
          to: [`rcpt-${relays.length}@${c.domain}`],
          raw: rawMessage(c.domain),
        });
        assert.ok(r.ok, r.response);
      }
    }
    for (const [i, { spool, cases }] of relays.entries())
      await waitFor(
        async () => {
          const lines = await readAccounting(spool);
          return cases.every((c) =>
            lines.some((l) => l.recipient === `rcpt-${i + 1}@${c.domain}` && l.outcome === c.outcome),
          );
        },
        20000,
        'an outcome for every destination',
      );
  });
  after(async () => {
    for (const { relay, spool } of relays) {
      await relay.stop();
      await removeDir(spool);
    }
    for (const p of peers.values()) await p.stop();
    await dns?.stop();
    if (dir) await removeDir(dir);
  });

  for (const [i, group] of [VALIDATING, NOT_VALIDATING].entries())
    for (const c of group)
      test(c.name, async () => {
        const { spool } = relays[i]!;
        const recipient = `rcpt-${i + 1}@${c.domain}`;
        const line = (await readAccounting(spool)).find(
          (l) => l.recipient === recipient && l.outcome === c.outcome,
        );
        assert.equal(line?.tlsPolicy, c.policy);
        assert.equal(line?.tlsResult, c.tlsResult);
        const peer = peers.get(c.host)!;
        if (c.outcome === 'delivered') {
          assert.ok(peer.delivered.includes(recipient), `${HOSTS[c.host].name} got ${recipient}`);
          assert.equal(peer.recipients.find((r) => r.address === recipient)?.tls, true);
          if (c.sni) assert.deepEqual([...new Set(peer.tlsServernames)], [c.sni]);
        } else {
          assert.match(
            String(line?.reply),
            c.tlsResult === 'dnssec-invalid'
              ? /ETLSPOLICY DANE: the DNSSEC lookups of every MX host of .* failed \(dnssec-invalid\)/
              : new RegExp(`ETLSPOLICY TLS dane required: ${c.tlsResult}`),
          );
          // Not even the envelope went to the host that failed DANE.
          assert.equal(
            peer.recipients.some((r) => r.address === recipient),
            false,
          );
        }
      });

  test('the large TLSA RRset really is truncated over UDP (so the delivery above went through TCP)', async () => {
    const [host, p] = dns.validating.split(':') as [string, string];
    const socket = dgram.createSocket('udp4');
    const reply = await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
      socket.once('message', (msg) => resolve(dnsPacket.decode(msg) as dnsPacket.DecodedPacket));
      socket.once('error', reject);
      socket.send(
        dnsPacket.encode({
          type: 'query',
          id: 1,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type: 'TLSA', name: `_25._tcp.${HOSTS.many.name}` }],
          additionals: [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: 1232,
              flags: dnsPacket.DNSSEC_OK,
              options: [],
            } as unknown as dnsPacket.Answer,
          ],
        }),
        Number(p),
        host,
      );
    }).finally(() => socket.close());
    assert.equal(reply.flag_tc, true);
  });

  test('the metrics name the policy dane', async () => {
    const { relay } = relays[0]!;
    const count = (labels: Record<string, string>) =>
      relay.metric('mailfleet_relay_outbound_tls_recipients_total', labels);
    assert.ok((await count({ destination: 'ee.dane.test', policy: 'dane', result: 'success' })) >= 1);
    assert.ok(
      (await count({ destination: 'mismatch.dane.test', policy: 'dane', result: 'tlsa-invalid' })) >= 1,
    );
    assert.equal(await count({ destination: 'plain.test', policy: 'dane' }), 0);
  });
});
