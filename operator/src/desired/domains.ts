// Which SendingDomains a pool sends for, with their DKIM keys, and each domain's status. Pure.
import type { V1Secret } from '@kubernetes/client-node';
import type { Condition, DefaultedSendingDomain, DNSRecord, SendingDomain } from '../api/types.ts';
import { cond, mergeConditions } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { domainRates } from './rates.ts';
import { withDefaults } from '../api/defaults.ts';
import { decideSuspension } from './bounce.ts';
import { dkimPublicKey, dkimRecord, dmarcRecord, dnsMismatches, isPrivateKeyPem, spfRecord } from './dns.ts';
import { DKIM_KEY, dkimKeySecret, secretText } from './secret.ts';
import { names } from './meta.ts';
import { returnPathStatus } from './return-path.ts';
import type { BoundDomain } from './relay-config.ts';
import type { Generators, KubeObject, Observed } from './types.ts';
import type { TxtAnswers } from './dns.ts';

export type ResolvedDomain = {
  object: SendingDomain;
  bound?: BoundDomain;
  /** PEM of the key in use, when bound. */
  pem?: string;
  status: Record<string, unknown>;
  conditions: Condition[];
  /** The autopilot suspends now, for this reason. */
  suspendNow?: string;
  /** The user resumed an automatic suspension: the operator drops its annotation. */
  resumed: boolean;
  /** Events about this domain's keys (a key generated for a new selector, or again). */
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
};

/** The algorithm a PEM key signs with. */
const algorithmOf = (pem: string) =>
  dkimPublicKey(pem).k === 'ed25519' ? ('ed25519-sha256' as const) : ('rsa-sha256' as const);

type KeyLookup = { pem?: string; secretName: string; create?: KubeObject; problem?: ConditionInput };

function readKey(secret: V1Secret | undefined, secretName: string, key: string): KeyLookup {
  const pem = secretText(secret, key);
  if (!secret) {
    return {
      secretName,
      problem: cond('DKIMKeyReady', 'False', 'SecretNotFound', `Secret ${secretName} not found`),
    };
  }
  if (!pem) {
    return {
      secretName,
      problem: cond('DKIMKeyReady', 'False', 'SecretMalformed', `Secret ${secretName} has no key ${key}`),
    };
  }
  if (!isPrivateKeyPem(pem)) {
    return {
      secretName,
      problem: cond(
        'DKIMKeyReady',
        'False',
        'SecretMalformed',
        `Secret ${secretName} key ${key} is not an RSA or Ed25519 PEM private key`,
      ),
    };
  }
  return { secretName, pem };
}

function dkimKey(domain: DefaultedSendingDomain, observed: Observed, gen: Generators): KeyLookup {
  const { dkim } = domain.spec;
  const selector = dkim.selector;
  if (dkim.keySecretRef) {
    const name = dkim.keySecretRef.name;
    return readKey(observed.secrets.get(name), name, dkim.keySecretRef.key ?? DKIM_KEY);
  }
  const name = names.dkimKey(domain.metadata.name ?? '', selector);
  const existing = observed.secrets.get(name);
  // A generated key is never replaced: if its Secret exists, whatever it holds is reported, not overwritten.
  if (existing) return readKey(existing, name, DKIM_KEY);
  const pem = gen.dkimKey(dkim.algorithm);
  // Not generated in this pass (a pass makes a bounded number of keys): the next pass does.
  if (pem === undefined)
    return {
      secretName: name,
      problem: cond('DKIMKeyReady', 'False', 'KeyPending', `a key is being generated for Secret ${name}`),
    };
  return { secretName: name, pem, create: dkimKeySecret(domain, selector, pem) as KubeObject };
}

const age = (d: SendingDomain) => `${d.metadata.creationTimestamp ?? ''}/${d.metadata.name ?? ''}`;

