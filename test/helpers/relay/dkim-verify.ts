// Two independent DKIM verifiers for messages the relay signed: mailauth's dkimVerify with a DNS
// stub serving the public keys, and OpenDKIM's `opendkim -t` in verify mode with TestPublicKeys.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';

export interface DkimVerifiers {
  /** DNS TXT records the verifiers see: "<selector>._domainkey.<domain>" -> record. */
  dns: Map<string, string>;
  mailauth(raw: string): Promise<Awaited<ReturnType<typeof dkimVerify>>['results']>;
  /** libopendkim's verdict; `name` names the files written into `dir`. */
  opendkim(raw: string, name: string): { pass: boolean; output: string };
}

export function dkimVerifiers(dir: string): DkimVerifiers {
  const dns = new Map<string, string>();
  return {
    dns,
    async mailauth(raw) {
      const result = await dkimVerify(Buffer.from(raw, 'latin1'), {
        resolver: async (name: string, type: string) => {
          const record = dns.get(name);
          if (type === 'TXT' && record) return [[record]];
          throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
        },
      });
      return result.results;
    },
    opendkim(raw, name) {
      const keys = join(dir, `${name}.keys`);
      writeFileSync(keys, [...dns].map(([record, value]) => `${record} ${value}`).join('\n') + '\n');
      writeFileSync(join(dir, `${name}.conf`), `Mode v\nSyslog no\nTestPublicKeys ${keys}\n`);
      writeFileSync(join(dir, `${name}.eml`), raw, 'latin1');
      const r = spawnSync(
        '/usr/sbin/opendkim',
        ['-x', join(dir, `${name}.conf`), '-t', join(dir, `${name}.eml`), '-vv'],
        {
          encoding: 'utf8',
        },
      );
      const output = `${r.stdout}${r.stderr}`;
      return { pass: /verification \([^)]*\) succeeded/.test(output), output };
    },
  };
}
