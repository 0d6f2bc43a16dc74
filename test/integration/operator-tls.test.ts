// TLS without homework, on the real control plane: `kubectl apply -f crds/samples/` alone gives a
// Ready pool whose real relays (run from the pods' own specs) offer STARTTLS with the certificate
// the operator generated, verified by openssl and nodemailer against the CA it publishes; renewal
// (a 45 s validity here) reaches the running relay without a restart or a failed session; the
// cert-manager path with cert-manager's Certificate CRD installed; a user's own Secret untouched;
// the expiry gauge and the issued counter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { readyRelayPods, runPodLocally } from '../../dev/local-pod.ts';
import type { LocalRelay } from '../../dev/local-pod.ts';
import { rawMessage, removeDir, sendMessage, tempDir } from '../helpers/relay/peers.ts';
import { issueCA, issueServing } from '../../operator/src/kube/certificates.ts';

const NS = 'mail';
const VALIDITY_S = 45;
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let relay: LocalRelay | undefined;
let work: string | undefined;
// The kubelet's part once the relay runs: project changed Secrets and ConfigMaps into its volume
// every second, as a kubelet syncs them (the generated certificate lives 45 s).
let syncing: Promise<void> | undefined;
let sync = false;
function startSync(): void {
  sync = true;
  syncing = (async () => {
    while (sync) {
      // A failed read (the API server busy) is tried again on the next round, as a kubelet does.
      await relay?.refresh().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
}
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON of many kinds
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;

before(async () => {
  // A cluster as a new user finds it: no mailfleet CRDs (the README's quick start installs them);
  // the operator's namespace and RBAC, as its chart would install them.
  cp = await startControlPlane({ nodes: 3 });
  await k(['create', 'namespace', 'mailfleet-system']);
  await k(['apply', '-f', path.join(REPO_ROOT, 'operator/deploy/rbac.yaml')]);
  work = await tempDir('operator-tls');
  // Storage for the sample pool's PersistentVolumeClaims: a cluster's provisioner, not homework.
  for (let i = 0; i < 2; i++)
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
});

after(async () => {
  sync = false;
  await syncing;
  await relay?.stop();
  if (relay) await removeDir(relay.dir);
  if (work) await removeDir(work);
  await operator?.stop();
  await cp?.stop();
});

/** openssl s_client over STARTTLS, verifying chain and host name against the CA file. */
function sClient(
  port: number,
  caFile: string,
  hostname: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-starttls',
        'smtp',
        '-servername',
        hostname,
        '-CAfile',
        caFile,
        '-verify_return_error',
        '-verify_hostname',
        hostname,
      ],
      { timeout: 20_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end('QUIT\r\n');
  });
}

const servedSerial = (stdout: string) => {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
  return pem ? new X509Certificate(pem).serialNumber : undefined;
};

async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(operator?.metricsUrl ?? '')).text();
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) && line.includes(labels)) return Number(line.split(' ').pop());
  return undefined;
}

let caFile = '';

