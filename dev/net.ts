// Loopback networking for the control plane, `npm start` and the tests: a free port, and polling until a condition holds.
import { createServer } from 'node:net';

// Ports are handed out below the kernel's ephemeral range (Linux: 32768-60999): a port taken from
// that range is free only until its taker binds it, and meanwhile any outgoing connection may take
// it as its source port (the taker then fails with EADDRINUSE). Outside the range only another
// listener can, and a port is never handed out twice by one process.
const RANGE = { from: 20000, to: 32768 };
const handedOut = new Set<number>();

function listens(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePort(undefined));
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolvePort(bound));
    });
  });
}

/** A TCP port nothing listens on right now (closed again before returning). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 100 && handedOut.size < RANGE.to - RANGE.from; tries++) {
    const port = RANGE.from + Math.floor(Math.random() * (RANGE.to - RANGE.from));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if ((await listens(port, host)) === port) return port;
  }
  // The range used up (or taken by others): the OS picks one.
  const port = await listens(0, host);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
