// What several benchmarks share: waiting for a port, a private Postfix instance relaying to a
// sink, and Postfix's smtp-source as the load generator.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = createConnection(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} never opened`);
}

/** smtp-source against 127.0.0.1:port; returns messages per second (all answered 250). */
export function runSmtpSource(
  port: number,
  o: { reuse: boolean; count: number; size: number; sessions: number; to?: string },
): number {
  const args = [
    '-s',
    String(o.sessions),
    '-m',
    String(o.count),
    '-l',
    String(o.size),
    '-f',
    'bench@example.com',
    '-t',
    o.to ?? 'rcpt@example.org',
  ];
  if (o.reuse) args.unshift('-d');
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/sbin/smtp-source', [...args, `127.0.0.1:${port}`]);
  if (r.status !== 0) throw new Error(`smtp-source failed: ${r.stderr}`);
  return o.count / (Number(process.hrtime.bigint() - started) / 1e9);
}

export interface PostfixOptions {
  /** An OpenDKIM (or other) milter on 127.0.0.1:milterPort. */
  milterPort?: number;
  /** More main.cf lines (restrictions, maps). */
  extraMain?: string[];
}

export function startPostfix(dir: string, port: number, sinkPort: number, o: PostfixOptions = {}): void {
  const { milterPort } = o;
  const conf = join(dir, 'conf');
  mkdirSync(conf, { recursive: true });
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  chmodSync(dir, 0o755);
  chownSync(join(dir, 'data'), Number(spawnSync('id', ['-u', 'postfix']).stdout.toString().trim()), -1);
  copyFileSync('/etc/postfix/dynamicmaps.cf', join(conf, 'dynamicmaps.cf'));
  // Postfix's own defaults otherwise: fsync of every queue file before 250.
  writeFileSync(
    join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = postfix.bench.localhost',
      'mydestination =',
      'local_transport = error:no local delivery',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      `relayhost = [127.0.0.1]:${sinkPort}`,
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      'smtpd_peername_lookup = no',
      'disable_dns_lookups = yes',
      'alias_maps =',
      'alias_database =',
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      'default_process_limit = 100',
      'smtpd_client_connection_count_limit = 0',
      'smtpd_client_connection_rate_limit = 0',
      ...(milterPort
        ? [`smtpd_milters = inet:127.0.0.1:${milterPort}`, 'milter_default_action = tempfail']
        : []),
      ...(o.extraMain ?? []),
      '',
    ].join('\n'),
  );
  const master = readFileSync('/etc/postfix/master.cf', 'utf8').replace(
    /^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd$/m,
    `${port} inet n - n - - smtpd`,
  );
  writeFileSync(join(conf, 'master.cf'), master);
  spawnSync('postfix', ['-c', conf, 'set-permissions'], { stdio: 'ignore' });
  const r = spawnSync('postfix', ['-c', conf, 'start']);
  if (r.status !== 0) throw new Error(`postfix start failed (see ${dir}/maillog)`);
}
