// Schema defaults applied to a copy of an object, so builders can read every defaulted field
// the way the API server would have stored it. Never mutates its input.
import type {
  DefaultedRateLimit,
  DefaultedRelayPool,
  DefaultedSendingDomain,
  RateLimit,
  RelayPool,
  SendingDomain,
} from './types.ts';
import { validateSpec } from './validate.ts';
import type { SpecProblem } from './validate.ts';

/** The defaulted type of each kind (types.generated.ts renders both from schema.ts). */
export type Defaulted<T extends RelayPool | SendingDomain | RateLimit> = T extends RelayPool
  ? DefaultedRelayPool
  : T extends SendingDomain
    ? DefaultedSendingDomain
    : DefaultedRateLimit;

export function withDefaults<T extends RelayPool | SendingDomain | RateLimit>(
  resource: T,
): { resource: Defaulted<T>; problems: SpecProblem[] } {
  const copy = structuredClone(resource);
  copy.spec = copy.spec ?? ({} as T['spec']);
  // ajv (useDefaults) fills every field schema.ts gives a default, at every depth that is present:
  // the Defaulted types say exactly that (api.test.ts checks the two agree). On a spec with problems
  // the caller reports them and does not build from it.
  const problems = validateSpec(copy.kind, copy.spec);
  return { resource: copy as unknown as Defaulted<T>, problems };
}
