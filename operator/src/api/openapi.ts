// A small builder for Kubernetes structural OpenAPI v3 schemas. The API is declared once with these
// builders (schema.ts); the CRD YAML, the TypeScript types and docs/api.md are generated from it.

export type CelRule = { rule: string; message: string; reason?: string; fieldPath?: string };

export type Schema = {
  type: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema;
  items?: Schema;
  enum?: string[];
  pattern?: string;
  format?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: CelRule[];
  /** Generator hint: the TypeScript type name for this object. Not emitted into the CRD. */
  'x-ts-type'?: string;
};

type Common = Partial<
  Pick<
    Schema,
    | 'default'
    | 'x-kubernetes-validations'
    | 'nullable'
    | 'format'
    | 'enum'
    | 'pattern'
    | 'minimum'
    | 'maximum'
    | 'minLength'
    | 'maxLength'
    | 'minItems'
    | 'maxItems'
    | 'x-kubernetes-list-type'
    | 'x-kubernetes-list-map-keys'
    | 'maxProperties'
  >
>;

export function str(description: string, extra: Common = {}): Schema {
  return { type: 'string', description, ...extra };
}
export function int(description: string, extra: Common = {}): Schema {
  return { type: 'integer', description, format: 'int32', ...extra };
}
export function num(description: string, extra: Common = {}): Schema {
  return { type: 'number', description, ...extra };
}
export function bool(description: string, extra: Common = {}): Schema {
  return { type: 'boolean', description, ...extra };
}
export function arr(description: string, items: Schema, extra: Common = {}): Schema {
  return { type: 'array', description, items, ...extra };
}
export function map(description: string, values: Schema, extra: Common = {}): Schema {
  return { type: 'object', description, additionalProperties: values, ...extra };
}
export function obj(
  description: string,
  properties: Record<string, Schema>,
  extra: Common & { required?: string[]; tsType?: string } = {},
): Schema {
  const { required, tsType, ...rest } = extra;
  const schema: Schema = { type: 'object', description, properties, ...rest };
  if (required && required.length > 0) schema.required = required;
  if (tsType) schema['x-ts-type'] = tsType;
  return schema;
}
/** An object whose inner shape is defined by Kubernetes itself (affinity, topology spread). */
export function opaque(description: string): Schema {
  return { type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true };
}
export function intOrString(description: string, extra: Common = {}): Schema {
  return { type: 'string', description, 'x-kubernetes-int-or-string': true, ...extra };
}

/** Strip generator-only hints so the result is a valid CRD schema. */
export function toCrdSchema(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'x-ts-type') continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, toCrdSchema(v)]),
      );
    } else if (key === 'items' || key === 'additionalProperties') {
      out[key] = toCrdSchema(value as Schema);
    } else if (key === 'type' && schema['x-kubernetes-int-or-string']) {
      continue; // int-or-string must not carry a type
    } else {
      out[key] = value;
    }
  }
  return out;
}
