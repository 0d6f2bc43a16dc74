// A plain-HTTP proxy in front of the test control plane's kube-apiserver that can hold chosen
// requests back: how a slow or retried list (a large cache, a 429 at start) looks to the operator.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parse, stringify } from 'yaml';

export type ApiProxy = {
  /** A kubeconfig with the same credentials whose server is this proxy. */
  kubeconfig: string;
  /** Requests held back so far, as "METHOD path?query". */
  delayed: string[];
  stop(): Promise<void>;
};

/** How long to hold one request back (0: not at all). */
export type DelayRule = (method: string, url: URL) => number;

/** Lists (not watches) of one resource, by its plural name. */
export const isList = (plural: string) => (method: string, url: URL) =>
  method === 'GET' && url.pathname.endsWith(`/${plural}`) && url.searchParams.get('watch') !== 'true';

export async function startApiProxy(
  kubeconfigPath: string,
  delay: DelayRule,
  out: string,
): Promise<ApiProxy> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a kubeconfig as written by cluster.ts
  const config = parse(fs.readFileSync(kubeconfigPath, 'utf8')) as any;
  const cluster = config.clusters[0].cluster as { server: string; 'certificate-authority-data': string };
  const upstream = new URL(cluster.server);
  const ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
  const agent = new https.Agent({ keepAlive: true, ca });
  const delayed: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const ms = delay(req.method ?? 'GET', url);
    if (ms > 0) delayed.push(`${req.method} ${url.pathname}${url.search}`);
    let gone = false;
    res.on('close', () => (gone = true));
    setTimeout(() => {
      // A client that gave up while held (a timeout, an abort) never reaches the API server.
      if (gone) return;
      const forward = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
          agent,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      res.on('close', () => forward.destroy());
      req.pipe(forward);
    }, ms);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  // Plain HTTP to the proxy: client-node allows it only with insecure-skip-tls-verify.
  config.clusters[0].cluster = { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true };
  fs.writeFileSync(out, stringify(config));
  return {
    kubeconfig: out,
    delayed,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
