// Queries to the DNSSEC-validating resolver DANE relies on. Node's dns module does not report the
// AD bit, and DANE (RFC 7672 §2.1) may only use records the resolver validated, so the queries are
// made here with dns-packet: RD and AD set (RFC 6840 §5.7: asks for the AD bit), EDNS0 with DO,
// over UDP, again over TCP when the answer is truncated (RFC 7766).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import * as dnsPacket from 'dns-packet';

export type SecureRecordType = 'A' | 'AAAA' | 'MX' | 'TLSA' | 'DNSKEY';

export interface SecureAnswer {
  /** NOERROR, NXDOMAIN, SERVFAIL (which is also what a validating resolver says for bogus data)... */
  rcode: string;
  /** The resolver validated the answer, or the denial, with DNSSEC (RFC 4035 §3.2.3). */
  authenticated: boolean;
  answers: dnsPacket.Answer[];
}

export interface SecureResolver {
  query(name: string, type: SecureRecordType): Promise<SecureAnswer>;
}

/** `ip`, `ip:port` or `[ipv6]:port` (port 53 when none). */
function parseResolverAddress(address: string): { host: string; port: number } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  const [host, port] = bracketed
    ? [bracketed[1]!, bracketed[2]]
    : net.isIPv6(address)
      ? [address, undefined]
      : address.split(':', 2);
  if (!host || !net.isIP(host)) return undefined;
  const n = port === undefined ? 53 : Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535 || (port !== undefined && !/^\d+$/.test(port)))
    return undefined;
  return { host, port: n };
}

/** EDNS0 buffer size of the DNS flag day 2020: no IP fragmentation; larger answers come over TCP. */
const UDP_PAYLOAD = 1232;

export function secureResolver(address: string, timeoutMs: number): SecureResolver {
  const server = parseResolverAddress(address);
  if (!server) throw new Error(`not a resolver address: ${address}`);
  return {
    async query(name, type) {
      const id = randomInt(0, 65536);
      const query = dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
        questions: [{ type, name, class: 'IN' }],
        additionals: [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: UDP_PAYLOAD,
            flags: dnsPacket.DNSSEC_OK,
            options: [],
          } as unknown as dnsPacket.Answer,
        ],
      });
      let reply = answerOf(await overUdp(server, query, id, timeoutMs), id, name, type);
      if (reply.truncated) reply = answerOf(await overTcp(server, query, timeoutMs), id, name, type);
      return reply.answer;
    },
  };
}

function answerOf(
  buf: Buffer,
  id: number,
  name: string,
  type: SecureRecordType,
): { truncated: boolean; answer: SecureAnswer } {
  const p = dnsPacket.decode(buf) as dnsPacket.DecodedPacket & { rcode?: string };
  const q = p.questions?.[0];
  // An answer to another question is not an answer (RFC 5452 §9.1).
  if (p.id !== id || !q || q.type !== type || q.name.toLowerCase() !== name.toLowerCase().replace(/\.$/, ''))
    throw Object.assign(new Error(`DNS answer does not match the query for ${name} ${type}`), {
      code: 'EBADRESP',
    });
  return {
    truncated: p.flag_tc,
    answer: { rcode: p.rcode ?? 'NOERROR', authenticated: p.flag_ad, answers: p.answers ?? [] },
  };
}

function timeoutError(): Error {
  return Object.assign(new Error('DNS query timed out'), { code: 'ETIMEOUT' });
}

function overUdp(server: { host: string; port: number }, query: Buffer, id: number, timeoutMs: number) {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(timeoutError()), timeoutMs);
    const finish = (err: Error | undefined, msg?: Buffer) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    socket.on('error', (err) => finish(err));
    socket.on('message', (msg, from) => {
      // Only the resolver's answer to this query; anything else is ignored, not trusted.
      if (from.address !== server.host || from.port !== server.port || msg.length < 2) return;
      if (msg.readUInt16BE(0) !== id) return;
      finish(undefined, msg);
    });
    socket.send(query, server.port, server.host, (err) => err && finish(err));
  });
}

function overTcp(server: { host: string; port: number }, query: Buffer, timeoutMs: number) {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = net.connect(server.port, server.host);
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(timeoutError()), timeoutMs);
    const finish = (err: Error | undefined, msg?: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(msg!);
    };
    socket.on('error', (err) => finish(err));
    socket.on('connect', () => {
      const framed = Buffer.alloc(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0))
        finish(undefined, received.subarray(2, 2 + received.readUInt16BE(0)));
    });
    socket.on('end', () =>
      finish(Object.assign(new Error('DNS TCP connection closed'), { code: 'ECONNRESET' })),
    );
  });
}
