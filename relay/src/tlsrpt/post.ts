// §5.4: a report POSTed to an `https:` rua, the certificate verified like any HTTPS client,
// no redirects followed; any 2xx is success.
import https from 'node:https';

/** Long enough for a slow collector, short enough that one cannot hold the daily run for long. */
const TIMEOUT_MS = 30_000;

export function postReport(url: string, body: Buffer): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/tlsrpt+gzip', 'Content-Length': body.length },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, detail: `HTTP ${status}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ ok: false, detail: err.message }));
    req.end(body);
  });
}
