// A signing key the operator generates once into a Secret of its own and never rewrites (a new
// key would break what the old one signed: tracked links, VERP addresses of mail in flight). Pure.
import type { ConditionInput } from '../api/conditions.ts';
import { secretText } from './secret.ts';
import type { KubeObject, Observed } from './types.ts';

export type GeneratedKeyInputs = { problem?: ConditionInput; create: KubeObject[]; keep: string[] };

export type GeneratedKey = {
  /** The Secret's name. */
  name: string;
  /** The data key holding the key. */
  key: string;
  /** Shorter than this, the relays refuse the key: the pool is blocked rather than rendered. */
  minBytes: number;
  /** What the key is for, as the condition message says it ("tracking", "return-path"). */
  purpose: string;
  /** The Secret to create when none exists. */
  make: () => KubeObject;
};

/** Create the Secret when missing, keep it when sound, block the pool when its key was damaged. */
export function generatedKeyInputs(o: GeneratedKey, observed: Observed): GeneratedKeyInputs {
  const existing = observed.secrets.get(o.name);
  if (!existing) return { create: [o.make()], keep: [] };
  if ((secretText(existing, o.key) ?? '').length < o.minBytes)
    return {
      create: [],
      keep: [],
      problem: {
        type: 'Ready',
        status: 'False',
        reason: 'SecretMalformed',
        message: `${o.purpose} Secret ${o.name} lost its ${o.key} key (at least ${o.minBytes} bytes)`,
      },
    };
  return { create: [], keep: [`Secret/${o.name}`] };
}
