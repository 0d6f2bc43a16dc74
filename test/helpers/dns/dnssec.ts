// A DNSSEC-signed zone on a real authoritative server and real resolvers in front of it, for DANE:
// knotd serves the zones (signing the signed ones itself, with keys it makes on first load), one
// unbound validates with the signed zones' key-signing keys as trust anchors, a second unbound
// resolves the same zones without validating (module-config "iterator": it never sets AD).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, stopProcess, waitFor } from '../relay/peers.ts';
import { secureResolver } from '../../../relay/src/delivery/dane/resolver.ts';

export interface TestZone {
  /** e.g. `dane.test`. */
  origin: string;
  /** Zone-file lines after SOA and NS, names relative to the origin or absolute. */
  records: string[];
  /** knotd signs it and the validating resolver trusts its key. */
  signed: boolean;
}

export interface DnssecDns {
  /** `address:port` of the validating resolver. */
  validating: string;
  /** `address:port` of the resolver that does not validate. */
  plain: string;
  stop(): Promise<void>;
}

/** Starts knotd on `address` and both unbounds on the next addresses (127.0.x.y+1, +2). */
export async function startDnssecDns(dir: string, address: string, zones: TestZone[]): Promise<DnssecDns> {
  const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number];
  const validatingAddress = `${a}.${b}.${c}.${d + 1}`;
  const plainAddress = `${a}.${b}.${c}.${d + 2}`;
  const knotPort = await freePort(address);
  const procs: ChildProcess[] = [];
  const logs: string[] = [];
  const stop = async () => {
    for (const p of procs.reverse()) await stopProcess(p, 'SIGTERM');
  };
  try {
    await mkdir(join(dir, 'knotdb'), { recursive: true });
    for (const z of zones)
      await writeFile(
        join(dir, `${z.origin}.zone`),
        [
          `$ORIGIN ${z.origin}.`,
          '$TTL 60',
          `@ SOA ns.${z.origin}. hostmaster.${z.origin}. 1 3600 600 86400 60`,
          `@ NS ns.${z.origin}.`,
          `ns A ${address}`,
          ...z.records,
          '',
        ].join('\n'),
      );
    await writeFile(
      join(dir, 'knot.conf'),
      [
        'server:',
        `  listen: ${address}@${knotPort}`,
        `  rundir: "${dir}"`,
        'log:',
        '  - target: stderr',
        '    any: info',
        'database:',
        `  storage: "${join(dir, 'knotdb')}"`,
        'policy:',
        '  - id: test',
        '    algorithm: ecdsap256sha256',
        'template:',
        '  - id: default',
        `    storage: "${dir}"`,
        '    file: "%s.zone"',
        '    zonefile-sync: -1',
        'zone:',
        ...zones.flatMap((z) => [
          `  - domain: ${z.origin}`,
          ...(z.signed ? ['    dnssec-signing: on', '    dnssec-policy: test'] : []),
        ]),
        '',
      ].join('\n'),
    );
    procs.push(spawnLogged('/usr/sbin/knotd', ['-c', join(dir, 'knot.conf')], logs));
    // Trust anchors: each signed zone's key-signing key (flags 257), read from knotd once it signed.
    const authoritative = secureResolver(`${address}:${knotPort}`, 1000);
    const anchors: string[] = [];
    for (const z of zones.filter((x) => x.signed)) {
      let ksk: string | undefined;
      await waitFor(
        async () => {
          const r = await authoritative.query(z.origin, 'DNSKEY').catch(() => undefined);
          const k = r?.answers.flatMap((x) =>
            x.type === 'DNSKEY' && x.data.flags === 257 ? [x.data] : [],
          )[0];
          if (!k) return false;
          ksk = `${z.origin}. DNSKEY ${k.flags} 3 ${k.algorithm} ${k.key.toString('base64')}`;
          return true;
        },
        15000,
        `knotd to sign ${z.origin} (${logs.join('').slice(-500)})`,
      );
      anchors.push(ksk!);
    }
    const unbound = async (name: string, listen: string, validate: boolean) => {
      const port = await freePort(listen);
      const conf = join(dir, `${name}.conf`);
      await writeFile(
        conf,
        [
          'server:',
          `  interface: ${listen}@${port}`,
          '  do-daemonize: no',
          '  username: ""',
          '  chroot: ""',
          `  directory: "${dir}"`,
          `  pidfile: "${join(dir, `${name}.pid`)}"`,
          '  use-syslog: no',
          '  logfile: ""',
          '  verbosity: 1',
          '  num-threads: 1',
          '  do-not-query-localhost: no',
          '  access-control: 127.0.0.0/8 allow',
          // The zones live under RFC 6761's `test.`, which unbound answers itself by default.
          '  local-zone: "test." nodefault',
          '  cache-max-ttl: 0',
          `  module-config: "${validate ? 'validator iterator' : 'iterator'}"`,
          ...(validate ? anchors.map((x) => `  trust-anchor: "${x}"`) : []),
          ...zones.flatMap((z) => [
            'stub-zone:',
            `  name: "${z.origin}"`,
            `  stub-addr: ${address}@${knotPort}`,
          ]),
          '',
        ].join('\n'),
      );
      procs.push(spawnLogged('/usr/sbin/unbound', ['-d', '-c', conf], logs));
      const server = `${listen}:${port}`;
      const probe = secureResolver(server, 1000);
      await waitFor(
        async () => (await probe.query(`ns.${zones[0]!.origin}`, 'A').catch(() => undefined)) !== undefined,
        15000,
        `unbound ${name} (${logs.join('').slice(-500)})`,
      );
      return server;
    };
    const validating = await unbound('validating', validatingAddress, true);
    const plain = await unbound('plain', plainAddress, false);
    return { validating, plain, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function spawnLogged(command: string, args: string[], logs: string[]): ChildProcess {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  return proc;
}
