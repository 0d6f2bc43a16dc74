// Wiring only: options, client, metrics, HTTP, leader election, controller, shutdown.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { KubeClient } from './kube/client.ts';
import { Writer } from './kube/writer.ts';
import { LeaderElector } from './kube/lease.ts';
import { generators, slowGenerators } from './kube/generators.ts';
import { certificateIssuer } from './kube/certificates.ts';
import { parseDuration } from '../../contract/duration.ts';
import { loadKubeConfigClass } from './kube/kubeconfig.ts';
import { Controller } from './controller/controller.ts';
import { jsonLogger, withFields } from '../../contract/log.ts';
import type { LogLevel } from '../../contract/log.ts';
import { createMetrics } from './metrics.ts';
import { startHttp } from './http.ts';

const USAGE = `usage: mailfleet operator [options]
  --kubeconfig <file>        default: $KUBECONFIG, else in-cluster
  --namespaces <a,b>         watch only these namespaces (default: all)
  --http <host:port>         /healthz /readyz /metrics (default 0.0.0.0:8081)
  --leader-elect <bool>      default true
  --lease-namespace <ns>     default $POD_NAMESPACE or default
  --identity <id>            default the host name
  --image <ref>              relay image when a pool sets none (default $MAILFLEET_IMAGE)
  --image-pull-secrets <a,b> relay pods' imagePullSecrets when a pool sets none (Secrets in
                             each pool's namespace; default: none)
  --spf-include <host>       recommended SPF include
  --operator-namespace <ns>  admitted to the relays' management port by their NetworkPolicy
                             (default $POD_NAMESPACE)
  --monitoring-namespaces <a,b>
                             also admitted there: where Prometheus runs (default: none)
  --max-concurrent-rollouts <n>
                             pools whose relays are replaced at the same time when their pod
                             template changes (an operator upgrade); the others wait, condition
                             RolloutQueued (default 2; 0: no limit)
  --workers <n>              concurrent reconciles (default 4)
  --resync <seconds>         reconcile every pool again this often (default 300)
  --batch-ms <ms>            a changed pool waits this long for more changes before its
                             reconcile, so a burst is one reconcile (default 1000; 0: at once)
  --scrape-interval <s>      bounce autopilot: scrape relay pods' /metrics this often (default 30; 0: off)
  --relay-metrics-targets <file>
                             JSON {"namespace/pod": "http://host:port/metrics"}, read every round:
                             for relays not reachable at <pod IP>:8080 (local demo, tests)
  --dns-server <ip[:port]>   verify published DNS records through this resolver (default: off)
  --dns-interval <seconds>   look the records up again this often (default 300)
  --crd-check-interval <s>   look for ServiceMonitor and cert-manager CRDs installed later this often (default 60)
  --tls-validity <duration>  validity of generated serving certificates, renewed when a third
                             remains (default 8760h)
  --tls-ca-validity <duration>
                             validity of each pool's generated CA (default 43800h)
  --cluster-domain <domain>  DNS domain of the cluster, for certificate names (default cluster.local)
  --log-level <level>        debug, info, warn, error
`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      namespaces: { type: 'string', default: '' },
      http: { type: 'string', default: '0.0.0.0:8081' },
      'leader-elect': { type: 'string', default: 'true' },
      'lease-namespace': { type: 'string', default: process.env.POD_NAMESPACE ?? 'default' },
      identity: { type: 'string', default: `${hostname()}-${process.pid}` },
      image: { type: 'string', default: process.env.MAILFLEET_IMAGE ?? 'ghcr.io/mailfleet/mailfleet:latest' },
      'image-pull-secrets': { type: 'string', default: '' },
      'spf-include': { type: 'string' },
      'operator-namespace': { type: 'string', default: process.env.POD_NAMESPACE ?? '' },
      'monitoring-namespaces': { type: 'string', default: '' },
      'max-concurrent-rollouts': { type: 'string', default: '2' },
      workers: { type: 'string', default: '4' },
      resync: { type: 'string', default: '300' },
      'batch-ms': { type: 'string', default: '1000' },
      'scrape-interval': { type: 'string', default: '30' },
      'relay-metrics-targets': { type: 'string' },
      'dns-server': { type: 'string' },
      'dns-interval': { type: 'string', default: '300' },
      'crd-check-interval': { type: 'string', default: '60' },
      'tls-validity': { type: 'string', default: '8760h' },
      'tls-ca-validity': { type: 'string', default: '43800h' },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const log = withFields(
    jsonLogger((line) => process.stderr.write(line), values['log-level'] as LogLevel),
    { component: 'operator' },
  );
  const validityMs = parseDuration(values['tls-validity']);
  const caValidityMs = parseDuration(values['tls-ca-validity']);
  if (!validityMs || !caValidityMs)
    throw new Error('--tls-validity and --tls-ca-validity take durations such as 2160h');
  const KubeConfig = await loadKubeConfigClass();
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const metrics = createMetrics();
  const client = new KubeClient(kc, metrics);
  const controller = new Controller({
    client,
    writer: new Writer(client),
    log,
    metrics,
    generators,
    issuer: certificateIssuer,
    tls: { validityMs, caValidityMs, clusterDomain: values['cluster-domain'] },
    slowGenerators,
    namespaces: values.namespaces.split(',').filter(Boolean),
    image: values.image,
    imagePullSecrets: values['image-pull-secrets'].split(',').filter(Boolean),
    ...(values['spf-include'] ? { spfInclude: values['spf-include'] } : {}),
    managementNamespaces: [
      ...new Set(
        [values['operator-namespace'], ...values['monitoring-namespaces'].split(',')].filter(Boolean),
      ),
    ],
    maxConcurrentRollouts: Number(values['max-concurrent-rollouts']),
    workers: Number(values.workers),
    resyncSeconds: Number(values.resync),
    batchMs: Number(values['batch-ms']),
    scrapeSeconds: Number(values['scrape-interval']),
    ...(values['relay-metrics-targets'] ? { relayMetricsTargets: values['relay-metrics-targets'] } : {}),
    ...(values['dns-server'] ? { dnsServer: values['dns-server'] } : {}),
    dnsIntervalSeconds: Number(values['dns-interval']),
    crdCheckSeconds: Number(values['crd-check-interval']),
  });
  const [host = '0.0.0.0', port = '8081'] = values.http.split(/:(?=\d+$)/);
  let started = false;
  const server = await startHttp(host, Number(port), metrics.registry, {
    healthy: () => !started || controller.oldestActivitySeconds < 900,
    ready: () => !started || controller.synced,
  });
  log('info', 'listening', { http: `${host}:${(server.address() as AddressInfo).port}` });

  const shutdown = new AbortController();
  const elector = new LeaderElector({
    client,
    namespace: values['lease-namespace'],
    name: 'mailfleet-operator',
    identity: values.identity,
    log,
    onLost: () => {
      // A former leader must stop writing at once: requests in flight are cut off and none is
      // sent after this; the supervisor restarts the process as a standby.
      client.fence();
      controller.stop();
      process.exitCode = 1;
      shutdown.abort();
    },
  });
  const stop = async () => {
    if (shutdown.signal.aborted) return;
    log('info', 'shutting down');
    shutdown.abort();
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());

  // Caches and the relay scraper run before leadership (read-only), so a standby that takes over
  // reconciles from filled caches with the bounce windows it has been measuring all along.
  await controller.watch();
  started = true;
  if (values['leader-elect'] !== 'false') {
    log('info', 'waiting for leadership', {
      identity: values.identity,
      lease: `${values['lease-namespace']}/mailfleet-operator`,
    });
    await elector.acquire(shutdown.signal);
    metrics.leader.set(elector.leading ? 1 : 0);
  }
  if (!shutdown.signal.aborted) {
    controller.lead();
    log('info', 'controller started', { namespaces: values.namespaces || 'all' });
    await new Promise((resolve) => shutdown.signal.addEventListener('abort', resolve, { once: true }));
  }
  controller.stop();
  await elector.release();
  metrics.leader.set(0);
  server.close();
  server.closeAllConnections();
  // Exit now, whatever timers or sockets are left (a watch backoff, a pending retry): a former
  // leader that lingers without leading would look alive to its supervisor and never be restarted.
  log('info', 'exiting', { code: process.exitCode ?? 0 });
  process.exit(process.exitCode ?? 0);
}
