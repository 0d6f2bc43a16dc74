// A private Postfix instance for tests: its own config and queue directories, one smtpd port on
// loopback, a relayhost, and optional per-domain transports. Postfix is a real remote MTA here:
// it accepts mail, fails to deliver it later, and sends its own RFC 3464 DSN to the sender.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PostfixOptions {
  dir: string;
  port: number;
  relayhost: string;
  /** Domain -> transport (e.g. `smtp:[127.0.0.1]:2527`): where its mail goes instead of relayhost. */
  transports?: Record<string, string>;
  hostname?: string;
}

export interface PostfixInstance {
  conf: string;
  stop(): void;
  /** The instance's log, for failure messages. */
  log(): string;
}

export function startPostfix(o: PostfixOptions): PostfixInstance {
  const conf = join(o.dir, 'conf');
  mkdirSync(conf, { recursive: true });
  mkdirSync(join(o.dir, 'queue'), { recursive: true });
  mkdirSync(join(o.dir, 'data'), { recursive: true });
  // Postfix's unprivileged daemons must traverse the directory.
  chmodSync(o.dir, 0o755);
  chownSync(join(o.dir, 'data'), Number(spawnSync('id', ['-u', 'postfix']).stdout.toString().trim()), -1);
  copyFileSync('/etc/postfix/dynamicmaps.cf', join(conf, 'dynamicmaps.cf'));
  const transports = Object.entries(o.transports ?? {})
    .map(([domain, transport]) => `${domain}=${transport}`)
    .join(' ');
  writeFileSync(
    join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${o.dir}/queue`,
      `data_directory = ${o.dir}/data`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      `myhostname = ${o.hostname ?? 'postfix.test'}`,
      'mydestination =',
      'local_transport = error:no local delivery',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      `relayhost = ${o.relayhost}`,
      ...(transports ? [`transport_maps = inline:{ ${transports} }`] : []),
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      'smtpd_peername_lookup = no',
      'disable_dns_lookups = yes',
      'alias_maps =',
      'alias_database =',
      `maillog_file = ${o.dir}/maillog`,
      `maillog_file_prefixes = ${o.dir}`,
      // Retry quickly so a test sees deferred mail move within seconds.
      'queue_run_delay = 1s',
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      '',
    ].join('\n'),
  );
  const master = readFileSync('/etc/postfix/master.cf', 'utf8').replace(
    /^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd$/m,
    `${o.port} inet n - n - - smtpd`,
  );
  writeFileSync(join(conf, 'master.cf'), master);
  spawnSync('postfix', ['-c', conf, 'set-permissions'], { stdio: 'ignore' });
  const r = spawnSync('postfix', ['-c', conf, 'start'], { encoding: 'utf8' });
  const log = () => {
    try {
      return readFileSync(join(o.dir, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  };
  if (r.status !== 0) throw new Error(`postfix start failed: ${r.stderr}\n${log()}`);
  return { conf, stop: () => void spawnSync('postfix', ['-c', conf, 'stop'], { stdio: 'ignore' }), log };
}
