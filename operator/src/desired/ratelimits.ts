// A pool's RateLimits as relay rules, each with its share and status. Pure.
import type { RateLimit } from '../api/types.ts';
import { cond, mergeConditions } from '../api/conditions.ts';
import type { ConditionInput } from '../api/conditions.ts';
import { withDefaults } from '../api/defaults.ts';
import { computeShare, poolNumbers } from './share.ts';
import type { RenderedLimit } from './relay-config.ts';
import type { Observed } from './types.ts';

export type ResolvedLimit = { object: RateLimit; rule?: RenderedLimit; status: Record<string, unknown> };

export function resolveRateLimits(observed: Observed, readyRelays: number): ResolvedLimit[] {
  const sorted = [...observed.rateLimits].sort((a, b) =>
    (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  );
  return sorted.map((original) => {
    const limit = withDefaults(original).resource;
    const spec = limit.spec;
    const status: Record<string, unknown> = { observedGeneration: limit.metadata.generation };
    const inputs: ConditionInput[] = [];
    let rule: RenderedLimit | undefined;
    if (!observed.pool) {
      const message = `RelayPool ${observed.poolName} not found in ${observed.namespace}`;
      inputs.push(
        cond('Ready', 'False', 'PoolNotFound', message),
        cond('Degraded', 'True', 'PoolNotFound', message),
      );
    } else {
      const share = computeShare(spec, readyRelays);
      const match = spec.match ?? {};
      rule = {
        name: limit.metadata.name ?? '',
        match: {
          senderDomains: [...(match.senderDomains ?? [])],
          recipientDomains: [...(match.recipientDomains ?? [])],
          senderAddresses: [...(match.senderAddresses ?? [])],
          recipientMXHosts: [...(match.recipientMXHosts ?? [])],
        },
        onExceed: spec.onExceed === 'Reject' ? 'reject' : 'defer',
      };
      if (share.rate) rule.rate = share.rate;
      if (share.burst !== undefined) rule.burst = share.burst;
      if (share.maxConnections !== undefined) rule.maxConnections = share.maxConnections;
      if (spec.maxMessagesPerConnection !== undefined)
        rule.maxMessagesPerConnection = spec.maxMessagesPerConnection;
      // With a shared store the relays hold the pool to its numbers together; the share stays
      // in the rule as what each relay falls back to while the store does not answer.
      const pool = observed.pool.spec.sharedState ? poolNumbers(spec) : undefined;
      if (pool) rule.pool = pool;
      if (share.effectiveRate) status.effectiveRate = share.effectiveRate;
      status.sharedBy = spec.scope === 'Pool' ? share.sharedBy : 1;
      const scope = pool
        ? `the ${share.sharedBy} ready relays enforce it together in the shared store (each its share while the store is down)`
        : spec.scope === 'Pool'
          ? `each of ${share.sharedBy} ready relays enforces its share`
          : 'each relay enforces it';
      inputs.push(
        cond('Ready', 'True', 'Applied', `in the relay config of pool ${observed.poolName}; ${scope}`),
      );
      inputs.push(cond('Degraded', 'False', 'AsExpected', 'no problem detected'));
    }
    inputs.push(cond('Progressing', 'False', 'Reconciled', 'the relay config matches this limit'));
    status.conditions = mergeConditions(
      original.status?.conditions,
      inputs,
      limit.metadata.generation,
      observed.now.toISOString(),
    );
    return { object: original, rule, status };
  });
}
