// An upstream that counts the SMTP sessions open at once (pool-wide connection caps are judged
// here, where a mailbox provider would count them): smtp-server, each message held `delayMs`
// before its 250 so sessions overlap.
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
  stop(): Promise<void>;
}

export async function startCountingUpstream(): Promise<CountingUpstream> {
  const up: CountingUpstream = {
    port: 0,
    delayMs: 100,
    open: 0,
    peak: 0,
    delivered: new Set(),
    arrivals: [],
    stop: async () => undefined,
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    maxClients: 100,
    onConnect(_session, cb) {
      up.open++;
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
  server.on('error', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.server.address();
  up.port = typeof address === 'object' && address ? address.port : 0;
  up.stop = () =>
    new Promise((r) => {
      server.close(() => r());
      for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
    });
  return up;
}
