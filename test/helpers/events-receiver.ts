// A real webhook receiver for the events tests: verifies each batch's signature, keeps the events
// in arrival order, and answers as the test says (200, an error status, or hold the reply).
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { MailEvent } from '../../relay/src/events/event.ts';
import { verifyBatch } from '../../relay/src/events/signature.ts';

export interface EventsReceiver {
  url: string;
  /** The signing secret batches are verified with (a test rotates it by setting it). */
  secret: Buffer;
  /** Every event of every batch that verified, in arrival order (duplicates included). */
  events: MailEvent[];
  /** Batches refused because their signature did not verify. */
  badSignatures: number;
  /** Requests seen. */
  requests: number;
  /** 200 answers; another number answers that status (events not kept); 'hold' keeps the events
   * and never answers. */
  mode: number | 'hold';
  stop(): Promise<void>;
}

export async function startEventsReceiver(secret: Buffer): Promise<EventsReceiver> {
  const receiver: EventsReceiver = {
    url: '',
    secret,
    events: [],
    badSignatures: 0,
    requests: 0,
    mode: 200,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests++;
      const mode = receiver.mode;
      if (typeof mode === 'number' && mode !== 200) return void res.writeHead(mode).end();
      const body = Buffer.concat(chunks);
      const verdict = verifyBatch(
        receiver.secret,
        body,
        String(req.headers['x-mailfleet-signature'] ?? ''),
        Date.now() / 1000,
      );
      if (!verdict.ok) {
        receiver.badSignatures++;
        return void res.writeHead(401).end();
      }
      for (const line of body.toString('utf8').split('\n'))
        if (line) receiver.events.push(JSON.parse(line) as MailEvent);
      // Held: the events were taken in, the acknowledgement never leaves (the sender dies first).
      if (mode === 200) res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return receiver;
}

/**
 * The webhook end a relay under test sends its events to: a receiver verifying with a fixed secret,
 * that secret written to `dir`/events-secret for the relay, and the relay config's `events` block
 * naming both, with short timings (100 ms batches, 500 ms maximum backoff) and `over` on top.
 */
export async function startEventsEndpoint(
  dir: string,
  over: Record<string, unknown> = {},
): Promise<{ receiver: EventsReceiver; events: Record<string, unknown> }> {
  const secret = 'events-secret-0123456789abcdef';
  const secretFile = join(dir, 'events-secret');
  await writeFile(secretFile, `${secret}\n`);
  const receiver = await startEventsReceiver(Buffer.from(secret));
  const events = {
    url: receiver.url,
    secretFile,
    batchInterval: '100ms',
    maxBackoff: '500ms',
    timeout: '5s',
    ...over,
  };
  return { receiver, events };
}
