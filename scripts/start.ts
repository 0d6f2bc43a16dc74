// `npm start`: with KUBECONFIG, run the operator against that cluster. Without: start the local
// control plane, install the CRDs, the RBAC and the samples, run the operator with the
// ServiceAccount kubeconfig, and print the pool's endpoint, DNS records and metrics URL. Then run
// a real relay process for each Ready (kwok) relay pod, from that pod's own args, env and mounted
// ConfigMap/Secret (dev/local-pod.ts), delivering Direct through a dnsmasq that
// answers every name with 127.0.0.1 to a local smtp-sink, and print swaks lines that work.
// Ctrl-C stops everything.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../dev/controlplane/cluster.ts';
import { readyRelayPods, runPodLocally } from '../dev/local-pod.ts';
import type { LocalRelay } from '../dev/local-pod.ts';
import { freePort } from '../dev/net.ts';
import { eventually, startCluster, startOperator } from '../dev/operator.ts';
import { spawnDnsmasq, startSink, stopProcess } from '../dev/peers.ts';

if (process.env.KUBECONFIG) {
  const { main } = await import('../operator/src/main.ts');
  await main(['--kubeconfig', process.env.KUBECONFIG, ...process.argv.slice(2)]);
} else {
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say('starting a local control plane (etcd, kube-apiserver, controllers, kwok)...');
  const cp = await startCluster();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-start-'));
  // The kwok pods have no reachable IP: the operator scrapes the local relays through this file.
  const targets = path.join(work, 'relay-metrics-targets.json');
  fs.writeFileSync(targets, '{}');
  const operator = await startOperator(cp, 'start', ['--relay-metrics-targets', targets]);
  const relays: LocalRelay[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const relay of relays) await relay.stop();
    for (const cleanup of cleanups) await cleanup();
    await operator.stop();
    await cp.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await cp.kubectl(['apply', '-f', path.join(REPO_ROOT, 'crds/samples/namespace.yaml')]);
  // The sample pool keeps its spool on PersistentVolumes; kwok has no provisioner, so offer some.
  for (let i = 0; i < 4; i++) {
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: `spool-${i}` },
        spec: {
          capacity: { storage: '10Gi' },
          accessModes: ['ReadWriteOnce'],
          hostPath: { path: `/tmp/spool-${i}` },
        },
      }),
    });
  }
  await cp.kubectl(['apply', '-f', path.join(REPO_ROOT, 'crds/samples')]);
  say('waiting for rp/transactional to become Ready...');
  await cp.kubectl(['-n', 'mail', 'wait', '--for=condition=Ready', 'rp/transactional', '--timeout=180s']);
  const get = async (what: string) =>
    JSON.parse((await cp.kubectl(['-n', 'mail', 'get', what, '-o', 'json'])).stdout);
  const pool = await get('rp/transactional');
  say(
    `\nRelayPool transactional: ${pool.status.readyReplicas}/${pool.spec.replicas} relays ready, endpoint ${pool.status.endpoint.host}`,
  );
  for (const name of ['example-com', 'news-example-com']) {
    const sd = await eventually(`${name} DKIM record`, async () => {
      const o = await get(`sd/${name}`);
      return o.status?.dkim?.dnsRecord ? o : undefined;
    });
    say(`\nDNS records for ${sd.spec.domain}:`);
    for (const r of [sd.status.dkim.dnsRecord, sd.status.spf, sd.status.dmarc])
      say(`  ${r.name} ${r.type} "${r.value}"`);
  }
  const creds = await get('secret/transactional-credentials');
  const b64 = (v: string) => Buffer.from(v, 'base64').toString();
  const user = b64(creds.data.username);
  const password = b64(creds.data.password);
  say(`\nSMTP credentials (Secret mail/transactional-credentials): user ${user}`);
  say(
    `TLS: the operator's certificate for ${(pool.status.tls?.dnsNames ?? []).join(', ')} (until ${pool.status.tls?.notAfter}); clients trust ca.crt of ConfigMap mail/${pool.status.tls?.caConfigMap}`,
  );
  say(
    `Inside a cluster: swaks --server ${pool.status.endpoint.host}:587 --tls --auth-user ${user} --auth-password '<password>' --from app@example.com --to you@example.net`,
  );

  // Real relays for the Ready pods. The "Internet" is one smtp-sink: dnsmasq answers every name
  // with 127.0.0.1 and the relays deliver Direct (MX, else A) to the sink's port instead of 25.
  const sink = await startSink();
  cleanups.push(() => sink.stop());
  const dnsPort = await freePort();
  // Every name is local: A queries get 127.0.0.1, MX queries no data (so the A fallback).
  const dns = spawnDnsmasq(dnsPort, ['--address=/#/127.0.0.1', '--local=/#/']);
  cleanups.push(() => stopProcess(dns, 'SIGTERM'));
  const mapping: Record<string, string> = {};
  for (const pod of await readyRelayPods(cp, 'mail', 'transactional')) {
    const relay = await runPodLocally(cp, pod, {
      configure: (config) => {
        const delivery = config.delivery as Record<string, unknown>;
        delivery.dns = { servers: [`127.0.0.1:${dnsPort}`] };
        delivery.directPort = sink.port;
        // Ctrl-C should not wait for the sample's 60s drain.
        config.drainTimeout = '2s';
      },
    });
    relays.push(relay);
    mapping[relay.pod] = relay.metricsUrl;
    say(
      `\nrelay for pod ${relay.pod}: ${Object.entries(relay.ports)
        .map(([name, port]) => `${name} 127.0.0.1:${port}`)
        .join(', ')} (config ${relay.configFile})`,
    );
  }
  fs.writeFileSync(targets, JSON.stringify(mapping));
  const first = relays[0];
  if (first) {
    say('\nTry it (delivered to the local smtp-sink, which writes each message to a file):');
    say(
      `  swaks --server 127.0.0.1:${first.ports.smtp} --from app@example.com --to you@example.net   # port 25 listener, allowed network`,
    );
    if (first.ports.submission)
      say(
        `  swaks --server 127.0.0.1:${first.ports.submission} --tls --auth-user ${user} --auth-password '${password}' --from app@example.com --to you@example.net   # 587: STARTTLS + AUTH`,
      );
    say(`  ls ${sink.dir}   # what the "Internet" received`);
    say(`  curl -s ${first.metricsUrl} | grep mailfleet_relay_recipients`);
  }
  say(`Operator metrics: ${operator.metricsUrl}`);
  say(`kubectl: KUBECONFIG=${cp.kubeconfig} kubectl -n mail get rp,sd,rl,all`);
  say('\nCtrl-C stops everything.');
}
