// The set-up the outbound TLS integration tests share (relay-tlsrpt, relay-tlsrpt-workers,
// relay-mta-sts, relay-mta-sts-store, relay-tls-policy): a test CA in a temporary directory, one
// smtp-server MX peer per host (certificate of the CA, expired, self-signed, for another name, or
// no STARTTLS) on one port (delivery.directPort; they listen on different loopback addresses), an
// MTA-STS policy server when there are sites, dnsmasq with the test's records, and the direct
// delivery config that reaches them. stop() stops what it started and removes the directory.
// republishDns changes the records a test's relay sees; firstOutcome sends one message and waits
// for what the relay made of it.
import assert from 'node:assert/strict';
import {
  freePort,
  rawMessage,
  readAccounting,
  removeDir,
  sendMessage,
  tempDir,
  waitFor,
  type RelayProcess,
} from '../relay/peers.ts';
import { startDnsmasq, type TestDns } from '../relay/dnsmasq.ts';
import {
  makeTestCa,
  startSmtpPeer,
  type IssueOptions,
  type KeyPair,
  type SmtpPeer,
  type TestCa,
} from './test-ca.ts';
import { startPolicyServer, type MxHost, type PolicyServer, type StsSite } from './mta-sts.ts';

/** An MX peer and the certificate it presents (`plain`: it offers no STARTTLS). */
export interface PeerSpec extends MxHost {
  cert?: 'valid' | 'expired' | 'self-signed' | 'plain' | { names: string[] };
}

export interface TlsFixtureOptions {
  /** Name of the temporary directory. */
  prefix: string;
  peers: PeerSpec[];
  /** MTA-STS sites served on `policyAddress`:443. */
  sites?: Record<string, StsSite>;
  policyAddress?: string;
  /**
   * dnsmasq options; given the fixture so far (the CA, for a collector's rua; each peer's
   * certificate by MX host name, for TLSA records).
   */
  dns: (f: { ca: TestCa; certs: Map<string, KeyPair> }) => string[] | Promise<string[]>;
}

export interface TlsFixture {
  dir: string;
  ca: TestCa;
  smtpPort: number;
  /** By MX host name. */
  peers: Map<string, SmtpPeer>;
  policies: PolicyServer | undefined;
  dns: TestDns;
  /** The relay's environment: the test CA trusted (policy fetches, TLS-RPT POSTs, verify). */
  env: Record<string, string>;
  /** delivery config of direct delivery to the peers through the fixture's DNS. */
  delivery(over?: Record<string, unknown>): Record<string, unknown>;
  stop(): Promise<void>;
}

function issueOptions(peer: PeerSpec): IssueOptions | undefined {
  const cert = peer.cert ?? 'valid';
  if (cert === 'plain') return undefined;
  if (cert === 'valid') return { names: [peer.name] };
  if (cert === 'expired') return { names: [peer.name], days: -1 };
  if (cert === 'self-signed') return { names: [peer.name], selfSigned: true };
  return { names: cert.names };
}

export async function startTlsFixture(o: TlsFixtureOptions): Promise<TlsFixture> {
  const dir = await tempDir(o.prefix);
  const peers = new Map<string, SmtpPeer>();
  let policies: PolicyServer | undefined;
  let dns: TestDns | undefined;
  let fixture: TlsFixture | undefined;
  const stop = async () => {
    for (const peer of peers.values()) await peer.stop();
    await policies?.stop();
    // The dnsmasq running now: republishDns may have replaced the first one.
    await (fixture?.dns ?? dns)?.stop();
    await removeDir(dir);
  };
  try {
    const ca = await makeTestCa(dir);
    const smtpPort = await freePort(o.peers[0]?.address);
    const certs = new Map<string, KeyPair>();
    for (const peer of o.peers) {
      const options = issueOptions(peer);
      const cert = options ? await ca.issue(options) : undefined;
      if (cert) certs.set(peer.name, cert);
      peers.set(peer.name, await startSmtpPeer(peer.address, smtpPort, cert));
    }
    if (o.sites) policies = await startPolicyServer(ca, o.sites, o.policyAddress ?? '127.0.0.1');
    dns = await startDnsmasq(await o.dns({ ca, certs }));
    const server = dns.server;
    fixture = {
      dir,
      ca,
      smtpPort,
      peers,
      policies,
      dns,
      env: { NODE_EXTRA_CA_CERTS: ca.caFile },
      delivery: (over = {}) => ({
        mode: 'direct',
        dns: { servers: [server] },
        directPort: smtpPort,
        connectTimeout: '2s',
        commandTimeout: '5s',
        ...over,
      }),
      stop,
    };
    return fixture;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The fixture's DNS answers with `records` from now on: its dnsmasq restarted on the same port (it
 * reads its records at start), so the relay's delivery.dns.servers still names it.
 */
export async function republishDns(fixture: TlsFixture, records: string[]): Promise<void> {
  const port = fixture.dns.port;
  await fixture.dns.stop();
  fixture.dns = await startDnsmasq(records, port);
}

/** Submits one message for `recipient` to `relay` and returns the first accounting line about it. */
export async function firstOutcome(relay: RelayProcess, recipient: string): Promise<Record<string, unknown>> {
  const r = await sendMessage(relay.ports.smtp, {
    from: 'a@example.com',
    to: [recipient],
    raw: rawMessage(recipient.split('@')[0]!),
  });
  assert.ok(r.ok, r.response);
  const line = async () => (await readAccounting(relay.spoolDir)).find((l) => l.recipient === recipient);
  await waitFor(async () => (await line()) !== undefined, 15000, `an outcome for ${recipient}`);
  return (await line())!;
}
