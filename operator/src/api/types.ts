// The mailfleet.dev/v1alpha1 objects as the operator reads them. Spec and status shapes are
// generated from schema.ts (types.generated.ts), so these types cannot drift from the CRDs.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type {
  DefaultedRateLimitSpec,
  DefaultedRelayPoolSpec,
  DefaultedSendingDomainSpec,
  RateLimitSpec,
  RateLimitStatus,
  RelayPoolSpec,
  RelayPoolStatus,
  SendingDomainSpec,
  SendingDomainStatus,
} from './types.generated.ts';

export type * from './types.generated.ts';

type ApiVersion = 'mailfleet.dev/v1alpha1';

type Resource<K extends string, S, T> = {
  apiVersion: ApiVersion;
  kind: K;
  metadata: V1ObjectMeta;
  spec: S;
  status?: T;
};

export type RelayPool = Resource<'RelayPool', RelayPoolSpec, RelayPoolStatus>;
export type SendingDomain = Resource<'SendingDomain', SendingDomainSpec, SendingDomainStatus>;
export type RateLimit = Resource<'RateLimit', RateLimitSpec, RateLimitStatus>;
export type MailfleetResource = RelayPool | SendingDomain | RateLimit;

/** The same objects with every schema default applied (withDefaults()): what builders receive, so
 * each default is said once, in schema.ts. */
export type DefaultedRelayPool = Resource<'RelayPool', DefaultedRelayPoolSpec, RelayPoolStatus>;
export type DefaultedSendingDomain = Resource<
  'SendingDomain',
  DefaultedSendingDomainSpec,
  SendingDomainStatus
>;
export type DefaultedRateLimit = Resource<'RateLimit', DefaultedRateLimitSpec, RateLimitStatus>;
