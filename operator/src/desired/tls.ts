// A pool's TLS: which of the three certificate sources applies (the user's Secret, a cert-manager
// Certificate, or one the operator generates), the names a certificate must carry, when a generated
// one is renewed, and the objects each source needs. Pure: reading certificates is parsing, and
// issuing them happens before desiredState, on what tlsRequest() asks for.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { DefaultedRelayPool, RelayPool, TLSStatus } from '../api/types.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { childMeta, names } from './meta.ts';
import { secretText } from './secret.ts';
import type { CertificateRequest, KubeObject, Observed, PemPair, RenewReason, TlsSettings } from './types.ts';

export type TlsSource = 'Secret' | 'CertManager' | 'Generated';

const HOUR = 3_600_000;
/** Generated serving certificates: one year (the CA/Browser Forum's public maximum is 398 days). */
const DEFAULT_VALIDITY_MS = 365 * 24 * HOUR;
/** The pool's CA: five years; it is replaced only when its Secret is deleted (docs/operator.md). */
const DEFAULT_CA_VALIDITY_MS = 5 * 365 * 24 * HOUR;
const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** Clocks of clients may lag: certificates start a little in the past (at most a tenth of their life). */
const BACKDATE_MS = 5 * 60_000;
/** Requeue delays are capped so a timer never overflows (setTimeout holds 2^31-1 ms); resync covers longer. */
const MAX_REQUEUE_MS = 24 * HOUR;

export function tlsSource(pool: RelayPool): TlsSource | undefined {
  const tls = pool.spec.tls;
  if (!tls) return undefined;
  if (tls.secretName) return 'Secret';
  if (tls.issuerRef) return 'CertManager';
  return 'Generated';
}

/** The Secret the relays mount for their certificate (none without spec.tls). */
export function tlsSecretName(pool: RelayPool): string | undefined {
  const poolName = pool.metadata.name ?? '';
  switch (tlsSource(pool)) {
    case 'Secret':
      return pool.spec.tls?.secretName;
    case 'CertManager':
      return names.certManagerSecret(poolName);
    case 'Generated':
      return names.tlsServing(poolName);
    default:
      return undefined;
  }
}

/** The Secret a pool names that the operator does not own (so reconciles GET it and watches requeue). */
export function referencedTlsSecret(pool: RelayPool | undefined): string | undefined {
  if (!pool?.spec) return undefined;
  const source = tlsSource(pool);
  return source === 'Secret' || source === 'CertManager' ? tlsSecretName(pool) : undefined;
}

/**
 * The names a generated or cert-manager certificate is issued for: the pool's Service as clients in
 * the cluster may write it, each relay's own name behind the headless Service (StatefulSet pools),
 * then spec.tls.dnsNames. Duplicates are dropped, order kept.
 */
export function certificateNames(pool: RelayPool, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string[] {
  const poolName = pool.metadata.name ?? '';
  const ns = pool.metadata.namespace ?? '';
  const service = names.service(poolName);
  const list = [service, `${service}.${ns}`, `${service}.${ns}.svc`, `${service}.${ns}.svc.${clusterDomain}`];
  if (pool.spec.queue?.persistence) {
    const headless = names.headless(poolName);
    list.push(`*.${headless}.${ns}.svc`, `*.${headless}.${ns}.svc.${clusterDomain}`);
  }
  list.push(...(pool.spec.tls?.dnsNames ?? []));
  return [...new Set(list)];
}

export type ParsedCertificate = {
  x509: X509Certificate;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  serialNumber: string;
};

export function parseCertificate(pem: string | undefined): ParsedCertificate | undefined {
  if (!pem) return undefined;
  try {
    const x509 = new X509Certificate(pem);
    const dnsNames = (x509.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4));
    return {
      x509,
      notBefore: new Date(x509.validFrom),
      notAfter: new Date(x509.validTo),
      dnsNames,
      serialNumber: x509.serialNumber,
    };
  } catch {
    return undefined;
  }
}

/** When a certificate is replaced: once two thirds of its life have passed (a third remains). */
export function renewalTime(cert: { notBefore: Date; notAfter: Date }): Date {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(cert.notBefore.getTime() + Math.floor((life * 2) / 3));
}

