// Which SendingDomains a pool sends for, with their DKIM keys, and each domain's status. Pure.
import type { V1Secret } from '@kubernetes/client-node';
import type { Condition, DNSRecord, SendingDomain } from '../api/types.ts';
import { mergeConditions } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { withDefaults } from '../api/defaults.ts';
import { decideSuspension } from './bounce.ts';
import { dkimRecord, dmarcRecord, dnsMismatches, isPrivateKeyPem, spfRecord } from './dns.ts';
import { DKIM_KEY, dkimKeySecret, secretText } from './secret.ts';
import { names } from './meta.ts';
import type { BoundDomain } from './relayconfig.ts';
import type { Generators, KubeObject, Observed } from './types.ts';

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
};

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

function dkimKey(domain: SendingDomain, observed: Observed, gen: Generators): KeyLookup {
  const dkim = domain.spec.dkim ?? {};
  const selector = dkim.selector ?? 'mailfleet';
  if (dkim.keySecretRef) {
    const name = dkim.keySecretRef.name;
    return readKey(observed.secrets.get(name), name, dkim.keySecretRef.key ?? DKIM_KEY);
  }
  const name = names.dkimKey(domain.metadata.name ?? '', selector);
  const existing = observed.secrets.get(name);
  // A generated key is never replaced: if its Secret exists, whatever it holds is reported, not overwritten.
  if (existing) return readKey(existing, name, DKIM_KEY);
  const pem = gen.dkimKey(dkim.algorithm ?? 'rsa-sha256');
  // Not generated in this pass (a pass makes a bounded number of keys): the next pass does.
  if (pem === undefined)
    return {
      secretName: name,
      problem: cond('DKIMKeyReady', 'False', 'KeyPending', `a key is being generated for Secret ${name}`),
    };
  return { secretName: name, pem, create: dkimKeySecret(domain, selector, pem) as KubeObject };
}

const cond = (
  type: string,
  status: ConditionInput['status'],
  reason: string,
  message: string,
): ConditionInput => ({
  type,
  status,
  reason,
  message,
});

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
  ehloName?: string,
) {
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
      const dkim = domain.spec.dkim ?? {};
      const selector = dkim.selector ?? 'mailfleet';
      const algorithm = dkim.algorithm ?? 'rsa-sha256';
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
        pem = key.pem;
        const decision = decideSuspension(domain, observed.bounce.get(name), observed.now);
        if (decision.suspendNow) suspendNow = decision.message;
        resumed = decision.resumed;
        bound = { domain: fqdn, suspended: decision.suspended, dkim: { selector, algorithm } };
        const records = dnsRecords(domain, pem, selector, observed.settings.spfInclude, ehloName);
        Object.assign(status, records.status);
        inputs.push(
          cond(
            'DKIMKeyReady',
            'True',
            'KeyAvailable',
            `signing with selector ${selector} (${algorithm}), key in Secret ${key.secretName}`,
          ),
        );
        status.dkim = {
          selector,
          algorithm,
          secretName: key.secretName,
          dnsRecord: records.status.dkimRecord,
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
          status.bounceRate = decision.rate.toFixed(4);
          status.bounceRateMessages = observed.bounce.get(name)?.total ?? 0;
        }
        const previousSuspendedAt = original.status?.suspendedAt;
        if (decision.suspendNow) status.suspendedAt = observed.now.toISOString();
        else if (previousSuspendedAt) status.suspendedAt = previousSuspendedAt;
        const answers = observed.dns.get(name);
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
            ? cond('Degraded', 'True', 'BounceRateExceeded', decision.message)
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
    const entry: ResolvedDomain = { object: original, bound, pem, status, conditions, resumed };
    if (suspendNow !== undefined) entry.suspendNow = suspendNow;
    resolved.push(entry);
  }
  return { resolved, creates };
}

function dnsRecords(
  domain: SendingDomain,
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