test("the README's quick start: the CRDs, then the samples alone become Ready under kubectl wait", async () => {
  // Word for word as README.md shows it. (One `kubectl apply -f crds/ -f crds/samples/` fails: kubectl
  // maps every object before the new CRDs are served, "no matches for kind RateLimit".)
  const crds = path.join(REPO_ROOT, 'crds/');
  for (const args of [
    ['apply', '-f', crds],
    ['wait', '--for=condition=Established', 'crd', '--all'],
    ['apply', '-f', path.join(REPO_ROOT, 'crds/samples/')],
  ]) {
    const r = await cp.kubectl(args, { allowFail: true });
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  }
  operator = await startOperator(cp, 'tls', [
    '--scrape-interval',
    '0',
    '--tls-validity',
    `${VALIDITY_S}s`,
    '--crd-check-interval',
    '1',
    '--batch-ms',
    '200',
  ]);
  // kubectl's own --timeout decides (the harness would kill a kubectl after 2 minutes).
  const waited = await cp.kubectl(
    ['wait', '--for=condition=Ready', 'rp', '--all', '-n', NS, '--timeout=3m'],
    {
      allowFail: true,
      timeoutMs: 200_000,
    },
  );
  if (waited.code !== 0) {
    const state = await cp.kubectl(['-n', NS, 'get', 'rp,sts,pods,pvc,secrets,events', '-o', 'wide'], {
      allowFail: true,
    });
    assert.fail(`${waited.stderr}\n${state.stdout}\n${operator?.logs.slice(-30).join('\n')}`);
  }
  const pool = await json(['-n', NS, 'get', 'rp/transactional']);
  const tls = pool.status.tls;
  assert.equal(tls.source, 'Generated');
  assert.equal(tls.secretName, 'transactional-tls-generated');
  assert.equal(tls.caConfigMap, 'transactional-ca');
  assert.deepEqual(tls.dnsNames, [
    'transactional',
    'transactional.mail',
    'transactional.mail.svc',
    'transactional.mail.svc.cluster.local',
    '*.transactional-headless.mail.svc',
    '*.transactional-headless.mail.svc.cluster.local',
  ]);
  assert.ok(Date.parse(tls.notAfter) > Date.now(), tls.notAfter);
  const condition = pool.status.conditions.find((c: { type: string }) => c.type === 'TLSReady');
  assert.equal(condition?.status, 'True');
  assert.equal(condition?.reason, 'Generated');
  const sts = await json(['-n', NS, 'get', 'statefulset/transactional']);
  const sources = sts.spec.template.spec.volumes[0].projected.sources as { secret?: { name: string } }[];
  assert.ok(
    sources.some((s) => s.secret?.name === 'transactional-tls-generated'),
    JSON.stringify(sources),
  );
  const ca = await json(['-n', NS, 'get', 'configmap/transactional-ca']);
  caFile = path.join(work ?? '', 'ca.crt');
  await writeFile(caFile, ca.data['ca.crt']);
  assert.equal(new X509Certificate(ca.data['ca.crt']).ca, true);
});

test('a relay of the sample pool offers STARTTLS with the generated certificate, verified against the published CA', async () => {
  assert.ok(caFile, 'the samples test ran');
  const [pod] = await readyRelayPods(cp, NS, 'transactional');
  assert.ok(pod, 'a Ready relay pod');
  relay = await runPodLocally(cp, pod);
  startSync();
  for (const [listener, hostname] of [
    ['smtp', 'transactional.mail.svc'],
    ['submission', 'transactional.mail.svc.cluster.local'],
    ['smtp', `${pod.metadata.name}.transactional-headless.mail.svc`],
  ] as const) {
    const r = await sClient(relay.ports[listener] ?? 0, caFile, hostname);
    assert.equal(r.code, 0, `${listener} as ${hostname}: ${r.stderr}\n${r.stdout.slice(-600)}`);
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
  }
  const wrong = await sClient(relay.ports.smtp ?? 0, caFile, 'mail.example.org');
  assert.notEqual(wrong.code, 0, 'a name the certificate does not carry fails verification');
});

