// Pure renderers from the API declaration (schema.ts) to the CRD manifests, the TypeScript types
// and the API reference. scripts/gen-api.ts writes their output; api.test.ts fails when stale.
import { stringify } from 'yaml';
import type { Schema } from './openapi.ts';
import { toCrdSchema } from './openapi.ts';
import type { Kind } from './schema.ts';
import { group, version } from './schema.ts';

export function crdFileName(kind: Kind): string {
  return `${group}_${kind.plural}.yaml`;
}

function renderCrd(kind: Kind): Record<string, unknown> {
  const root: Schema = {
    type: 'object',
    description: kind.description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object: mailfleet.dev/v1alpha1.' },
      kind: { type: 'string', description: `Kind of this object: ${kind.kind}.` },
      metadata: { type: 'object' } as Schema, // the API server refuses a description here
      spec: kind.spec,
      status: kind.status,
    },
    required: ['spec'],
    ...(kind.validations?.length ? { 'x-kubernetes-validations': kind.validations } : {}),
  };
  const subresources: Record<string, unknown> = { status: {} };
  if (kind.scale) subresources.scale = kind.scale;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${kind.plural}.${group}`,
      labels: { 'app.kubernetes.io/name': 'mailfleet', 'app.kubernetes.io/part-of': 'mailfleet' },
    },
    spec: {
      group,
      scope: 'Namespaced',
      names: {
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        plural: kind.plural,
        singular: kind.singular,
        shortNames: [kind.shortName],
        categories: ['mailfleet'],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: toCrdSchema(root) },
          subresources,
          additionalPrinterColumns: kind.columns,
        },
      ],
    },
  };
}

export function renderCrdYaml(kind: Kind): string {
  return `# Generated from operator/src/api/schema.ts by \`npm run gen:api\`. Do not edit.\n${stringify(renderCrd(kind), { lineWidth: 0 })}`;
}

// ---------- TypeScript types ----------

type Declare = (name: string, schema: Schema) => void;

/**
 * The types are rendered twice from the same schema: as written (a field is optional unless
 * required) and as defaulted (a field with a schema default is present too, as withDefaults() and
 * the API server leave it), named `Defaulted<Name>`. A type with no default anywhere under it has
 * one name in both.
 */
type Mode = { defaulted: boolean };

/** Whether anything under a schema (not the schema itself: its parent owns that) has a default. */
function defaultsWithin(schema: Schema): boolean {
  const children = [
    ...Object.values(schema.properties ?? {}),
    ...(schema.items ? [schema.items] : []),
    ...(schema.additionalProperties ? [schema.additionalProperties] : []),
  ];
  return children.some((child) => child.default !== undefined || defaultsWithin(child));
}

function typeName(schema: Schema, mode: Mode): string {
  const name = schema['x-ts-type']!;
  return mode.defaulted && defaultsWithin(schema) ? `Defaulted${name}` : name;
}

function tsTypeOf(schema: Schema, declare: Declare, indent: string, mode: Mode): string {
  if (schema['x-kubernetes-int-or-string']) return 'number | string';
  switch (schema.type) {
    case 'string':
      return schema.enum ? schema.enum.map((v) => `'${v}'`).join(' | ') : 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return `Array<${tsTypeOf(schema.items!, declare, indent, mode)}>`;
    case 'object': {
      if (schema['x-kubernetes-preserve-unknown-fields']) return 'Record<string, unknown>';
      if (schema.additionalProperties)
        return `Record<string, ${tsTypeOf(schema.additionalProperties, declare, indent, mode)}>`;
      if (schema['x-ts-type']) {
        const name = typeName(schema, mode);
        declare(name, schema);
        return name;
      }
      return objectBody(schema, declare, indent, mode);
    }
  }
}

function objectBody(schema: Schema, declare: Declare, indent: string, mode: Mode): string {
  const inner = `${indent}  `;
  const lines = Object.entries(schema.properties ?? {}).map(([name, prop]) => {
    const present = schema.required?.includes(name) || (mode.defaulted && prop.default !== undefined);
    const doc = `${inner}/** ${prop.description.replace(/\*\//g, '*\\/')}${prop.default !== undefined ? ` Default: ${JSON.stringify(prop.default)}.` : ''} */\n`;
    return `${doc}${inner}${name}${present ? '' : '?'}: ${tsTypeOf(prop, declare, inner, mode)};`;
  });
  return `{\n${lines.join('\n')}\n${indent}}`;
}

