// An upstream that counts the SMTP sessions open at once (pool-wide connection caps are judged
// here, where a mailbox provider would count them): smtp-server, each message held `delayMs`
// before its 250 so sessions overlap. It may listen on several loopback addresses (the MX hosts
// of one domain, on one port), counting the sessions of all of them together.
import { SMTPServer } from 'smtp-server';

/** An upstream that holds each message `delayMs` before 250 and counts sessions open at once. */
export interface CountingUpstream {
  port: number;
  delayMs: number;
  open: number;
  /** The most sessions open at once since the last reset. */
  peak: number;
  delivered: Set<string>;
  /** When each recipient was answered 250 (ms since the epoch). */
  arrivals: number[];
  /** Sessions opened, by the address they reached. */
  sessionsByAddress: Map<string, number>;
  stop(): Promise<void>;
}

/** `hosts` (default 127.0.0.1) all listen on `port` (default: a free one). */
export async function startCountingUpstream(
  o: { hosts?: string[]; port?: number } = {},
): Promise<CountingUpstream> {
  const up: CountingUpstream = {
    port: 0,
    delayMs: 100,
    open: 0,
    peak: 0,
    delivered: new Set(),
    arrivals: [],
    sessionsByAddress: new Map(),
    stop: async () => undefined,
  };
  const serve = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      disableReverseLookup: true,
      maxClients: 100,
      onConnect(session, cb) {
        up.open++;
        up.sessionsByAddress.set(
          session.localAddress,
          (up.sessionsByAddress.get(session.localAddress) ?? 0) + 1,
        );
        up.peak = Math.max(up.peak, up.open);
        cb();
      },
      onClose() {
        up.open--;
      },
      onData(stream, session, cb) {
        stream.resume();
        stream.on('end', () => {
          setTimeout(() => {
            for (const r of session.envelope.rcptTo) {
              up.delivered.add(r.address);
              up.arrivals.push(Date.now());
            }
            cb(null);
          }, up.delayMs);
        });
      },
    });
  const servers: SMTPServer[] = [];
  up.port = o.port ?? 0;
  for (const host of o.hosts ?? ['127.0.0.1']) {
    const server = serve();
    server.on('error', () => undefined);
    await new Promise<void>((r) => server.listen(up.port, host, () => r()));
    const address = server.server.address();
    up.port = typeof address === 'object' && address ? address.port : 0;
    servers.push(server);
  }
  up.stop = async () => {
    for (const server of servers)
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
      });
  };
  return up;
}
