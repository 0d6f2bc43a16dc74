import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { issueCA, issueServing } from '../kube/certificates.ts';
import {
  certificateNames,
  parseCertificate,
  renewalTime,
  resolveTls,
  servingDecision,
  tlsRequest,
  tlsSecretName,
  tlsSource,
  validityPeriod,
} from './tls.ts';
import type { PemPair } from './types.ts';
import { desiredState } from './state.ts';
import {
  NOW,
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
} from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPool } from '../api/types.ts';

/** resolveTls receives the pool as desiredState has it, schema defaults applied (issuerRef.group). */
const defaulted = (pool: RelayPool) => withDefaults(pool).resource;

const DAY = 86_400_000;
const at = (ms: number) => new Date(NOW.getTime() + ms);

test('certificate names: the Service as clients write it, relay names behind the headless Service, then spec.tls.dnsNames', () => {
  const cases = [
    {
      name: 'a Deployment pool: the Service names only',
      pool: relayPool({ tls: {} }),
      domain: 'cluster.local',
      want: [
        'transactional',
        'transactional.mail',
        'transactional.mail.svc',
        'transactional.mail.svc.cluster.local',
      ],
    },
    {
      name: 'a StatefulSet pool: each relay by its own name too',
      pool: relayPool({ tls: {}, queue: { persistence: { size: '1Gi' } } }),
      domain: 'cluster.local',
      want: [
        'transactional',
        'transactional.mail',
        'transactional.mail.svc',
        'transactional.mail.svc.cluster.local',
        '*.transactional-headless.mail.svc',
        '*.transactional-headless.mail.svc.cluster.local',
      ],
    },
    {
      name: 'extra names appended, duplicates dropped, another cluster domain',
      pool: relayPool({ tls: { dnsNames: ['smtp.example.com', 'transactional.mail.svc'] } }),
      domain: 'k8s.internal',
      want: [
        'transactional',
        'transactional.mail',
        'transactional.mail.svc',
        'transactional.mail.svc.k8s.internal',
        'smtp.example.com',
      ],
    },
  ];
  for (const c of cases) assert.deepEqual(certificateNames(c.pool, c.domain), c.want, c.name);
});

test('the certificate source: secretName, then issuerRef, then generated; none without spec.tls', () => {
  const cases = [
    { spec: {}, source: undefined, secret: undefined },
    { spec: { tls: {} }, source: 'Generated', secret: 'transactional-tls-generated' },
    {
      spec: { tls: { issuerRef: { name: 'le' } } },
      source: 'CertManager',
      secret: 'transactional-tls-cert-manager',
    },
    { spec: { tls: { secretName: 'mine' } }, source: 'Secret', secret: 'mine' },
    { spec: { tls: { secretName: 'mine', issuerRef: { name: 'le' } } }, source: 'Secret', secret: 'mine' },
  ] as const;
  for (const c of cases) {
    const pool = relayPool(c.spec as never);
    assert.equal(tlsSource(pool), c.source, JSON.stringify(c.spec));
    assert.equal(tlsSecretName(pool), c.secret, JSON.stringify(c.spec));
  }
});

test('renewal time: two thirds into the life of the certificate (a third remains)', () => {
  const cases = [
    { notBefore: 0, notAfter: 90 * DAY, renewAt: 60 * DAY },
    { notBefore: 0, notAfter: 60_000, renewAt: 40_000 },
    {
      notBefore: -300_000,
      notAfter: 365 * DAY,
      renewAt: Math.floor(-300_000 + ((365 * DAY + 300_000) * 2) / 3),
    },
  ];
  for (const c of cases)
    assert.equal(
      renewalTime({ notBefore: at(c.notBefore), notAfter: at(c.notAfter) }).getTime(),
      at(c.renewAt).getTime(),
    );
});

test('validity period: backdated five minutes at most (a tenth of a short validity), never past the CA', () => {
  const cases = [
    { name: 'a year', validity: 365 * DAY, cap: undefined, notBefore: -300_000, notAfter: 365 * DAY },
    { name: 'one minute (tests)', validity: 60_000, cap: undefined, notBefore: -6_000, notAfter: 60_000 },
    { name: 'capped by the CA', validity: 365 * DAY, cap: 10 * DAY, notBefore: -300_000, notAfter: 10 * DAY },
  ];
  for (const c of cases) {
    const p = validityPeriod(NOW, c.validity, c.cap === undefined ? undefined : at(c.cap));
    assert.equal(p.notBefore.getTime(), at(c.notBefore).getTime(), c.name);
    assert.equal(p.notAfter.getTime(), at(c.notAfter).getTime(), c.name);
  }
});