export function renderTypes(kinds: Kind[]): string {
  const declared = new Map<string, string>();
  const order: string[] = [];
  const declarer = (mode: Mode): Declare => {
    const declare: Declare = (name, schema) => {
      if (declared.has(name)) return;
      declared.set(name, '');
      const body = objectBody(schema, declare, '', mode);
      const doc =
        mode.defaulted && name !== schema['x-ts-type']
          ? `${schema.description} (schema defaults applied)`
          : schema.description;
      declared.set(name, `/** ${doc} */\nexport interface ${name} ${body}\n`);
      order.push(name);
    };
    return declare;
  };
  const asWritten = declarer({ defaulted: false });
  for (const kind of kinds) {
    asWritten(kind.spec['x-ts-type']!, kind.spec);
    asWritten(kind.status['x-ts-type']!, kind.status);
  }
  const defaulted = declarer({ defaulted: true });
  for (const kind of kinds) defaulted(typeName(kind.spec, { defaulted: true }), kind.spec);
  const header = '// Generated from operator/src/api/schema.ts by `npm run gen:api`. Do not edit.\n';
  return header + order.map((name) => declared.get(name)).join('\n');
}

// ---------- API reference ----------

function constraints(schema: Schema): string {
  const parts: string[] = [];
  if (schema.enum) parts.push(`one of ${schema.enum.map((v) => `\`${v}\``).join(', ')}`);
  if (schema.default !== undefined && !(typeof schema.default === 'object'))
    parts.push(`default \`${String(schema.default)}\``);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.maxItems !== undefined) parts.push(`at most ${schema.maxItems} items`);
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
  if (schema.pattern) parts.push(`pattern \`${schema.pattern.replace(/\|/g, '\\|')}\``);
  for (const rule of schema['x-kubernetes-validations'] ?? []) parts.push(`rule: ${rule.message}`);
  return parts.join('; ');
}

function typeLabel(schema: Schema): string {
  if (schema['x-kubernetes-int-or-string']) return 'int or string';
  if (schema.type === 'array') return `[]${typeLabel(schema.items!)}`;
  if (schema.type === 'object' && schema.additionalProperties)
    return `map[string]${typeLabel(schema.additionalProperties)}`;
  return schema.type;
}

function fieldRows(schema: Schema, path: string, rows: string[]): void {
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const full = path ? `${path}.${name}` : name;
    const required = schema.required?.includes(name) ? ' (required)' : '';
    rows.push(
      `| \`${full}\`${required} | ${typeLabel(prop)} | ${prop.description.replace(/\|/g, '\\|')} | ${constraints(prop)} |`,
    );
    if (prop.type === 'object' && prop.properties) fieldRows(prop, full, rows);
    if (prop.type === 'array' && prop.items?.properties) fieldRows(prop.items, `${full}[]`, rows);
  }
}

export function renderApiDocs(kinds: Kind[]): string {
  const out: string[] = [
    '<!-- Generated from operator/src/api/schema.ts by `npm run gen:api`. Do not edit. -->',
    '# mailfleet API reference (`mailfleet.dev/v1alpha1`)',
    '',
    'All kinds are namespaced and in the category `mailfleet` (`kubectl get mailfleet`).',
    '`kubectl explain <kind>.spec` prints the same descriptions.',
    '',
  ];
  for (const kind of kinds) {
    out.push(`## ${kind.kind} (\`${kind.shortName}\`)`, '', kind.description, '');
    for (const rule of [...(kind.validations ?? []), ...(kind.spec['x-kubernetes-validations'] ?? [])])
      out.push(`- Rule: ${rule.message}.`);
    out.push('', '### spec', '', '| Field | Type | Description | Constraints |', '|---|---|---|---|');
    const rows: string[] = [];
    fieldRows(kind.spec, 'spec', rows);
    out.push(
      ...rows,
      '',
      '### status',
      '',
      '| Field | Type | Description | Constraints |',
      '|---|---|---|---|',
    );
    const statusRows: string[] = [];
    fieldRows(kind.status, 'status', statusRows);
    out.push(
      ...statusRows,
      '',
      '### Printer columns',
      '',
      kind.columns.map((c) => `\`${c.name}\``).join(', '),
      '',
    );
  }
  return out.join('\n');
}
