// `npm start`: with KUBECONFIG, run the operator against that cluster. Without: start the local
// control plane, install the CRDs, the RBAC and the samples, run the operator with the
// ServiceAccount kubeconfig, and print the pool's endpoint, DNS records and metrics URL.
// Ctrl-C stops everything.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../test/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../test/helpers/operator/harness.ts';

if (process.env.KUBECONFIG) {
  const { main } = await import('../operator/src/main.ts');
  await main(['--kubeconfig', process.env.KUBECONFIG, ...process.argv.slice(2)]);
} else {
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say('starting a local control plane (etcd, kube-apiserver, controllers, kwok)...');
  const cp = await startCluster();
  const operator = await startOperator(cp, 'start');
  const stop = async () => {
    await operator.stop();
    await cp.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await cp.kubectl(['apply', '-f', path.join(REPO_ROOT, 'crds/samples/namespace.yaml')]);
  // A self-signed certificate for the sample pool's TLS Secret.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '7',
      '-subj',
      '/CN=mta.example.com',
      '-keyout',
      path.join(dir, 'tls.key'),
      '-out',
      path.join(dir, 'tls.crt'),
    ],
    { stdio: 'ignore' },
  );
  await cp.kubectl([
    '-n',
    'mail',
    'create',
    'secret',
    'tls',
    'transactional-tls',
    `--cert=${path.join(dir, 'tls.crt')}`,
    `--key=${path.join(dir, 'tls.key')}`,
  ]);
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
  say(`\nSMTP credentials (Secret mail/transactional-credentials): user ${b64(creds.data.username)}`);
  say(
    `Inside the cluster: swaks --server ${pool.status.endpoint.host}:587 --tls --auth-user ${b64(creds.data.username)} --auth-password '<password>' --from app@example.com --to you@example.net`,
  );
  say(`Operator metrics: ${operator.metricsUrl}`);
  say(`kubectl: KUBECONFIG=${cp.kubeconfig} kubectl -n mail get rp,sd,rl,all`);
  say('\nCtrl-C stops everything.');
}