/**
 * A domain is Ready when its pool's relay config carries it (key in place, no conflict): whether the
 * pool's relays are up is the pool's own Ready. `poolProblem` is what blocks the pool's config, if
 * anything. Tying each domain to its pool's pod readiness would write every domain's status twice
 * as a pool starts, and again on every relay restart (docs/operator.md).
 */
export function resolveDomains(
  observed: Observed,
  gen: Generators,
  poolProblem: string | undefined,
  hosts: {
    ehloName?: string | undefined;
    /** The return-path MX target (return-path.ts returnPathHost). */
    returnPath?: { host: string; from: string } | undefined;
  } = {},
) {
  const ehloName = hosts.ehloName;
  const creates: KubeObject[] = [];
  const resolved: ResolvedDomain[] = [];
  // The oldest claim on a domain wins; later ones report the conflict.
  const owners = new Map<string, string>();
  const sorted = [...observed.domains].sort((a, b) => age(a).localeCompare(age(b)));
  for (const original of sorted) {
    const domain = withDefaults(original).resource;
    const name = domain.metadata.name ?? '';
    const fqdn = domain.spec.domain.toLowerCase();
    const inputs: ConditionInput[] = [];
    const status: Record<string, unknown> = { observedGeneration: domain.metadata.generation };
    let bound: BoundDomain | undefined;
    let pem: string | undefined;
    let suspendNow: string | undefined;
    let resumed = false;
    const events: ResolvedDomain['events'] = [];
    const owner = owners.get(fqdn);
    if (observed.pool === undefined) {
      inputs.push(
        cond(
          'Ready',
          'False',
          'PoolNotFound',
          `RelayPool ${observed.poolName} not found in ${observed.namespace}`,
        ),
      );
    } else if (owner !== undefined) {
      inputs.push(
        cond(
          'Ready',
          'False',
          'DomainConflict',
          `${fqdn} is already claimed by SendingDomain ${owner} in pool ${observed.poolName}`,
        ),
      );
    } else {
      owners.set(fqdn, name);
      const key = dkimKey(domain, observed, gen);
      if (key.create) creates.push(key.create);
      const { selector, algorithm } = domain.spec.dkim;
      if (key.problem || !key.pem) {
        inputs.push(key.problem ?? cond('DKIMKeyReady', 'False', 'SecretMalformed', 'no key'));
        inputs.push(
          cond(
            'Ready',
            'False',
            'DKIMKeyNotReady',
            `${fqdn} is not sent for until its DKIM key is usable: ${key.problem?.message ?? ''}`,
          ),
        );
      } else {
        const answers = observed.dns.get(name);
        const sign = signingKey({
          fqdn,
          selector,
          algorithm,
          key: { pem: key.pem, secretName: key.secretName, created: key.create !== undefined },
          previous: original.status?.dkim,
          secrets: observed.secrets,
          answers,
        });
        events.push(...sign.events);
        pem = sign.pem;
        const decision = decideSuspension(domain, observed.bounce.get(name), observed.now);
        if (decision.suspendNow) suspendNow = decision.message;
        resumed = decision.resumed;
        bound = {
          domain: fqdn,
          suspended: decision.suspended,
          dkim: { selector: sign.selector, algorithm: sign.algorithm },
        };
        if (domain.spec.returnPath) bound.returnPath = domain.spec.returnPath.toLowerCase();
        const tracking = domain.spec.tracking;
        if (tracking?.host && (tracking.opens || tracking.clicks))
          bound.tracking = {
            opens: tracking.opens,
            clicks: tracking.clicks,
            host: tracking.host,
          };
        // The records to publish (and verify) are those of the wanted selector.
        const records = dnsRecords(domain, key.pem, selector, observed.settings.spfInclude, ehloName);
        Object.assign(status, records.status);
        if (domain.spec.returnPath) {
          const rp = returnPathStatus({
            returnPath: domain.spec.returnPath.toLowerCase(),
            pool: observed.poolName,
            host: hosts.returnPath,
          });
          if (rp.record) status.returnPathMX = rp.record;
          inputs.push(rp.condition);
        }
        inputs.push(
          sign.pendingSelector === undefined
            ? cond(
                'DKIMKeyReady',
                'True',
                'KeyAvailable',
                `signing with selector ${selector} (${algorithm}), key in Secret ${key.secretName}`,
              )
            : cond(
                'DKIMKeyReady',
                'True',
                'RotationPending',
                `signing with selector ${sign.selector} until ${records.status.dkimRecord.name} is published as shown in status.dkim.pendingDnsRecord`,
              ),
        );
        status.dkim =
          sign.pendingSelector === undefined
            ? { selector, algorithm, secretName: key.secretName, dnsRecord: records.status.dkimRecord }
            : {
                selector: sign.selector,
                algorithm: sign.algorithm,
                secretName: sign.secretName,
                dnsRecord: dkimRecord(fqdn, sign.selector, sign.pem),
                pendingSelector: selector,
                pendingDnsRecord: records.status.dkimRecord,
              };
        delete status.dkimRecord;
        inputs.push(
          cond(
            'Suspended',
            decision.suspended ? 'True' : 'False',
            decision.suspended ? decision.reason : 'Sending',
            decision.suspended ? decision.message : 'mail for this domain is delivered',
          ),
        );
        if (decision.rate !== undefined) {
          const measured = observed.bounce.get(name);
          status.bounceRate = decision.rate.toFixed(4);
          status.bounceRateMessages = measured?.total ?? 0;
          if (measured?.asyncBounced) status.asyncBounces = measured.asyncBounced;
          if (domain.spec.returnPath && decision.complaintRate !== undefined)
            status.complaintRate = decision.complaintRate.toFixed(4);
        }
        const counts = observed.rates?.get(name);
        if (counts) status.rates = domainRates(counts);
        const previousSuspendedAt = original.status?.suspendedAt;
        if (decision.suspendNow) status.suspendedAt = observed.now.toISOString();
        else if (previousSuspendedAt) status.suspendedAt = previousSuspendedAt;
        if (answers) {
          const mismatches = dnsMismatches(records.list, answers);
          inputs.push(
            mismatches.length === 0
              ? cond('DNSVerified', 'True', 'RecordsMatch', 'the DKIM, SPF and DMARC records are published')
              : cond('DNSVerified', 'False', 'RecordsMismatch', mismatches.join('; ')),
          );
        }
        inputs.push(
          poolProblem === undefined
            ? cond(
                'Ready',
                'True',
                decision.suspended ? 'Suspended' : 'Sending',
                decision.suspended
                  ? `${fqdn} is configured on the pool; its mail is held: ${decision.message}`
                  : `${fqdn} is configured on pool ${observed.poolName}`,
              )
            : cond(
                'Ready',
                'False',
                'PoolBlocked',
                `RelayPool ${observed.poolName} cannot be configured: ${poolProblem}`,
              ),
        );
        inputs.push(
          decision.alert
            ? cond('Degraded', 'True', decision.reason, decision.message)
            : cond('Degraded', 'False', 'AsExpected', 'no problem detected'),
        );
      }
    }
    if (!inputs.some((i) => i.type === 'Degraded')) {
      const ready = inputs.find((i) => i.type === 'Ready');
      inputs.push(cond('Degraded', 'True', ready?.reason ?? 'Unknown', ready?.message ?? ''));
    }
    inputs.push(
      cond('Progressing', 'False', 'Reconciled', 'the pool configuration includes this domain as specified'),
    );
    const conditions = mergeConditions(
      original.status?.conditions,
      inputs,
      domain.metadata.generation,
      observed.now.toISOString(),
    );
    status.conditions = conditions;
    const entry: ResolvedDomain = { object: original, bound, pem, status, conditions, resumed, events };
    if (suspendNow !== undefined) entry.suspendNow = suspendNow;
    resolved.push(entry);
  }
  return { resolved, creates };
}

