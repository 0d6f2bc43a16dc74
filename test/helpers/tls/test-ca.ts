// A certificate authority made with openssl for one test run, and TLS SMTP peers that present
// its certificates (or none). A relay trusts the CA through NODE_EXTRA_CA_CERTS, Node's own way to
// add roots, so the relay's code path is the production one.
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { SMTPServer } from 'smtp-server';

const run = promisify(execFile);

export interface KeyPair {
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** subjectAltName DNS names. */
  names: string[];
  /** Valid from now for this many days; negative: already expired. */
  days?: number;
  /** Signed by itself instead of by the CA. */
  selfSigned?: boolean;
}

export interface TestCa {
  /** PEM file of the CA certificate (for NODE_EXTRA_CA_CERTS). */
  caFile: string;
  issue(options: IssueOptions): Promise<KeyPair>;
}

export async function makeTestCa(dir: string): Promise<TestCa> {
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-subj',
    '/CN=mailfleet test CA',
    '-days',
    '2',
  ]);
  let serial = 0;
  return {
    caFile,
    async issue(options) {
      const base = join(dir, `leaf${++serial}`);
      const ext = `${base}.ext`;
      await writeFile(ext, `subjectAltName=${options.names.map((n) => `DNS:${n}`).join(',')}\n`);
      const subj = `/CN=${options.names[0] ?? 'leaf'}`;
      const days = String(options.days ?? 2);
      if (options.selfSigned) {
        await run('openssl', [
          'req',
          '-x509',
          ...ec,
          '-keyout',
          `${base}.key`,
          '-out',
          `${base}.pem`,
          '-subj',
          subj,
          '-days',
          days,
          '-addext',
          `subjectAltName=${options.names.map((n) => `DNS:${n}`).join(',')}`,
        ]);
      } else {
        await run('openssl', ['req', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subj]);
        await run('openssl', [
          'x509',
          '-req',
          '-in',
          `${base}.csr`,
          '-CA',
          caFile,
          '-CAkey',
          caKey,
          '-set_serial',
          String(1000 + serial),
          '-days',
          days,
          '-extfile',
          ext,
          '-out',
          `${base}.pem`,
        ]);
      }
      return { cert: await readFile(`${base}.pem`, 'utf8'), key: await readFile(`${base}.key`, 'utf8') };
    },
  };
}

export interface SmtpPeer {
  /** Every RCPT TO the peer was given, with whether the session was over TLS. */
  recipients: { address: string; tls: boolean }[];
  /** Recipients of messages whose data the peer accepted. */
  delivered: string[];
  /** The messages it accepted, as received. */
  messages: { from: string; to: string[]; raw: Buffer }[];
  /** The client address of each session that completed STARTTLS, in order. */
  tlsSessions: string[];
  /** The server name (SNI) each of those sessions asked for, '' for none. */
  tlsServernames: string[];
  stop(): Promise<void>;
}

/** An SMTP server (smtp-server) on host:port; STARTTLS with `tls`, none without it. */
export async function startSmtpPeer(host: string, port: number, tls?: KeyPair): Promise<SmtpPeer> {
  const peer: SmtpPeer = {
    recipients: [],
    delivered: [],
    messages: [],
    tlsSessions: [],
    tlsServernames: [],
    stop: async () => undefined,
  };
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disableReverseLookup: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    onSecure(socket, session, cb) {
      peer.tlsSessions.push(session.remoteAddress);
      peer.tlsServernames.push((socket as TLSSocket).servername || '');
      cb();
    },
    onRcptTo(address, session, cb) {
      peer.recipients.push({ address: address.address, tls: session.secure });
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        peer.messages.push({ from, to, raw: Buffer.concat(chunks) });
        peer.delivered.push(...to);
        cb(null);
      });
    },
  });
  await new Promise<void>((r) => server.listen(port, host, () => r()));
  peer.stop = () =>
    new Promise((r) => {
      server.close(() => r());
      for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
    });
  return peer;
}

/** A certificate's SHA-256 TLSA association data: of its public key (selector 1) and of the whole certificate (selector 0). */
export const spkiSha256 = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
export const certSha256 = (pem: string) =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
