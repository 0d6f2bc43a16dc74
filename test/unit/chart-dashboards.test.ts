// The chart's Grafana dashboards: current schema, the four template variables, every panel on the
// ${datasource} variable with a query, and every metric a dashboard or alert reads declared by the
// relay or the operator (or listed below as requested from them).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  REPO_ROOT,
  allPanels,
  expandVariables,
  loadAlerts,
  loadDashboards,
  metricNames,
  panelQueries,
} from '../helpers/prometheus/chart-files.ts';

/**
 * Metrics the dashboards and alerts read that the relay or operator does not declare yet (asked for
 * in docs/observability.md when there are any). The test fails when this list is out of date in either direction.
 */
const REQUESTED_METRICS: string[] = [];

/** Metric names declared in TypeScript sources: literal names, and `${p}name` with `const p = 'prefix'`. */
function declaredMetrics(dirs: string[]): Set<string> {
  const names = new Set<string>();
  const files = dirs.flatMap((dir) =>
    readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => path.join(REPO_ROOT, dir, f)),
  );
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    const prefixes = new Map<string, string>();
    for (const m of source.matchAll(/const (\w+) = '(mailfleet_[a-z]+_)'/g))
      prefixes.set(m[1] ?? '', m[2] ?? '');
    for (const m of source.matchAll(/name: '(mailfleet_[a-z0-9_]+)'/g)) names.add(m[1] ?? '');
    for (const m of source.matchAll(/name: `\$\{(\w+)\}([a-z0-9_]+)`/g)) {
      const prefix = prefixes.get(m[1] ?? '');
      if (prefix) names.add(`${prefix}${m[2]}`);
    }
  }
  return names;
}

const dashboards = loadDashboards();
const histogramBase = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

describe('dashboards', () => {
  test('the three dashboards of the issue are there', () => {
    assert.deepEqual([...dashboards.keys()], ['fleet-overview.json', 'operator.json', 'sending-domain.json']);
    assert.deepEqual(
      [...dashboards.values()].map((d) => d.title),
      ['mailfleet / Fleet overview', 'mailfleet / Operator', 'mailfleet / Sending domain'],
    );
  });

  test("uids are unique and fit Grafana's 40 characters", () => {
    const uids = [...dashboards.values()].map((d) => d.uid);
    assert.equal(new Set(uids).size, uids.length);
    for (const uid of uids) assert.ok(uid.length <= 40, uid);
  });

  for (const [file, dashboard] of dashboards) {
    describe(file, () => {
      test('uses the current dashboard schema', () => {
        assert.ok(dashboard.schemaVersion >= 39, `schemaVersion ${dashboard.schemaVersion}`);
      });

      test('has the datasource, namespace, pool and domain variables, the queries on the datasource variable', () => {
        const variables = dashboard.templating.list;
        assert.deepEqual(
          variables.map((v) => v.name),
          ['datasource', 'namespace', 'pool', 'domain'],
        );
        assert.equal(variables[0]?.type, 'datasource');
        assert.equal(variables[0]?.query, 'prometheus');
        for (const v of variables.slice(1)) {
          assert.equal(v.type, 'query');
          assert.deepEqual(v.datasource, { type: 'prometheus', uid: '${datasource}' });
        }
        // Each variable is read from the label that really exists on the relay series.
        const queries = variables.slice(1).map((v) => (v.query as { query: string }).query);
        assert.match(queries[0] ?? '', /, namespace\)$/);
        assert.match(queries[1] ?? '', /, pool\)$/);
        assert.match(queries[2] ?? '', /, sending_domain\)$/);
      });

      test('every panel reads the datasource variable and has at least one query', () => {
        const panels = allPanels(dashboard).filter((p) => p.type !== 'row');
        assert.ok(panels.length >= 6, `${panels.length} panels`);
        for (const panel of panels) {
          assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title);
          assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`);
          for (const target of panel.targets ?? [])
            assert.ok(
              (target.expr ?? '').includes('mailfleet_') || (target.expr ?? '').includes('up{'),
              `${panel.title}: ${target.expr}`,
            );
        }
      });

      test('panel ids are unique and panels do not overlap', () => {
        const panels = allPanels(dashboard);
        const ids = panels.map((p) => p.id);
        assert.equal(new Set(ids).size, ids.length);
        const cells = new Set<string>();
        for (const panel of panels) {
          const g = panel.gridPos;
          assert.ok(g, `${panel.title} has a gridPos`);
          assert.ok(g.x + g.w <= 24, `${panel.title} fits the 24-column grid`);
          for (let x = g.x; x < g.x + g.w; x++)
            for (let y = g.y; y < g.y + g.h; y++) {
              assert.ok(!cells.has(`${x},${y}`), `${panel.title} overlaps another panel at ${x},${y}`);
              cells.add(`${x},${y}`);
            }
        }
      });

      test('relay queries filter by the namespace and pool variables', () => {
        for (const q of panelQueries(file, dashboard)) {
          if (!/mailfleet_relay_|up\{/.test(q.expr)) continue;
          assert.match(q.expr, /namespace=~"\$namespace", pool=~"\$pool"/, `${q.panel}: ${q.expr}`);
        }
      });
    });
  }
});

describe('metric names', () => {
  const declared = declaredMetrics(['relay/src', 'operator/src']);
  const used = new Set<string>();
  for (const [file, dashboard] of dashboards)
    for (const q of panelQueries(file, dashboard))
      for (const m of metricNames(expandVariables(q.expr))) used.add(m);
  for (const alert of loadAlerts()) for (const m of metricNames(alert.expr)) used.add(m);
  used.delete('up');

  test("the relay's metrics are found in its sources (the scan works)", () => {
    assert.ok(declared.has('mailfleet_relay_recipients_bounced_total'));
    assert.ok(declared.has('mailfleet_relay_queue_jobs'));
  });

  test('every metric the dashboards and alerts read is declared, or requested in REQUESTED_METRICS', () => {
    const missing = [...used].map(histogramBase).filter((m) => !declared.has(m));
    assert.deepEqual([...new Set(missing)].sort(), REQUESTED_METRICS);
  });
});
