// POST /api/tlsrpt/send on the management port (admin): sends TLS-RPT reports now instead of at
// the next hourly check: after a collector or relay outage, a finished day's reports and pending
// retries at once; for today, this relay's counts so far (before a relay without shared state is
// retired, or to see what a domain will be sent). Mounted by admin/http.ts.
import type { Route } from '../admin/http.ts';
import { SendRefused, type SentReport } from './reporter.ts';

export interface TlsReportRouteDeps {
  configured: () => boolean;
  sendNow: (day?: string) => Promise<SentReport[]>;
}

export function tlsReportRoutes(deps: TlsReportRouteDeps): Route[] {
  return [
    {
      method: 'POST',
      pattern: /^\/api\/tlsrpt\/send$/,
      access: 'admin',
      action: 'tlsrpt-send',
      handler: async (_p, url) => {
        const day = url.searchParams.get('day') ?? undefined;
        if (day !== undefined && !isDay(day))
          return { status: 400, body: { error: `day must be YYYY-MM-DD (UTC), not ${JSON.stringify(day)}` } };
        if (!deps.configured())
          return { status: 409, body: { error: 'delivery.tlsReports is not configured' } };
        try {
          const reports = await deps.sendNow(day);
          return {
            status: 200,
            body: { reports },
            audit: {
              day: day ?? 'finished',
              reports: reports.length,
              failed: reports.filter((r) => !r.ok).length,
            },
          };
        } catch (err) {
          if (err instanceof SendRefused) return { status: 409, body: { error: err.message } };
          throw err;
        }
      },
    },
  ];
}

function isDay(text: string): boolean {
  const ms = Date.parse(`${text}T00:00:00Z`);
  return /^\d{4}-\d\d-\d\d$/.test(text) && !Number.isNaN(ms) && new Date(ms).toISOString().startsWith(text);
}
