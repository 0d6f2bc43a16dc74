import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { answerWithin } from './answer-within.ts';

/** A connected loopback pair: what `peer` writes is the store's answer arriving on `client`. */
async function socketPair(): Promise<{ client: Socket; peer: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = createConnection(port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  return {
    client,
    peer,
    close: () => {
      client.destroy();
      peer.destroy();
      server.close();
    },
  };
}

/** Blocks the event loop, as a CPU-starved process or a long GC pause does. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

const nextData = (s: Socket) =>
  new Promise<string>((resolve) => s.once('data', (b: Buffer) => resolve(b.toString())));

test('an answer already on the socket when the time is up counts, though the process stalled past it', async () => {
  const { client, peer, close } = await socketPair();
  try {
    const reply = nextData(client);
    peer.write('room');
    const answer = answerWithin(reply, 20);
    stall(150);
    assert.equal(await answer, 'room');
  } finally {
    close();
  }
});

test('the same stall with a plain timer race takes the waiting answer for lateness (why answerWithin exists)', async () => {
  const { client, peer, close } = await socketPair();
  try {
    const reply = nextData(client);
    peer.write('room');
    const naive = Promise.race([reply, new Promise<'late'>((r) => setTimeout(() => r('late'), 20))]);
    stall(150);
    assert.equal(await naive, 'late');
  } finally {
    close();
  }
});

test('no answer within the time: late, and an answer after it is not taken', async () => {
  const { client, peer, close } = await socketPair();
  try {
    const reply = nextData(client);
    const answer = answerWithin(reply, 30);
    assert.equal(await answer, 'late');
    peer.write('room');
    assert.equal(await reply, 'room');
    assert.equal(await answer, 'late');
  } finally {
    close();
  }
});

test('an answer within the time is taken at once', async () => {
  const { client, peer, close } = await socketPair();
  try {
    const reply = nextData(client);
    setTimeout(() => peer.write('full'), 5);
    assert.equal(await answerWithin(reply, 5_000), 'full');
  } finally {
    close();
  }
});