test('renewal reaches the running relay without a restart: a new serial is served, no session fails', async (t) => {
  assert.ok(relay && caFile, 'the relay runs');
  const ca = (await json(['-n', NS, 'get', 'configmap/transactional-ca'])).data['ca.crt'] as string;
  const creds = (await json(['-n', NS, 'get', 'secret/transactional-credentials'])).data;
  const b64 = (v: string) => Buffer.from(v, 'base64').toString();
  const pid = relay.proc.pid;
  const uid = (await readyRelayPods(cp, NS, 'transactional')).map((p) => p.metadata.name).join();
  const first = servedSerial((await sClient(relay.ports.smtp ?? 0, caFile, 'transactional.mail.svc')).stdout);
  assert.ok(first, 'a certificate served');
  const issuedBefore =
    (await metric('mailfleet_operator_tls_certificates_issued_total', 'reason="Expiring"')) ?? 0;

  // The kubelet's part (startSync) projects the renewed Secret into the pod's volume.
  assert.ok(sync, 'the Secrets are synced into the relay');
  // Sessions all along: STARTTLS + AUTH on submission, each verifying the chain to the published CA.
  const failures: string[] = [];
  let sessions = 0;
  let stopSending = false;
  let renewedSerial: string | undefined;
  const sending = (async () => {
    while (!stopSending) {
      sessions += 1;
      // A recipient per session: example.net has no MX here, the first delivery bounces and the
      // relay suppresses that address, so a fixed recipient would be refused at RCPT from then on.
      const result = await sendMessage(
        relay?.ports.submission ?? 0,
        {
          from: 'app@example.com',
          to: [`someone${sessions}@example.net`],
          raw: rawMessage(`renewal-${sessions}`),
        },
        {
          ignoreTLS: false,
          requireTLS: true,
          tls: { ca, servername: 'transactional.mail.svc' },
          auth: { user: b64(creds.username), pass: b64(creds.password) },
        },
      );
      if (!result.ok) failures.push(result.response);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    renewedSerial = await eventually(
      'a renewed certificate served',
      async () => {
        const serial = servedSerial(
          (await sClient(relay?.ports.smtp ?? 0, caFile, 'transactional.mail.svc')).stdout,
        );
        return serial && serial !== first ? serial : undefined;
      },
      (VALIDITY_S + 30) * 1000,
    );
    const stored = await json(['-n', NS, 'get', 'secret/transactional-tls-generated']);
    assert.equal(
      new X509Certificate(Buffer.from(stored.data['tls.crt'], 'base64')).serialNumber,
      renewedSerial,
    );
    // A few more sessions on the new certificate.
    const after = sessions;
    await eventually('sessions after the renewal', async () => sessions >= after + 3);
  } finally {
    stopSending = true;
    await sending;
  }
  t.diagnostic(
    `${sessions} STARTTLS+AUTH sessions across the renewal, ${failures.length} failed; serial ${first} -> ${renewedSerial}`,
  );
  assert.deepEqual(failures, [], `${failures.length} of ${sessions} sessions failed`);
  assert.ok(sessions >= 5, `${sessions} sessions`);
  assert.equal(relay.proc.pid, pid, 'the same relay process');
  assert.equal(relay.proc.exitCode, null, 'still running');
  assert.equal(
    (await readyRelayPods(cp, NS, 'transactional')).map((p) => p.metadata.name).join(),
    uid,
    'the same pods',
  );
  assert.ok(
    relay.logs.some((l) => l.includes('"config reloaded"')),
    'the relay reloaded its files',
  );
  const issuedAfter = await metric('mailfleet_operator_tls_certificates_issued_total', 'reason="Expiring"');
  assert.ok((issuedAfter ?? 0) > issuedBefore, `renewals counted: ${issuedBefore} -> ${issuedAfter}`);
});

test('each issue is an Event: CertificateIssued, then CertificateRenewed', async () => {
  const events = await json([
    '-n',
    NS,
    'get',
    'events',
    '--field-selector',
    'involvedObject.name=transactional',
  ]);
  const reasons = new Set(events.items.map((e: { reason: string }) => e.reason));
  assert.ok(reasons.has('CertificateIssued') && reasons.has('CertificateRenewed'), [...reasons].join());
});

test('deleting the CA Secret rotates the CA: a new ca.crt is published and the served certificate chains to it', async () => {
  assert.ok(relay, 'the relay runs');
  const before = (await json(['-n', NS, 'get', 'configmap/transactional-ca'])).data['ca.crt'] as string;
  await k(['-n', NS, 'delete', 'secret', 'transactional-tls-ca']);
  const rotated = await eventually('a new ca.crt', async () => {
    const now = (await json(['-n', NS, 'get', 'configmap/transactional-ca'])).data['ca.crt'] as string;
    return now !== before ? now : undefined;
  });
  const newCA = path.join(work ?? '', 'ca-2.crt');
  await writeFile(newCA, rotated);
  // The kubelet's part (startSync) projects the new files into the pod's volume.
  await eventually('the relay serves a certificate of the new CA', async () => {
    const r = await sClient(relay?.ports.smtp ?? 0, newCA, 'transactional.mail.svc');
    return r.code === 0;
  });
  const old = await sClient(relay.ports.smtp ?? 0, caFile, 'transactional.mail.svc');
  assert.notEqual(old.code, 0, 'the old CA no longer verifies it');
});

test('a name added to spec.tls.dnsNames is in the next certificate the relay serves', async () => {
  assert.ok(relay, 'the relay runs');
  await k([
    '-n',
    NS,
    'patch',
    'rp/transactional',
    '--type=merge',
    '-p',
    '{"spec":{"tls":{"dnsNames":["smtp.example.com"]}}}',
  ]);
  const ca = path.join(work ?? '', 'ca-3.crt');
  // The kubelet's part (startSync) projects the new files into the pod's volume.
  await eventually('the relay serves a certificate for smtp.example.com', async () => {
    await writeFile(ca, (await json(['-n', NS, 'get', 'configmap/transactional-ca'])).data['ca.crt']);
    return (await sClient(relay?.ports.submission ?? 0, ca, 'smtp.example.com')).code === 0;
  });
  const pool = await json(['-n', NS, 'get', 'rp/transactional']);
  assert.ok(pool.status.tls.dnsNames.includes('smtp.example.com'), pool.status.tls.dnsNames.join());
  assert.ok(pool.status.tls.dnsNames.includes('transactional.mail.svc'), 'the Service names stay');
});

test('the expiry gauge is the notAfter the pool reports', async () => {
  await eventually('gauge and status agree', async () => {
    const pool = await json(['-n', NS, 'get', 'rp/transactional']);
    const gauge = await metric(
      'mailfleet_operator_tls_certificate_expiry_timestamp_seconds',
      'namespace="mail",pool="transactional"',
    );
    return gauge === Math.floor(Date.parse(pool.status.tls.notAfter) / 1000);
  });
});

test("a user's own Secret is used as is and never written", async () => {
  const ca = await issueCA({
    commonName: 'user CA',
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  const pair = await issueServing(
    {
      commonName: 'smtp.example.com',
      dnsNames: ['smtp.example.com'],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
    },
    ca,
  );
  await writeFile(path.join(work ?? '', 'own.crt'), pair.cert);
  await writeFile(path.join(work ?? '', 'own.key'), pair.key);
  const created = await k([
    '-n',
    NS,
    'create',
    'secret',
    'tls',
    'own-tls',
    `--cert=${path.join(work ?? '', 'own.crt')}`,
    `--key=${path.join(work ?? '', 'own.key')}`,
  ]);
  assert.equal(created.code, 0, created.stderr);
  const before = await json(['-n', NS, 'get', 'secret/own-tls', '--show-managed-fields']);
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'own', namespace: NS },
      spec: { replicas: 1, tls: { secretName: 'own-tls' }, allowedNetworks: ['127.0.0.0/8'] },
    }),
  });
  const waited = await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/own', '--timeout=120s']);
  assert.equal(waited.code, 0, waited.stderr);
  const pool = await json(['-n', NS, 'get', 'rp/own']);
  assert.equal(pool.status.tls.source, 'Secret');
  assert.deepEqual(pool.status.tls.dnsNames, ['smtp.example.com']);
  const deployment = await json(['-n', NS, 'get', 'deployment/own']);
  const sources = deployment.spec.template.spec.volumes[0].projected.sources as {
    secret?: { name: string };
  }[];
  assert.ok(sources.some((s) => s.secret?.name === 'own-tls'));
  const after = await json(['-n', NS, 'get', 'secret/own-tls', '--show-managed-fields']);
  assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'not written');
  assert.deepEqual(after.metadata.managedFields, before.metadata.managedFields);
  const ours = await json(['-n', NS, 'get', 'secrets,configmaps', '-l', 'mailfleet.dev/pool=own']);
  assert.deepEqual(
    ours.items
      .map((o: { metadata: { name: string } }) => o.metadata.name)
      .filter((n: string) => /tls|ca/.test(n)),
    [],
    'no certificate of its own made for this pool',
  );
});