function dnsRecords(
  domain: DefaultedSendingDomain,
  pem: string,
  selector: string,
  include?: string,
  ehloName?: string,
) {
  const fqdn = domain.spec.domain.toLowerCase();
  const dkim = dkimRecord(fqdn, selector, pem);
  const spfOptions: Parameters<typeof spfRecord>[0] = { domain: fqdn };
  if (domain.spec.returnPath) spfOptions.returnPath = domain.spec.returnPath;
  if (include) spfOptions.include = include;
  if (ehloName) spfOptions.ehloName = ehloName;
  const spf = spfRecord(spfOptions);
  const dmarc = dmarcRecord(fqdn);
  const list: DNSRecord[] = [dkim, spf, dmarc];
  return { list, status: { dkimRecord: dkim, spf, dmarc } };
}

type SigningInput = {
  fqdn: string;
  /** The selector and algorithm the spec asks for, with its key. */
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  key: { pem: string; secretName: string; created: boolean };
  /** What the domain's status says it signed with last. */
  previous: { selector?: string; secretName?: string } | undefined;
  secrets: Observed['secrets'];
  /** TXT answers for the wanted records; undefined when DNS verification is off. */
  answers: TxtAnswers | undefined;
};

/**
 * Which key signs. A new selector signs only once its record is published: until the DNS check
 * sees it, the previous selector's key (still in its Secret) keeps signing, so no message goes out
 * with a signature receivers cannot verify. Without DNS verification there is nothing to wait for:
 * the new key signs at once, with a Warning. A key generated again under a selector that had one
 * (its Secret was deleted) is a Warning too: its record changed.
 */