/** Validity of a certificate issued now: backdated a little, never beyond its CA. */
export function validityPeriod(
  now: Date,
  validityMs: number,
  notAfterCap?: Date,
): { notBefore: Date; notAfter: Date } {
  const backdate = Math.min(BACKDATE_MS, Math.floor(validityMs / 10));
  const notAfter = new Date(now.getTime() + validityMs);
  return {
    notBefore: new Date(now.getTime() - backdate),
    notAfter: notAfterCap && notAfterCap < notAfter ? notAfterCap : notAfter,
  };
}

type KeyPairCheck = { ok: true; cert: ParsedCertificate } | { ok: false; why: string };

/** A certificate and key that belong together and can be used at `now`. */
function checkPair(pair: Partial<PemPair>, now: Date): KeyPairCheck {
  const cert = parseCertificate(pair.cert);
  if (!cert) return { ok: false, why: 'tls.crt is not a PEM certificate' };
  try {
    if (!pair.key || !cert.x509.checkPrivateKey(createPrivateKey(pair.key)))
      return { ok: false, why: 'tls.key does not belong to tls.crt' };
  } catch {
    return { ok: false, why: 'tls.key is not a PEM private key' };
  }
  if (now >= cert.notAfter) return { ok: false, why: `expired at ${cert.notAfter.toISOString()}` };
  return { ok: true, cert };
}

const sameNames = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/** Whether the serving pair can stay, or why a new one is needed. */
export function servingDecision(o: {
  serving: Partial<PemPair> | undefined;
  ca: ParsedCertificate;
  names: string[];
  now: Date;
}): { keep: ParsedCertificate } | { renew: RenewReason } {
  if (!o.serving?.cert && !o.serving?.key) return { renew: 'Missing' };
  const pair = checkPair(o.serving, o.now);
  if (!pair.ok) return { renew: pair.why.startsWith('expired') ? 'Expiring' : 'Invalid' };
  const { cert } = pair;
  if (!cert.x509.checkIssued(o.ca.x509) || !cert.x509.verify(o.ca.x509.publicKey))
    return { renew: 'IssuerChanged' };
  if (!sameNames(cert.dnsNames, o.names)) return { renew: 'NamesChanged' };
  if (o.now >= renewalTime(cert)) return { renew: 'Expiring' };
  return { keep: cert };
}

const pairOf = (secret: V1Secret | undefined): Partial<PemPair> | undefined => {
  if (!secret) return undefined;
  const pair: Partial<PemPair> = {};
  const cert = secretText(secret, 'tls.crt');
  const key = secretText(secret, 'tls.key');
  if (cert) pair.cert = cert;
  if (key) pair.key = key;
  return pair;
};

function settingsOf(observed: Observed): Required<TlsSettings> {
  const s = observed.settings.tls ?? {};
  return {
    validityMs: s.validityMs ?? DEFAULT_VALIDITY_MS,
    caValidityMs: s.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
    clusterDomain: s.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
  };
}

/** The generated source's state: its CA (stored, or to be issued) and what the serving pair needs. */
type GeneratedPlan =
  | { caProblem: string }
  | {
      /** The stored CA, or undefined when a new one is to be issued. */
      ca: { pair: PemPair; cert: ParsedCertificate } | undefined;
      serving: { keep: ParsedCertificate } | { renew: RenewReason };
      names: string[];
    };

function generatedPlan(pool: RelayPool, observed: Observed): GeneratedPlan {
  const poolName = pool.metadata.name ?? '';
  const certNames = certificateNames(pool, settingsOf(observed).clusterDomain);
  const stored = pairOf(observed.secrets.get(names.tlsCA(poolName)));
  if (!stored) return { ca: undefined, serving: { renew: 'Missing' }, names: certNames };
  const ca = checkPair(stored, observed.now);
  if (!ca.ok)
    return {
      caProblem: `CA Secret ${names.tlsCA(poolName)}: ${ca.why}; delete it and the operator makes a new CA and certificate`,
    };
  const serving = servingDecision({
    serving: pairOf(observed.secrets.get(names.tlsServing(poolName))),
    ca: ca.cert,
    names: certNames,
    now: observed.now,
  });
  return { ca: { pair: stored as PemPair, cert: ca.cert }, serving, names: certNames };
}

const commonName = (text: string) => text.slice(0, 64);

