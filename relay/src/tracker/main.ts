// Wiring only: `mailfleet tracker --key-file F [--port 8081] [--metrics-port 8080] [--host H]`.
// The tracking port is what the user's Ingress or Gateway exposes over HTTPS; the metrics port
// (/metrics, /healthz) stays inside the cluster.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { jsonLogger } from '../log.ts';
import { trackingKey } from '../tracking/apply.ts';
import { listen, trackerHandler, trackerMetrics } from './server.ts';

const usage = `usage: mailfleet tracker --key-file <file> [--port 8081] [--metrics-port 8080] [--host 0.0.0.0]\n`;

export async function main(args: string[]): Promise<void> {
  const log = jsonLogger((line) => process.stdout.write(line));
  const { values } = parseArgs({
    args,
    options: {
      'key-file': { type: 'string' },
      port: { type: 'string', default: '8081' },
      'metrics-port': { type: 'string', default: '8080' },
      host: { type: 'string', default: '0.0.0.0' },
    },
  });
  const keyFile = values['key-file'];
  if (!keyFile) {
    process.stderr.write(usage);
    process.exitCode = 2;
    return;
  }
  // The key Secret is created once and never rewritten (operator tracking.ts): read at start.
  const keys = [trackingKey(readFileSync(keyFile))];
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailfleet_tracker_' });
  const metrics = trackerMetrics(registry);
  const tracker = await listen(
    trackerHandler({ keys: () => keys, metrics }),
    Number(values.port),
    values.host,
  );
  const admin = await listen(
    (req, res) => {
      if (req.url === '/metrics') {
        void registry
          .metrics()
          .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
      } else if (req.url === '/healthz') res.writeHead(200).end('ok\n');
      else res.writeHead(404).end();
    },
    Number(values['metrics-port']),
    values.host,
  );
  log('info', 'tracker started', {
    ports: { tracking: (tracker.address() as AddressInfo).port, http: (admin.address() as AddressInfo).port },
  });
  const stop = () => {
    tracker.close();
    admin.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
