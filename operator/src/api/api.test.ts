import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { crdFileName, renderApiDocs, renderCrdYaml, renderTypes } from './generate.ts';
import type { Schema } from './openapi.ts';
import { toCrdSchema } from './openapi.ts';
import { kinds } from './schema.ts';
import { validateSpec } from './validate.ts';
import { invalid, limit, pool } from '../../../test/fixtures/api-documents.ts';

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Walks a CRD schema and reports every field that is untyped or undescribed. */
function structuralProblems(schema: Record<string, unknown>, path: string): string[] {
  const problems: string[] = [];
  const typed = typeof schema.type === 'string' || schema['x-kubernetes-int-or-string'] === true;
  if (!typed) problems.push(`${path}: no type`);
  if (typeof schema.description !== 'string' || schema.description.length < 3)
    problems.push(`${path}: no description`);
  for (const [name, prop] of Object.entries(
    (schema.properties ?? {}) as Record<string, Record<string, unknown>>,
  )) {
    problems.push(...structuralProblems(prop, `${path}.${name}`));
  }
  if (schema.items)
    problems.push(...structuralProblems(schema.items as Record<string, unknown>, `${path}[]`));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    problems.push(...structuralProblems(schema.additionalProperties as Record<string, unknown>, `${path}{}`));
  }
  return problems;
}

describe('CRDs', () => {
  for (const kind of kinds) {
    test(`${kind.kind} CRD file is generated from schema.ts and up to date`, () => {
      assert.equal(read(`crds/${crdFileName(kind)}`), renderCrdYaml(kind));
    });
    test(`${kind.kind} is a structural schema with every field typed and described`, () => {
      const crd = parseAllDocuments(read(`crds/${crdFileName(kind)}`))[0]!.toJS();
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      assert.deepEqual(structuralProblems(schema.properties.spec, 'spec'), []);
      assert.deepEqual(structuralProblems(schema.properties.status, 'status'), []);
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.deepEqual(crd.spec.names.categories, ['mailfleet']);
      assert.equal(crd.spec.versions[0].subresources.status !== undefined, true);
    });
  }
  test('RelayPool has the scale subresource wired to spec.replicas and status.selector', () => {
    const crd = parseAllDocuments(read('crds/mailfleet.dev_relaypools.yaml'))[0]!.toJS();
    assert.deepEqual(crd.spec.versions[0].subresources.scale, {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    });
  });
  test('types.generated.ts is up to date', () => {
    assert.equal(read('operator/src/api/types.generated.ts'), renderTypes(kinds));
  });
  test('docs/api.md is up to date', () => {
    assert.equal(read('docs/api.md'), renderApiDocs(kinds));
  });
  test('int-or-string fields carry no type in the CRD', () => {
    const schema: Schema = { type: 'string', description: 'x', 'x-kubernetes-int-or-string': true };
    assert.equal(toCrdSchema(schema).type, undefined);
  });
});

describe('samples', () => {
  const dir = new URL('crds/samples/', root);
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((d) => ({ file, doc: d.toJS() })),
    );
  test('cover one pool, two sending domains and two rate limits', () => {
    const count = (kind: string) => docs.filter((d) => d.doc.kind === kind).length;
    assert.deepEqual([count('RelayPool'), count('SendingDomain'), count('RateLimit')], [1, 2, 2]);
  });
  for (const { file, doc } of docs.filter((d) => d.doc.apiVersion === 'mailfleet.dev/v1alpha1')) {
    test(`${file}: ${doc.kind}/${doc.metadata.name} validates against its schema`, () => {
      assert.deepEqual(validateSpec(doc.kind, structuredClone(doc.spec)), []);
    });
  }
});

describe('the OpenAPI rules reject', () => {
  for (const c of invalid) {
    test(c.name, () => {
      const problems = validateSpec(c.kind, c.spec);
      assert.ok(problems.length > 0, 'expected the document to be rejected');
      assert.ok(
        problems.some((p) => p.path === c.path),
        `expected a problem at ${c.path}, got ${JSON.stringify(problems)}`,
      );
    });
  }
  test('and accept valid edge values (IPv6 CIDR, wildcard domains, 1h30m)', () => {
    assert.deepEqual(
      validateSpec(
        'RelayPool',
        pool({ allowedNetworks: ['fd00::/8', '0.0.0.0/0'], retry: { firstRetry: '1h30m' } }),
      ),
      [],
    );
    assert.deepEqual(
      validateSpec(
        'RateLimit',
        limit({ match: { recipientDomains: ['*.yahoo.com', 'xn--bcher-kva.example'] } }),
      ),
      [],
    );
  });
  test('and fill in the defaults an MTA admin expects', () => {
    const spec = pool();
    const get = (...keys: string[]): unknown =>
      keys.reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], spec);
    assert.deepEqual(validateSpec('RelayPool', spec), []);
    assert.equal(get('listeners', 'smtp', 'port'), 25);
    assert.equal(get('listeners', 'submission', 'port'), 587);
    assert.equal(get('listeners', 'smtps', 'port'), 465);
    assert.equal(get('retry', 'maxQueueLifetime'), '5d');
    assert.equal(get('limits', 'maxRecipients'), 100);
    assert.equal(get('delivery', 'mode'), 'Direct');
  });
});
