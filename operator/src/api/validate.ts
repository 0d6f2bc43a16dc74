// Validates a custom resource's spec against the OpenAPI part of its CRD schema (types, enums,
// patterns, bounds) and applies schema defaults, as the API server does before CEL rules run.
// Used by unit tests and by the operator to explain why an object it reads is unusable.
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { toCrdSchema } from './openapi.ts';
import { kinds } from './schema.ts';

const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true, validateFormats: false });
const validators = new Map<string, ValidateFunction>(
  kinds.map((kind) => [kind.kind, ajv.compile(toCrdSchema(kind.spec))]),
);

export type SpecProblem = { path: string; message: string };

export function validateSpec(kind: string, spec: unknown): SpecProblem[] {
  const validate = validators.get(kind);
  if (!validate) return [{ path: '', message: `unknown kind ${kind}` }];
  if (validate(spec)) return [];
  return (validate.errors ?? []).map((error) => ({
    path: `spec${error.instancePath.replace(/\//g, '.')}`,
    message: error.message ?? 'invalid',
  }));
}
