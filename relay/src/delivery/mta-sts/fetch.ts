// Fetching a domain's MTA-STS policy over HTTPS (RFC 8461 §3.3): https://mta-sts.<domain>/
// .well-known/mta-sts.txt, the certificate verified for that name, no redirects, 200 only,
// Content-Type text/plain, a size and a time limit. The host is resolved through the relay's own
// resolvers (delivery.dns.servers), like the MX hosts it protects.
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export interface AddressLookup {
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export type FetchResult =
  { ok: true; body: string } | { ok: false; failure: StsFetchFailure; detail: string };

/** RFC 8460 §4.3.2.2: the certificate of the policy host did not verify, or anything else went wrong. */
export type StsFetchFailure = 'sts-webpki-invalid' | 'sts-policy-fetch-error';

// §3.3: "SHOULD impose a limit on the maximum size of the response body (e.g., 64 KB)" and "a
// timeout (e.g., 1 minute)".
const MAX_POLICY_BYTES = 64 * 1024;
const FETCH_TIMEOUT_MS = 60_000;
const PORT = 443;
const PATH = '/.well-known/mta-sts.txt';

export async function fetchStsPolicy(domain: string, dns: AddressLookup): Promise<FetchResult> {
  const host = `mta-sts.${domain}`;
  let address: string | undefined;
  try {
    address = (await dns.resolve4(host).catch(() => dns.resolve6(host)))[0];
  } catch (err) {
    return { ok: false, failure: 'sts-policy-fetch-error', detail: `${host}: ${(err as Error).message}` };
  }
  if (!address || !isIP(address))
    return { ok: false, failure: 'sts-policy-fetch-error', detail: `${host}: no address` };
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: FetchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const fail = (failure: StsFetchFailure, detail: string) => done({ ok: false, failure, detail });
    const timer = setTimeout(() => fail('sts-policy-fetch-error', 'timed out'), FETCH_TIMEOUT_MS);
    const req = request(
      {
        host: address,
        port: PORT,
        path: PATH,
        method: 'GET',
        servername: host,
        headers: { host },
        rejectUnauthorized: true,
        agent: false,
      },
      (res: IncomingMessage) => {
        const problem = responseProblem(res.statusCode ?? 0, res.headers['content-type']);
        if (problem) return fail('sts-policy-fetch-error', problem);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_POLICY_BYTES)
            return fail('sts-policy-fetch-error', `larger than ${MAX_POLICY_BYTES} bytes`);
          chunks.push(chunk);
        });
        res.on('end', () => done({ ok: true, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => fail('sts-policy-fetch-error', err.message));
      },
    );
    req.on('error', (err: Error & { code?: string }) =>
      fail(
        isCertificateError(err) ? 'sts-webpki-invalid' : 'sts-policy-fetch-error',
        err.code ?? err.message,
      ),
    );
    req.end();
  });
}

/** §3.3: redirects are not followed, only 200 counts; §3.2: the media type is text/plain. */
export function responseProblem(status: number, contentType: string | undefined): string | undefined {
  if (status !== 200) return `HTTP ${status}`;
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media !== 'text/plain') return `Content-Type ${contentType ?? 'missing'} is not text/plain`;
  return undefined;
}

function isCertificateError(err: Error & { code?: string }): boolean {
  const code = err.code ?? '';
  return code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code);
}
