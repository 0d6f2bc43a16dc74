// dnsmasq as the authoritative DNS of the tests' `.test` zone, on a free loopback port.
import { freePort, spawnDnsmasq, stopProcess } from './peers.ts';

export interface TestDns {
  /** `127.0.0.1:<port>`, for delivery.dns.servers. */
  server: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * `records`: dnsmasq options such as `--mx-host=a.test,mx.a.test,10` or `--txt-record=...`; `port`:
 * the port of a dnsmasq stopped before (a restart is how a test changes records).
 */
export async function startDnsmasq(records: string[], port?: number): Promise<TestDns> {
  port ??= await freePort();
  const proc = spawnDnsmasq(port, ['--local=/test/', ...records]);
  return { server: `127.0.0.1:${port}`, port, stop: () => stopProcess(proc, 'SIGTERM') };
}