test('cert-manager: a clear condition without its CRDs, then a Certificate for the pool names and its Secret mounted', async () => {
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'cm', namespace: NS },
      spec: {
        replicas: 1,
        allowedNetworks: ['127.0.0.0/8'],
        tls: { issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: ['smtp.example.com'] },
      },
    }),
  });
  const condition = async (type: string) =>
    (await json(['-n', NS, 'get', 'rp/cm'])).status?.conditions?.find(
      (c: { type: string }) => c.type === type,
    );
  const notInstalled = await eventually('TLSReady=False CertManagerNotInstalled', async () => {
    const c = await condition('TLSReady');
    return c?.reason === 'CertManagerNotInstalled' ? c : undefined;
  });
  assert.equal(notInstalled.status, 'False');
  assert.match(notInstalled.message, /cert-manager/);
  assert.equal((await condition('Ready'))?.reason, 'CertManagerNotInstalled');

  const installed = await k([
    'apply',
    '-f',
    path.join(REPO_ROOT, 'test/fixtures/cert-manager-certificate-crd.yaml'),
  ]);
  assert.equal(installed.code, 0, installed.stderr);
  await k(['wait', '--for=condition=Established', 'crd/certificates.cert-manager.io', '--timeout=60s']);
  const certificate = await eventually('the Certificate', async () => {
    const r = await k(['-n', NS, 'get', 'certificates.cert-manager.io/cm-tls', '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  });
  assert.equal(certificate.spec.secretName, 'cm-tls-cert-manager');
  assert.deepEqual(certificate.spec.issuerRef, {
    name: 'letsencrypt',
    kind: 'ClusterIssuer',
    group: 'cert-manager.io',
  });
  assert.deepEqual(certificate.spec.dnsNames, [
    'cm',
    'cm.mail',
    'cm.mail.svc',
    'cm.mail.svc.cluster.local',
    'smtp.example.com',
  ]);
  assert.equal(certificate.metadata.ownerReferences?.[0]?.name, 'cm');
  await eventually(
    'TLSReady=False CertificatePending',
    async () => (await condition('TLSReady'))?.reason === 'CertificatePending',
  );

  // cert-manager's part: fill the Secret the Certificate names (a kubernetes.io/tls Secret with ca.crt).
  const ca = await issueCA({
    commonName: 'issuer CA',
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  const pair = await issueServing(
    {
      commonName: 'cm.mail.svc',
      dnsNames: certificate.spec.dnsNames,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
    },
    ca,
  );
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: 'cm-tls-cert-manager',
        namespace: NS,
        annotations: { 'cert-manager.io/certificate-name': 'cm-tls' },
      },
      data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), 'ca.crt': b64(ca.cert) },
    }),
  });
  const waited = await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/cm', '--timeout=120s']);
  assert.equal(waited.code, 0, waited.stderr);
  const pool = await json(['-n', NS, 'get', 'rp/cm']);
  assert.equal(pool.status.tls.source, 'CertManager');
  assert.equal(pool.status.tls.secretName, 'cm-tls-cert-manager');
  assert.deepEqual(pool.status.tls.dnsNames, certificate.spec.dnsNames);
  assert.equal((await condition('TLSReady'))?.reason, 'CertManagerIssued');
  const deployment = await json(['-n', NS, 'get', 'deployment/cm']);
  const sources = deployment.spec.template.spec.volumes[0].projected.sources as {
    secret?: { name: string };
  }[];
  assert.ok(
    sources.some((s) => s.secret?.name === 'cm-tls-cert-manager'),
    JSON.stringify(sources),
  );
  const generated = await cp.kubectl(['-n', NS, 'get', 'secret/cm-tls-ca'], { allowFail: true });
  assert.notEqual(generated.code, 0, 'no CA generated for a cert-manager pool');
});