export function signingKey(o: SigningInput): {
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  pem: string;
  secretName: string;
  pendingSelector?: string;
  events: ResolvedDomain['events'];
} {
  const wanted = {
    selector: o.selector,
    algorithm: o.algorithm,
    pem: o.key.pem,
    secretName: o.key.secretName,
  };
  const events: ResolvedDomain['events'] = [];
  const record = dkimRecord(o.fqdn, o.selector, o.key.pem);
  if (o.key.created && o.previous?.secretName === o.key.secretName)
    events.push({
      type: 'Warning',
      reason: 'DKIMKeyRegenerated',
      message: `the key Secret ${o.key.secretName} was gone: a new key was generated under selector ${o.selector}; publish ${record.name} again as shown in status, until then receivers fail this domain's DKIM signatures`,
    });
  const previousSelector = o.previous?.selector;
  if (previousSelector === undefined || previousSelector === o.selector) return { ...wanted, events };
  const oldPem = secretText(o.secrets.get(o.previous?.secretName ?? ''), DKIM_KEY);
  const oldUsable = oldPem !== undefined && isPrivateKeyPem(oldPem);
  if (o.answers === undefined || !oldUsable) {
    if (o.key.created)
      events.push({
        type: 'Warning',
        reason: 'DKIMSelectorChanged',
        message: `signing with the new selector ${o.selector} at once (${
          oldUsable ? 'DNS verification is off' : `the key of ${previousSelector} is gone`
        }): publish ${record.name} as shown in status`,
      });
    return { ...wanted, events };
  }
  const published =
    dnsMismatches([record], o.answers).length === 0 && o.answers[record.name ?? ''] !== undefined;
  if (published) return { ...wanted, events };
  if (o.key.created)
    events.push({
      type: 'Normal',
      reason: 'DKIMKeyGenerated',
      message: `a key for the new selector ${o.selector} is in Secret ${o.key.secretName}; ${previousSelector} keeps signing until ${record.name} is published as shown in status.dkim.pendingDnsRecord`,
    });
  return {
    selector: previousSelector,
    algorithm: algorithmOf(oldPem),
    pem: oldPem,
    secretName: o.previous?.secretName ?? '',
    pendingSelector: o.selector,
    events,
  };
}
