// Schema defaults applied to a copy of an object, so builders can read every defaulted field
// the way the API server would have stored it. Never mutates its input.
import type { RateLimit, RelayPool, SendingDomain } from './types.ts';
import { validateSpec } from './validate.ts';
import type { SpecProblem } from './validate.ts';

export function withDefaults<T extends RelayPool | SendingDomain | RateLimit>(
  resource: T,
): { resource: T; problems: SpecProblem[] } {
  const copy = structuredClone(resource);
  copy.spec = copy.spec ?? ({} as T['spec']);
  const problems = validateSpec(copy.kind, copy.spec);
  return { resource: copy, problems };
}