const NAMES = certificateNames(relayPool({ tls: {} }));
let fixturesMade: Promise<{ ca: PemPair; otherCA: PemPair; serving: PemPair }> | undefined;
/** Real certificates, issued once: a CA, another CA, a serving pair for NAMES valid 90 days from NOW. */
function material() {
  fixturesMade ??= (async () => {
    const caRequest = { commonName: 'test CA', dnsNames: [], notBefore: at(-DAY), notAfter: at(3650 * DAY) };
    const ca = await issueCA(caRequest);
    const otherCA = await issueCA(caRequest);
    const serving = await issueServing(
      { commonName: 'transactional.mail.svc', dnsNames: NAMES, notBefore: NOW, notAfter: at(90 * DAY) },
      ca,
    );
    return { ca, otherCA, serving };
  })();
  return fixturesMade;
}

test('issued certificates: a CA that signed a server certificate for exactly the names asked', async () => {
  const { ca, serving } = await material();
  const caCert = new X509Certificate(ca.cert);
  const cert = new X509Certificate(serving.cert);
  assert.equal(caCert.ca, true);
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey));
  assert.deepEqual(parseCertificate(serving.cert)?.dnsNames, NAMES);
  assert.equal(parseCertificate(serving.cert)?.notAfter.getTime(), at(90 * DAY).getTime());
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('serving decision: keep a valid certificate until a third of its life remains', async () => {
  const { ca, otherCA, serving } = await material();
  const caCert = parseCertificate(ca.cert)!;
  const otherCert = parseCertificate(otherCA.cert)!;
  const cases = [
    { name: 'nothing stored', serving: undefined, ca: caCert, names: NAMES, now: NOW, want: 'Missing' },
    { name: 'fresh', serving, ca: caCert, names: NAMES, now: NOW, want: 'keep' },
    {
      name: 'one day before the renewal time',
      serving,
      ca: caCert,
      names: NAMES,
      now: at(59 * DAY),
      want: 'keep',
    },
    { name: 'at the renewal time', serving, ca: caCert, names: NAMES, now: at(60 * DAY), want: 'Expiring' },
    { name: 'expired', serving, ca: caCert, names: NAMES, now: at(91 * DAY), want: 'Expiring' },
    {
      name: 'a name was added',
      serving,
      ca: caCert,
      names: [...NAMES, 'smtp.example.com'],
      now: NOW,
      want: 'NamesChanged',
    },
    { name: 'signed by another CA', serving, ca: otherCert, names: NAMES, now: NOW, want: 'IssuerChanged' },
    {
      name: 'the key of another certificate',
      serving: { ...serving, key: ca.key },
      ca: caCert,
      names: NAMES,
      now: NOW,
      want: 'Invalid',
    },
    {
      name: 'not a certificate',
      serving: { cert: 'CERT', key: 'KEY' },
      ca: caCert,
      names: NAMES,
      now: NOW,
      want: 'Invalid',
    },
  ];
  for (const c of cases) {
    const d = servingDecision(c);
    assert.equal('keep' in d ? 'keep' : d.renew, c.want, c.name);
  }
});

const tlsSecretOf = (name: string, pair: PemPair): V1Secret =>
  secret(name, { 'tls.crt': pair.cert, 'tls.key': pair.key });

test('generated: the first pass asks for a CA and a certificate, creates the CA Secret and applies the rest', async () => {
  const { ca, serving } = await material();
  const pool = relayPool({ tls: {} });
  const first = observed({ pool });
  const request = tlsRequest(pool, first);
  assert.ok(request?.ca, 'a CA is requested');
  assert.deepEqual(request?.serving?.request.dnsNames, NAMES);
  assert.equal(request?.serving?.ca, undefined, 'signed by the CA issued in the same pass');

  assert.equal(
    resolveTls(defaulted(pool), first).problem?.reason,
    'CertificatePending',
    'nothing issued: pending',
  );
  const r = resolveTls(defaulted(pool), observed({ pool, issued: { ca, serving } }));
  assert.equal(r.problem, undefined);
  assert.deepEqual(
    r.create.map((o) => `${o.kind}/${o.metadata?.name}`),
    ['Secret/transactional-tls-ca'],
  );
  assert.deepEqual(
    r.apply.map((o) => `${o.kind}/${o.metadata?.name}`),
    ['Secret/transactional-tls-generated', 'ConfigMap/transactional-ca'],
  );
  const servingSecret = r.apply[0] as V1Secret;
  assert.equal(servingSecret.type, 'kubernetes.io/tls');
  assert.equal(Buffer.from(servingSecret.data?.['tls.crt'] ?? '', 'base64').toString(), serving.cert);
  assert.equal((r.apply[1] as { data: Record<string, string> }).data['ca.crt'], ca.cert);
  assert.deepEqual(r.status?.dnsNames, NAMES);
  assert.equal(r.status?.notAfter, at(90 * DAY).toISOString());
  assert.equal(r.status?.renewalTime, at(60 * DAY).toISOString());
  assert.equal(r.status?.caConfigMap, 'transactional-ca');
  assert.equal(r.requeueAfterMs, 24 * 3_600_000, 'a renewal 60 days away: requeued daily');
  assert.equal(r.certificate?.issued, 'Missing');
  assert.equal(r.condition?.status, 'True');
});

