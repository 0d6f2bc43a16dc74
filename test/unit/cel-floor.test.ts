// The chart's kubeVersion floor must know every function the CRDs' CEL rules call: an API server
// older than a function's introduction refuses the whole CRD ("undeclared reference"). The table
// names the Kubernetes version that brought each function (the "CEL in Kubernetes" reference:
// has() and size() are CEL's own; isCIDR() is the Kubernetes IP/CIDR library of 1.31). A rule
// calling a function not in the table fails here until it is added with its version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SINCE: Record<string, [number, number]> = {
  has: [1, 25],
  size: [1, 25],
  isCIDR: [1, 31],
};

function rules(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) rules(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'x-kubernetes-validations' && Array.isArray(v)) {
        for (const r of v as { rule?: string }[]) if (r.rule) out.push(r.rule);
      } else {
        rules(v, out);
      }
    }
  }
  return out;
}

test("the chart's kubeVersion floor knows every CEL function the CRDs call", () => {
  const chart = parse(readFileSync(path.join(ROOT, 'charts/mailfleet/Chart.yaml'), 'utf8')) as {
    kubeVersion: string;
  };
  const floor = /^>=\s*(\d+)\.(\d+)/.exec(chart.kubeVersion);
  assert.ok(floor, `kubeVersion ${chart.kubeVersion} states a minimum`);
  const minimum: [number, number] = [Number(floor[1]), Number(floor[2])];
  const files = readdirSync(path.join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml'));
  const found = new Set<string>();
  for (const file of files)
    for (const doc of parseAllDocuments(readFileSync(path.join(ROOT, 'crds', file), 'utf8')))
      for (const rule of rules(doc.toJS()))
        for (const m of rule.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\(/g)) found.add(m[1]!);
  assert.ok(found.has('isCIDR'), 'the scan sees the rules (the RelayPool CRD calls isCIDR)');
  for (const fn of found) {
    const since = SINCE[fn];
    assert.ok(
      since,
      `CEL function ${fn}() is not in the table: add the Kubernetes version that introduced it`,
    );
    assert.ok(
      minimum[0] > since[0] || (minimum[0] === since[0] && minimum[1] >= since[1]),
      `${fn}() needs Kubernetes ${since.join('.')}, the chart claims ${chart.kubeVersion}`,
    );
  }
});