/** What has to be issued before desiredState can run (undefined: nothing). */
export function tlsRequest(
  pool: RelayPool | undefined,
  observed: Observed,
): { ca?: CertificateRequest; serving?: { request: CertificateRequest; ca?: PemPair } } | undefined {
  if (!pool?.spec || tlsSource(pool) !== 'Generated') return undefined;
  const plan = generatedPlan(pool, observed);
  if ('caProblem' in plan || 'keep' in plan.serving) return undefined;
  const s = settingsOf(observed);
  const poolName = pool.metadata.name ?? '';
  const ns = pool.metadata.namespace ?? '';
  const caPeriod = validityPeriod(observed.now, s.caValidityMs);
  const out: ReturnType<typeof tlsRequest> = {};
  if (!plan.ca)
    out.ca = { commonName: commonName(`mailfleet CA ${ns}/${poolName}`), dnsNames: [], ...caPeriod };
  out.serving = {
    request: {
      commonName: commonName(`${names.service(poolName)}.${ns}.svc`),
      dnsNames: plan.names,
      ...validityPeriod(observed.now, s.validityMs, plan.ca?.cert.notAfter ?? caPeriod.notAfter),
    },
  };
  if (plan.ca) out.serving.ca = plan.ca.pair;
  return out;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

function tlsSecret(pool: RelayPool, name: string, component: string, pair: PemPair, ca: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(pool, name, component),
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), 'ca.crt': b64(ca) },
  };
}

function caConfigMap(pool: RelayPool, caCert: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMeta(pool, names.caBundle(pool.metadata.name ?? ''), 'tls-ca'),
    data: { 'ca.crt': caCert },
  };
}

function certManagerCertificate(pool: DefaultedRelayPool, clusterDomain: string): KubeObject {
  const poolName = pool.metadata.name ?? '';
  const issuer = pool.spec.tls?.issuerRef;
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: childMeta(pool, names.certificate(poolName), 'tls'),
    spec: {
      secretName: names.certManagerSecret(poolName),
      dnsNames: certificateNames(pool, clusterDomain),
      issuerRef: {
        name: issuer?.name ?? '',
        kind: issuer?.kind,
        group: issuer?.group,
      },
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      usages: ['server auth', 'digital signature'],
    },
  };
}

export type TlsResolution = {
  /** Objects the source needs, written even while another problem blocks the pool. */
  apply: KubeObject[];
  create: KubeObject[];
  keep: string[];
  /** Blocks the pool (Ready=False) while it lasts. */
  problem?: ConditionInput;
  /** TLSReady, for pools with spec.tls. */
  condition?: ConditionInput;
  status?: TLSStatus;
  requeueAfterMs?: number;
  /** The certificate served (or about to be), for the expiry metric; issued: why one was issued now. */
  certificate?: { notAfter: Date; issued?: RenewReason };
};

const tlsCondition = (status: 'True' | 'False', reason: string, message: string): ConditionInput => ({
  type: 'TLSReady',
  status,
  reason,
  message,
});

function blockedBy(reason: string, message: string, rest: Partial<TlsResolution> = {}): TlsResolution {
  return {
    apply: [],
    create: [],
    keep: [],
    ...rest,
    problem: { type: 'Ready', status: 'False', reason, message },
    condition: tlsCondition('False', reason, message),
  };
}

function served(
  source: TlsSource,
  secretName: string,
  cert: ParsedCertificate | undefined,
  extra: Partial<TLSStatus> = {},
): { status: TLSStatus; condition: ConditionInput } {
  const status: TLSStatus = { source, secretName, ...extra };
  if (cert) {
    status.dnsNames = cert.dnsNames;
    status.notAfter = cert.notAfter.toISOString();
  }
  const names = cert?.dnsNames.length ? ` for ${cert.dnsNames.join(', ')}` : '';
  const until = cert ? `, valid until ${cert.notAfter.toISOString()}` : '';
  const reason = { Secret: 'UserSecret', CertManager: 'CertManagerIssued', Generated: 'Generated' }[source];
  return {
    status,
    condition: tlsCondition('True', reason, `certificate in Secret ${secretName}${names}${until}`),
  };
}

export function resolveTls(pool: DefaultedRelayPool, observed: Observed): TlsResolution {
  const resolution = resolveSource(pool, observed);
  // The pool's CA outlives a switch to another source (or to no TLS): the ca.crt clients were
  // given stays valid if the pool comes back to generated certificates.
  const ca = `Secret/${names.tlsCA(pool.metadata.name ?? '')}`;
  if (observed.secrets.has(names.tlsCA(pool.metadata.name ?? '')) && !resolution.keep.includes(ca))
    resolution.keep.push(ca);
  return resolution;
}

