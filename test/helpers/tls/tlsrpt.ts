// TLS-RPT collectors for tests: an HTTPS receiver (certificate for `localhost` from the test CA)
// that keeps every POST and can be told to refuse some paths, and the RFC 8460 §4.4 field check
// of a report's JSON.
import https from 'node:https';
import type { TestCa } from './test-ca.ts';

export interface Collector {
  port: number;
  /** `https://localhost:<port><path>` */
  url(path: string): string;
  posted: { path: string; type: string; body: Buffer }[];
  /** Paths answered 503 (the collector "down" for them). */
  refuse: Set<string>;
  stop(): Promise<void>;
}

export async function startCollector(ca: TestCa): Promise<Collector> {
  const cert = await ca.issue({ names: ['localhost'] });
  const posted: Collector['posted'] = [];
  const refuse = new Set<string>();
  const server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      if (refuse.has(path)) return void res.writeHead(503).end();
      posted.push({ path, type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (path) => `https://localhost:${port}${path}`,
    posted,
    refuse,
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** RFC 8460 §4.4: each field of the report, and its JSON type. */
export function schemaProblems(report: unknown): string[] {
  const problems: string[] = [];
  const want = (ok: boolean, what: string) => ok || problems.push(what);
  const obj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const count = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  const time = (v: unknown) => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v);
  if (!obj(report)) return ['not an object'];
  want(typeof report['organization-name'] === 'string', 'organization-name');
  want(typeof report['contact-info'] === 'string', 'contact-info');
  want(typeof report['report-id'] === 'string', 'report-id');
  const range = report['date-range'];
  want(obj(range) && time(range['start-datetime']) && time(range['end-datetime']), 'date-range');
  want(Array.isArray(report.policies), 'policies');
  for (const p of (report.policies as unknown[]) ?? []) {
    if (!obj(p) || !obj(p.policy) || !obj(p.summary)) {
      problems.push('policy entry');
      continue;
    }
    want(['sts', 'tlsa', 'no-policy-found'].includes(p.policy['policy-type'] as string), 'policy-type');
    want(strings(p.policy['policy-string']), 'policy-string');
    want(typeof p.policy['policy-domain'] === 'string', 'policy-domain');
    want(p.policy['mx-host'] === undefined || strings(p.policy['mx-host']), 'mx-host');
    want(count(p.summary['total-successful-session-count']), 'total-successful-session-count');
    want(count(p.summary['total-failure-session-count']), 'total-failure-session-count');
    for (const f of (p['failure-details'] as unknown[]) ?? []) {
      want(obj(f) && typeof f['result-type'] === 'string', 'result-type');
      want(obj(f) && count(f['failed-session-count']), 'failed-session-count');
      want(
        obj(f) && (f['receiving-ip'] === undefined || typeof f['receiving-ip'] === 'string'),
        'receiving-ip',
      );
      want(
        obj(f) && (f['sending-mta-ip'] === undefined || typeof f['sending-mta-ip'] === 'string'),
        'sending-mta-ip',
      );
    }
  }
  return problems;
}