test('generated: a stored, valid pair is kept as is (nothing requested, nothing issued) until its renewal time', async () => {
  const { ca, serving } = await material();
  const pool = relayPool({ tls: {} });
  const stored = secrets(
    tlsSecretOf('transactional-tls-ca', ca),
    tlsSecretOf('transactional-tls-generated', serving),
  );
  const cases = [
    { name: 'fresh', now: NOW, request: false, requeue: 24 * 3_600_000 },
    { name: 'an hour before renewal', now: at(60 * DAY - 3_600_000), request: false, requeue: 3_600_000 },
    { name: 'at renewal', now: at(60 * DAY), request: true, requeue: undefined },
  ];
  for (const c of cases) {
    const o = observed({ pool, secrets: stored, now: c.now });
    const request = tlsRequest(pool, o);
    assert.equal(request !== undefined, c.request, c.name);
    if (request) {
      assert.equal(request.ca, undefined, `${c.name}: the stored CA signs`);
      assert.equal(request.serving?.ca?.cert, ca.cert, c.name);
      continue;
    }
    const r = resolveTls(defaulted(pool), o);
    assert.deepEqual(r.create, [], c.name);
    assert.deepEqual(r.keep, ['Secret/transactional-tls-ca'], c.name);
    assert.equal(r.certificate?.issued, undefined, c.name);
    assert.equal(r.requeueAfterMs, c.requeue, c.name);
  }
});

test('generated: an expired or broken CA blocks with a way out, and is never replaced behind clients', async () => {
  const { ca, serving } = await material();
  const pool = relayPool({ tls: {} });
  const o = observed({
    pool,
    secrets: secrets(
      tlsSecretOf('transactional-tls-ca', ca),
      tlsSecretOf('transactional-tls-generated', serving),
    ),
    now: at(3651 * DAY),
  });
  assert.equal(tlsRequest(pool, o), undefined);
  const r = resolveTls(defaulted(pool), o);
  assert.equal(r.problem?.reason, 'CAInvalid');
  assert.match(r.problem?.message ?? '', /delete it/);
  assert.deepEqual(r.create, []);
});