function resolveSource(pool: DefaultedRelayPool, observed: Observed): TlsResolution {
  const source = tlsSource(pool);
  const poolName = pool.metadata.name ?? '';
  if (!source) return { apply: [], create: [], keep: [] };
  if (source === 'Secret') {
    const secretName = pool.spec.tls?.secretName ?? '';
    const secret = observed.secrets.get(secretName);
    if (!secret) return blockedBy('SecretNotFound', `TLS Secret ${secretName} not found`);
    if (!secret.data?.['tls.crt'] || !secret.data['tls.key'])
      return blockedBy('SecretMalformed', `TLS Secret ${secretName} needs the keys tls.crt and tls.key`);
    const cert = parseCertificate(secretText(secret, 'tls.crt'));
    return {
      apply: [],
      create: [],
      keep: [],
      ...served('Secret', secretName, cert),
      ...(cert ? { certificate: { notAfter: cert.notAfter } } : {}),
    };
  }
  const settings = settingsOf(observed);
  if (source === 'CertManager') {
    if (!observed.certManagerCRD)
      return blockedBy(
        'CertManagerNotInstalled',
        'tls.issuerRef needs cert-manager: the Certificate CRD (certificates.cert-manager.io/v1) is not installed',
      );
    const certificate = certManagerCertificate(pool, settings.clusterDomain);
    const secretName = names.certManagerSecret(poolName);
    const secret = observed.secrets.get(secretName);
    if (!secret?.data?.['tls.crt'] || !secret.data['tls.key'])
      return blockedBy(
        'CertificatePending',
        `waiting for cert-manager to issue Certificate ${names.certificate(poolName)} into Secret ${secretName}`,
        { apply: [certificate] },
      );
    const cert = parseCertificate(secretText(secret, 'tls.crt'));
    return {
      apply: [certificate],
      create: [],
      keep: [],
      ...served('CertManager', secretName, cert),
      ...(cert ? { certificate: { notAfter: cert.notAfter } } : {}),
    };
  }

  const plan = generatedPlan(pool, observed);
  if ('caProblem' in plan)
    return blockedBy('CAInvalid', plan.caProblem, { keep: [`Secret/${names.tlsCA(poolName)}`] });
  const out: TlsResolution = { apply: [], create: [], keep: [] };
  let ca = plan.ca?.pair;
  if (ca) out.keep.push(`Secret/${names.tlsCA(poolName)}`);
  else {
    ca = observed.issued?.ca;
    if (!ca) return blockedBy('CertificatePending', 'the pool CA has not been generated yet');
    out.create.push(tlsSecret(pool, names.tlsCA(poolName), 'tls-ca', ca, ca.cert) as KubeObject);
  }
  let serving: PemPair | undefined;
  let cert: ParsedCertificate;
  if ('keep' in plan.serving) {
    serving = pairOf(observed.secrets.get(names.tlsServing(poolName))) as PemPair;
    cert = plan.serving.keep;
  } else {
    serving = observed.issued?.serving;
    const caCert = parseCertificate(ca.cert);
    const check = caCert && servingDecision({ serving, ca: caCert, names: plan.names, now: observed.now });
    if (!serving || !check || !('keep' in check))
      return blockedBy('CertificatePending', 'the serving certificate has not been generated yet', out);
    cert = check.keep;
    out.certificate = { notAfter: cert.notAfter, issued: plan.serving.renew };
  }
  out.certificate ??= { notAfter: cert.notAfter };
  out.apply.push(
    tlsSecret(pool, names.tlsServing(poolName), 'tls', serving, ca.cert) as KubeObject,
    caConfigMap(pool, ca.cert) as KubeObject,
  );
  const renewal = renewalTime(cert);
  Object.assign(
    out,
    served('Generated', names.tlsServing(poolName), cert, {
      renewalTime: renewal.toISOString(),
      caConfigMap: names.caBundle(poolName),
    }),
  );
  out.requeueAfterMs = Math.min(MAX_REQUEUE_MS, Math.max(1000, renewal.getTime() - observed.now.getTime()));
  return out;
}
