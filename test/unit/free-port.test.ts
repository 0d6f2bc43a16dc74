// dev/net.ts freePort: the ports the tests and `npm start` bind their servers to.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { freePort } from '../../dev/net.ts';

test('free ports lie below the ephemeral range (no outgoing connection takes one before it is bound), never twice, and bind', async () => {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  const ports: number[] = [];
  for (let i = 0; i < 200; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length, 'no port handed out twice');
  for (const port of ports) assert.ok(port >= 1024 && port < (low ?? 32768), `${port} below ${low}`);
  for (const port of ports.slice(0, 20))
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
    });
});

test('ports something listens on are not handed out', async () => {
  // 800 listeners at the bottom of the range: about 19 of 300 random picks land on one of them.
  const servers = await Promise.all(
    Array.from(
      { length: 800 },
      (_, i) =>
        new Promise<Server | undefined>((resolve) => {
          const server = createServer();
          server.once('error', () => resolve(undefined));
          server.listen(20000 + i, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const taken = new Set(servers.flatMap((s, i) => (s ? [20000 + i] : [])));
  try {
    for (let i = 0; i < 300; i++) {
      const port = await freePort();
      assert.ok(!taken.has(port), `${port} is listened on`);
    }
  } finally {
    for (const s of servers) s?.close();
  }
});
