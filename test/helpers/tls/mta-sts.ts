// MTA-STS publishing for tests: the DNS records dnsmasq serves (`_mta-sts` TXT, MX, the policy
// host's address) and a Node HTTPS server on <address>:443 (the production port: the relay has
// no setting to change it) serving each site's policy with a certificate of the test CA, chosen
// by SNI. Sites are read at each request, so a test may change a policy or its id in place.
import { createServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { KeyPair, TestCa } from './test-ca.ts';

export interface MxHost {
  name: string;
  address: string;
}

export interface StsSite {
  /** TXT id published. */
  id: string;
  mx: MxHost;
  body: string;
  contentType?: string;
  /** The policy host's certificate is expired. */
  expired?: boolean;
}

export const stsPolicy = (mode: string, mx: string[]) =>
  `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;

/** dnsmasq options: the MX hosts' addresses, and per site its MX, policy host and TXT id. */
export function stsDnsRecords(
  sites: Record<string, StsSite>,
  policyAddress: string,
  hosts: MxHost[],
): string[] {
  return [
    ...hosts.map((h) => `--host-record=${h.name},${h.address}`),
    ...Object.entries(sites).flatMap(([domain, site]) => [
      `--mx-host=${domain},${site.mx.name},10`,
      `--host-record=mta-sts.${domain},${policyAddress}`,
      `--txt-record=_mta-sts.${domain},v=STSv1; id=${site.id}`,
    ]),
  ];
}

export interface PolicyServer {
  /** Policy fetches per domain. */
  fetches: Map<string, number>;
  stop(): Promise<void>;
}

export async function startPolicyServer(
  ca: TestCa,
  sites: Record<string, StsSite>,
  address: string,
): Promise<PolicyServer> {
  const fetches = new Map<string, number>();
  const contexts = new Map<string, KeyPair>();
  for (const [domain, site] of Object.entries(sites)) {
    const pair = await ca.issue({ names: [`mta-sts.${domain}`], ...(site.expired ? { days: -1 } : {}) });
    contexts.set(`mta-sts.${domain}`, pair);
  }
  const server = createServer(
    {
      SNICallback: (name, cb) => {
        const pair = contexts.get(name);
        if (pair) cb(null, createSecureContext(pair));
        else cb(new Error(`no certificate for ${name}`));
      },
    },
    (req, res) => {
      const domain = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^mta-sts\./, '');
      const site = sites[domain];
      if (!site || req.url !== '/.well-known/mta-sts.txt') {
        res.writeHead(404).end();
        return;
      }
      fetches.set(domain, (fetches.get(domain) ?? 0) + 1);
      res.writeHead(200, { 'content-type': site.contentType ?? 'text/plain' }).end(site.body);
    },
  );
  await new Promise<void>((r) => server.listen(443, address, r));
  return {
    fetches,
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
