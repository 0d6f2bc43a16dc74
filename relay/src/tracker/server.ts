// The tracking endpoint: GET /o/<token>.gif answers a 1x1 GIF and counts an open, GET /c/<token>
// redirects to the link's original URL and counts a click, both only for tokens whose MAC verifies
// with the pool's key (relay tracking/links.ts): anything else is 404, never a redirect. Nothing
// about the reader is stored: counts per sending domain, human or machine (classify.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { CLICK_PATH, OPEN_PATH, decodeToken } from '../tracking/links.ts';
import { RecentClicks, classifyClick, classifyOpen } from './classify.ts';
import { PoolUniqueOpens } from './unique.ts';
import { trackerEvent, type MailEvent } from '../events/event.ts';

/** The smallest transparent GIF (43 bytes). */
export const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export interface TrackerMetrics {
  opens: Counter<'sending_domain' | 'reader'>;
  uniqueOpens: Counter<'sending_domain' | 'reader'>;
  uniqueFallback: Counter;
  clicks: Counter<'sending_domain' | 'reader'>;
  refused: Counter<'reason'>;
}

export function trackerMetrics(registry: Registry): TrackerMetrics {
  return {
    opens: new Counter({
      name: 'mailfleet_tracker_opens_total',
      help: 'Open pixels fetched, by sending domain; reader="machine" for image proxies and scanners (docs/tracking.md).',
      labelNames: ['sending_domain', 'reader'],
      registers: [registry],
    }),
    uniqueOpens: new Counter({
      name: 'mailfleet_tracker_unique_opens_total',
      help: 'First open of each message by each reader class: across the tracker pods through the shared store (spec.sharedState), else per tracker pod and its last 100000 messages (unique.ts, docs/tracking.md).',
      labelNames: ['sending_domain', 'reader'],
      registers: [registry],
    }),
    uniqueFallback: new Counter({
      name: 'mailfleet_tracker_unique_opens_fallback_total',
      help: 'Opens judged unique or not on this tracker pod alone because the shared store did not answer.',
      registers: [registry],
    }),
    clicks: new Counter({
      name: 'mailfleet_tracker_clicks_total',
      help: 'Tracked links followed, by sending domain; reader="machine" for link scanners (docs/tracking.md).',
      labelNames: ['sending_domain', 'reader'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'mailfleet_tracker_refused_total',
      help: 'Requests answered 404: reason="bad_token" (MAC does not verify) or "not_found".',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

export interface TrackerOptions {
  /** Current key first, then previous keys that still verify. */
  keys: () => readonly Buffer[];
  metrics: TrackerMetrics;
  now?: () => number;
  /** Where opened/clicked events go (the events webhook's outbox); absent: none are made. */
  events?: (event: MailEvent) => void;
  /** The unique-open decision (with the pool's shared store); default: this pod's memory. */
  unique?: PoolUniqueOpens;
}

export function trackerHandler(o: TrackerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const recent = new RecentClicks();
  const unique = o.unique ?? new PoolUniqueOpens();
  const now = o.now ?? Date.now;
  const notFound = (res: ServerResponse, reason: 'bad_token' | 'not_found') => {
    o.metrics.refused.inc({ reason });
    res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('not found\n');
  };
  return (req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const fetch = { method, userAgent: String(req.headers['user-agent'] ?? '') };
    if (path.startsWith(OPEN_PATH) && path.endsWith('.gif')) {
      const token = decodeToken(o.keys(), path.slice(OPEN_PATH.length, -'.gif'.length));
      if (token?.kind !== 'open') return notFound(res, 'bad_token');
      const reader = classifyOpen(fetch);
      o.metrics.opens.inc({ sending_domain: token.domain, reader });
      // Counted when decided: the pixel never waits for the shared store.
      void unique.first(reader, token.domain, token.messageId).then((verdict) => {
        if (verdict.first) o.metrics.uniqueOpens.inc({ sending_domain: token.domain, reader });
        if (verdict.fallback) o.metrics.uniqueFallback.inc();
      });
      o.events?.(trackerEvent('opened', token, reader, now()));
      res.writeHead(200, {
        'content-type': 'image/gif',
        'content-length': PIXEL.length,
        // Every fetch is an open: no cache may answer for us.
        'cache-control': 'no-store, no-cache, must-revalidate, max-age=0',
      });
      res.end(method === 'HEAD' ? undefined : PIXEL);
      return;
    }
    if (path.startsWith(CLICK_PATH)) {
      const token = decodeToken(o.keys(), path.slice(CLICK_PATH.length));
      if (token?.kind !== 'click') return notFound(res, 'bad_token');
      const burst = recent.record(`${token.domain}\0${token.messageId}`, token.url, now());
      const reader = classifyClick(fetch, burst);
      o.metrics.clicks.inc({ sending_domain: token.domain, reader });
      o.events?.(trackerEvent('clicked', token, reader, now()));
      // 302 (RFC 9110 §15.4.3); no Referer to the destination, which would carry the token.
      res
        .writeHead(302, {
          location: token.url,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        })
        .end();
      return;
    }
    notFound(res, 'not_found');
  };
}

export async function listen(
  handler: ReturnType<typeof trackerHandler>,
  port: number,
  host: string,
): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
