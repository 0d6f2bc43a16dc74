// dnsmasq as the authoritative DNS of the tests' `.test` zone, on a free loopback port.
import { Resolver } from 'node:dns/promises';
import { freePort, spawnDnsmasq, stopProcess, waitFor } from './peers.ts';

export interface TestDns {
  /** `127.0.0.1:<port>`, for delivery.dns.servers. */
  server: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * `records`: dnsmasq options such as `--mx-host=a.test,mx.a.test,10` or `--txt-record=...`; `port`:
 * the port of a dnsmasq stopped before (a restart is how a test changes records). Returns once
 * dnsmasq answers: a lookup sent before it has bound its port fails at once (connection refused),
 * which a caller would take for a missing record.
 */
export async function startDnsmasq(records: string[], port?: number): Promise<TestDns> {
  port ??= await freePort();
  const proc = spawnDnsmasq(port, ['--local=/test/', ...records]);
  const server = `127.0.0.1:${port}`;
  const resolver = new Resolver({ timeout: 250, tries: 1 });
  resolver.setServers([server]);
  const answers = () =>
    resolver.resolveTxt('mailfleet-ready.test').then(
      () => true,
      (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND' || err.code === 'ENODATA',
    );
  try {
    await waitFor(answers, 60_000, `dnsmasq to answer on ${server}`);
  } catch (err) {
    await stopProcess(proc, 'SIGTERM');
    throw err;
  }
  return { server, port, stop: () => stopProcess(proc, 'SIGTERM') };
}