test('cert-manager: a clear condition without its CRDs; with them, a Certificate for the pool names, then its Secret', async () => {
  const { serving } = await material();
  const pool = relayPool({
    tls: { issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: ['smtp.example.com'] },
  });
  const missing = resolveTls(defaulted(pool), observed({ pool }));
  assert.equal(missing.problem?.reason, 'CertManagerNotInstalled');
  assert.equal(missing.condition?.type, 'TLSReady');
  assert.deepEqual(missing.apply, []);

  const pending = resolveTls(defaulted(pool), observed({ pool, certManagerCRD: true }));
  assert.equal(pending.problem?.reason, 'CertificatePending');
  const certificate = pending.apply[0] as {
    kind: string;
    metadata: { name: string };
    spec: Record<string, unknown>;
  };
  assert.equal(certificate.kind, 'Certificate');
  assert.equal(certificate.metadata.name, 'transactional-tls');
  assert.equal(certificate.spec.secretName, 'transactional-tls-cert-manager');
  assert.deepEqual(certificate.spec.dnsNames, [...NAMES, 'smtp.example.com']);
  assert.deepEqual(certificate.spec.privateKey, { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' });
  assert.deepEqual(certificate.spec.issuerRef, {
    name: 'letsencrypt',
    kind: 'ClusterIssuer',
    group: 'cert-manager.io',
  });

  const issued = resolveTls(
    defaulted(pool),
    observed({
      pool,
      certManagerCRD: true,
      secrets: secrets(tlsSecretOf('transactional-tls-cert-manager', serving)),
    }),
  );
  assert.equal(issued.problem, undefined);
  assert.equal(issued.status?.source, 'CertManager');
  assert.equal(issued.status?.secretName, 'transactional-tls-cert-manager');
  assert.equal(issued.status?.notAfter, at(90 * DAY).toISOString());
  assert.equal(tlsRequest(pool, observed({ pool, certManagerCRD: true })), undefined, 'nothing generated');
});

test("the user's Secret: read, never written; its names and expiry shown when it holds a certificate", async () => {
  const { serving } = await material();
  const pool = relayPool({ tls: { secretName: 'mine' } });
  const cases = [
    { name: 'missing', stored: [], reason: 'SecretNotFound' },
    {
      name: 'without tls.key',
      stored: [secret('mine', { 'tls.crt': serving.cert })],
      reason: 'SecretMalformed',
    },
    { name: 'a certificate', stored: [tlsSecretOf('mine', serving)], reason: undefined },
  ];
  for (const c of cases) {
    const r = resolveTls(defaulted(pool), observed({ pool, secrets: secrets(...c.stored) }));
    assert.equal(r.problem?.reason, c.reason, c.name);
    assert.deepEqual([...r.apply, ...r.create], [], `${c.name}: nothing written`);
    if (!c.reason) {
      assert.equal(r.status?.source, 'Secret');
      assert.deepEqual(r.status?.dnsNames, NAMES);
      assert.equal(r.certificate?.notAfter.getTime(), at(90 * DAY).getTime());
    }
  }
});

test('the pool CA is kept (not pruned) when the pool switches to another source or turns TLS off', async () => {
  const { ca } = await material();
  const stored = secrets(tlsSecretOf('transactional-tls-ca', ca), tlsSecretOf('mine', ca));
  for (const spec of [{ tls: { secretName: 'mine' } }, { tls: { issuerRef: { name: 'le' } } }, {}]) {
    const pool = relayPool(spec);
    const r = resolveTls(defaulted(pool), observed({ pool, secrets: stored, certManagerCRD: true }));
    assert.ok(r.keep.includes('Secret/transactional-tls-ca'), JSON.stringify(spec));
  }
});

test('the pool reports its certificate: status.tls, TLSReady, an Event per issue, a requeue at the renewal time', async () => {
  const { ca, serving } = await material();
  const pool = relayPool({ tls: {} });
  const renewed = await issueServing(
    {
      commonName: 'transactional.mail.svc',
      dnsNames: NAMES,
      notBefore: at(60 * DAY),
      notAfter: at(150 * DAY),
    },
    ca,
  );
  const cases = [
    { name: 'first issue', o: observed({ pool, issued: { ca, serving } }), event: 'CertificateIssued' },
    {
      name: 'renewal',
      o: observed({
        pool,
        secrets: secrets(
          tlsSecretOf('transactional-tls-ca', ca),
          tlsSecretOf('transactional-tls-generated', serving),
        ),
        issued: { serving: renewed },
        now: at(60 * DAY),
      }),
      event: 'CertificateRenewed',
    },
    {
      name: 'kept',
      o: observed({
        pool,
        secrets: secrets(
          tlsSecretOf('transactional-tls-ca', ca),
          tlsSecretOf('transactional-tls-generated', serving),
        ),
      }),
      event: undefined,
    },
  ];
  for (const c of cases) {
    const d = desiredState(c.o, fakeGenerators());
    const status = d.statuses.find((s) => s.kind === 'RelayPool')?.status as {
      tls?: { dnsNames?: string[] };
      conditions: { type: string; status: string }[];
    };
    assert.deepEqual(status.tls?.dnsNames, NAMES, c.name);
    assert.equal(status.conditions.find((x) => x.type === 'TLSReady')?.status, 'True', c.name);
    const reasons = d.events.map((e) => e.reason).filter((r) => r.startsWith('Certificate'));
    assert.deepEqual(reasons, c.event ? [c.event] : [], c.name);
    assert.ok((d.requeueAfterMs ?? 0) > 0, c.name);
  }
});

test('TLSReady goes when spec.tls goes', () => {
  const pool = relayPool({});
  pool.status = {
    conditions: [
      {
        type: 'TLSReady',
        status: 'True',
        reason: 'Generated',
        message: 'certificate in Secret transactional-tls-generated',
        lastTransitionTime: NOW.toISOString(),
      },
    ],
  };
  const d = desiredState(observed({ pool }), fakeGenerators());
  const status = d.statuses.find((s) => s.kind === 'RelayPool')?.status as { conditions: { type: string }[] };
  assert.deepEqual(
    status.conditions.filter((c) => c.type === 'TLSReady'),
    [],
  );
  assert.ok(status.conditions.some((c) => c.type === 'Ready'));
});
