// What the manifest linters are run on: the objects desiredState() applies for representative pools
// (Deployment mode, StatefulSet mode, autoscaling, NetworkPolicy), as one multi-document YAML each.
import { stringify } from 'yaml';
import { desiredState } from '../../operator/src/desired/state.ts';
import type { RelayPoolSpec } from '../../operator/src/api/types.ts';
import { fakeGenerators, observed, relayPool } from './operator/fixtures.ts';

export const REPRESENTATIVE_POOLS: { name: string; spec: Partial<RelayPoolSpec> }[] = [
  { name: 'Deployment mode (emptyDir spool), NetworkPolicy on by default', spec: { replicas: 2 } },
  {
    name: 'StatefulSet mode (a PVC per relay)',
    spec: { replicas: 3, queue: { persistence: { size: '5Gi' } } },
  },
  { name: 'autoscaling', spec: { autoscaling: { minReplicas: 2, maxReplicas: 10 } } },
  {
    name: 'NetworkPolicy with client networks, management namespaces and a metrics network',
    spec: {
      replicas: 2,
      networkPolicy: {
        enabled: true,
        clientsFrom: ['10.0.0.0/8'],
        managementNamespaces: ['monitoring'],
        metricsFrom: ['192.168.0.0/16'],
      },
    },
  },
];

/** The objects the operator writes for a pool (applied and created), as multi-document YAML. */
export function desiredManifests(spec: Partial<RelayPoolSpec>): string {
  const d = desiredState(observed({ pool: relayPool(spec) }), fakeGenerators());
  return [...d.apply, ...d.create].map((o) => stringify(o)).join('---\n');
}

type Json = Record<string, unknown>;

/**
 * A schema made strict the way openapi2jsonschema --strict does for kubeconform: objects with
 * properties refuse others (unless they preserve unknown fields), int-or-string accepts both.
 */
export function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    out[k] = k === 'properties' || k === 'definitions' ? mapValues(v as Json, strictSchema) : strictSchema(v);
  }
  if (out.format === 'int-or-string' || out['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    delete out.format;
    out.oneOf = [{ type: 'string' }, { type: 'integer' }];
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out['x-kubernetes-preserve-unknown-fields']
  )
    out.additionalProperties = false;
  return out;
}
const mapValues = (o: Json, f: (v: unknown) => unknown): Json =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));

/** kubeconform's file name for a kind: {{ .ResourceKind }}{{ .KindSuffix }}.json */
export const schemaFileName = (group: string, version: string, kind: string): string =>
  `${kind.toLowerCase()}${group ? `-${group.split('.')[0]}` : ''}-${version}.json`;

/** One JSON schema file per kind of Kubernetes' OpenAPI v2 document (all definitions embedded). */
export function kubernetesSchemas(swagger: { definitions: Json }): Map<string, unknown> {
  const definitions = mapValues(swagger.definitions, strictSchema);
  // The embedded definitions are referenced as #/definitions/<name>, as in the source document.
  const files = new Map<string, unknown>();
  for (const [name, def] of Object.entries(swagger.definitions)) {
    const gvks = (def as Json)['x-kubernetes-group-version-kind'] as
      { group: string; version: string; kind: string }[] | undefined;
    for (const gvk of gvks ?? []) {
      files.set(schemaFileName(gvk.group, gvk.version, gvk.kind), {
        $ref: `#/definitions/${name}`,
        definitions,
      });
    }
  }
  return files;
}

/** One JSON schema file per served version of each CustomResourceDefinition. */
export function crdSchemas(crds: unknown[]): Map<string, unknown> {
  const files = new Map<string, unknown>();
  for (const crd of crds as {
    kind?: string;
    spec: {
      group: string;
      names: { kind: string };
      versions: { name: string; schema: { openAPIV3Schema: Json } }[];
    };
  }[]) {
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    for (const v of crd.spec.versions) {
      // apiVersion, kind and metadata are always allowed, declared in the CRD or not.
      const root = v.schema.openAPIV3Schema;
      const properties = {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        ...(root.properties as Json),
      };
      files.set(
        schemaFileName(crd.spec.group, v.name, crd.spec.names.kind),
        strictSchema({ ...root, properties }),
      );
    }
  }
  return files;
}
