// Static checks of the Helm chart that need no helm binary: CRDs in step with crds/, the values
// schema describes and accepts the defaults and rejects wrong values, alerts have runbooks.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import {
  CHART_DIR,
  DEFAULT_RUNBOOK_BASE,
  REPO_ROOT,
  RUNBOOKS_FILE,
  loadAlerts,
} from '../helpers/prometheus/chart-files.ts';

const readYaml = (file: string): unknown => parse(readFileSync(file, 'utf8'));
/** The parts of values.yaml the tests change. */
interface ChartValues {
  image: { pullPolicy: string; digest: string };
  operator: Record<string, unknown>;
  prometheusRule: Record<string, unknown>;
  podDisruptionBudget: Record<string, unknown>;
  dashboards: Record<string, unknown>;
  metrics: { serviceMonitor: Record<string, unknown> };
  examples: { enabled: boolean; sendingDomain: { spec: unknown } };
}
const defaultValues = (): ChartValues => readYaml(path.join(CHART_DIR, 'values.yaml')) as ChartValues;
const schema = JSON.parse(readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as Record<
  string,
  unknown
>;
const validateValues = new Ajv({ strict: false, allErrors: true }).compile(schema);

describe('chart CRDs', () => {
  const topLevel = readdirSync(path.join(REPO_ROOT, 'crds')).filter((f) => f.endsWith('.yaml'));
  const inChart = readdirSync(path.join(CHART_DIR, 'crds')).filter((f) => f.endsWith('.yaml'));

  test('the chart ships exactly the CRD files of crds/', () => {
    assert.deepEqual(inChart.sort(), topLevel.sort());
    assert.equal(inChart.length, 3);
  });

  for (const file of topLevel) {
    test(`${file} in the chart has the same content as crds/${file}`, () => {
      // Compared parsed: the chart copy is formatted by prettier, crds/ is generated.
      assert.deepEqual(
        readYaml(path.join(CHART_DIR, 'crds', file)),
        readYaml(path.join(REPO_ROOT, 'crds', file)),
        `charts/mailfleet/crds/${file} is stale: cp crds/${file} charts/mailfleet/crds/ && npx prettier --write charts/mailfleet/crds/`,
      );
    });
  }
});

/** Every path of a values tree down to leaves, with the schema node that must describe it. */
function undescribedValues(value: unknown, node: Record<string, unknown> | undefined, at: string): string[] {
  if (!node) return [`${at}: not in values.schema.json`];
  const problems: string[] = [];
  if (typeof node.description !== 'string' || node.description.length < 5)
    problems.push(`${at}: no description`);
  const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
  // Free-form maps (labels, a custom resource spec) are described as a whole.
  if (value && typeof value === 'object' && !Array.isArray(value) && properties) {
    for (const [key, child] of Object.entries(value)) {
      problems.push(...undescribedValues(child, properties[key], `${at}.${key}`));
    }
  }
  return problems;
}

describe('values.schema.json', () => {
  test('accepts the default values.yaml', () => {
    assert.equal(validateValues(defaultValues()), true, JSON.stringify(validateValues.errors, null, 2));
  });

  test('describes every value of values.yaml', () => {
    const values = defaultValues();
    const properties = schema.properties as Record<string, Record<string, unknown>>;
    const problems = Object.entries(values).flatMap(([key, value]) =>
      undescribedValues(value, properties[key], key),
    );
    assert.deepEqual(problems, []);
  });

  test('forbids unknown top-level values, so a misspelt key fails the install', () => {
    assert.equal(schema.additionalProperties, false);
  });

  const wrong: Array<{ name: string; change: (v: ChartValues) => void; path: string }> = [
    { name: 'zero operator replicas', change: (v) => (v.operator.replicas = 0), path: '/operator/replicas' },
    {
      name: 'an unknown pull policy',
      change: (v) => (v.image.pullPolicy = 'Sometimes'),
      path: '/image/pullPolicy',
    },
    { name: 'a misspelt operator key', change: (v) => (v.operator.replica = 2), path: '/operator' },
    {
      name: 'a log level Node does not know',
      change: (v) => (v.operator.logLevel = 'trace'),
      path: '/operator/logLevel',
    },
    {
      name: 'a privileged metrics port',
      change: (v) => (v.operator.httpPort = 80),
      path: '/operator/httpPort',
    },
    {
      name: 'a runbook URL that is not http(s)',
      change: (v) => (v.prometheusRule.runbookBaseURL = 'docs/runbooks.md'),
      path: '/prometheusRule/runbookBaseURL',
    },
    {
      name: 'a PDB maxUnavailable that is neither a count nor a percentage',
      change: (v) => (v.podDisruptionBudget.maxUnavailable = 'half'),
      path: '/podDisruptionBudget/maxUnavailable',
    },
    {
      name: 'a non-string dashboard label value',
      change: (v) => (v.dashboards.labelValue = 1),
      path: '/dashboards/labelValue',
    },
    {
      name: 'an example SendingDomain without a domain',
      change: (v) => (v.examples.sendingDomain.spec = {}),
      path: '/examples/sendingDomain/spec',
    },
    { name: 'a malformed digest', change: (v) => (v.image.digest = 'latest'), path: '/image/digest' },
  ];
  for (const { name, change, path: errorPath } of wrong) {
    test(`rejects ${name}`, () => {
      const values = defaultValues();
      change(values);
      assert.equal(validateValues(values), false);
      const paths = (validateValues.errors ?? []).map((e) => e.instancePath);
      assert.ok(paths.includes(errorPath), `errors at ${paths.join(', ')}, expected ${errorPath}`);
    });
  }

  test('accepts every optional feature enabled', () => {
    const values = defaultValues();
    values.metrics.serviceMonitor.enabled = true;
    values.prometheusRule.enabled = true;
    values.examples.enabled = true;
    values.podDisruptionBudget.maxUnavailable = '50%';
    values.image.digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(validateValues(values), true, JSON.stringify(validateValues.errors, null, 2));
  });
});

describe('alerts and runbooks', () => {
  const alerts = loadAlerts();
  const runbooks = readFileSync(RUNBOOKS_FILE, 'utf8');
  const sections = [...runbooks.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1] ?? '');

  test("the issue's ten alerts, the certificate expiry alert (issue 17), the complaint-rate alert (issue 19) and the absorb alert (issue 15) are there", () => {
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      'MailfleetAbsorbJobFailing',
      'MailfleetBounceRateOverPolicy',
      'MailfleetCertificateExpiringSoon',
      'MailfleetComplaintRateOverPolicy',
      'MailfleetOldestMessageTooOld',
      'MailfleetOperatorNoLeader',
      'MailfleetOperatorReconcileErrors',
      'MailfleetQueueGrowing',
      'MailfleetRelayDown',
      'MailfleetRelayNotReady',
      'MailfleetSendingDomainSuspended',
      'MailfleetSmarthostDeliveriesFailing',
      'MailfleetSpoolDiskLow',
    ]);
  });

  for (const alert of alerts) {
    test(`${alert.alert} has a severity, a summary, a description and a runbook section`, () => {
      assert.ok(
        ['warning', 'critical'].includes(alert.labels?.severity ?? ''),
        `severity ${alert.labels?.severity}`,
      );
      assert.ok((alert.annotations?.summary ?? '').length > 10);
      assert.ok((alert.annotations?.description ?? '').length > 20);
      assert.ok(alert.for, 'a "for" duration, so one bad scrape does not page');
      // GitHub's anchor of "## MailfleetX" is "#mailfleetx".
      assert.equal(alert.annotations?.runbook_url, `${DEFAULT_RUNBOOK_BASE}#${alert.alert.toLowerCase()}`);
      assert.ok(sections.includes(alert.alert), `docs/runbooks.md has no "## ${alert.alert}" section`);
    });
  }

  test('every runbook section belongs to an alert', () => {
    assert.deepEqual(sections.sort(), alerts.map((a) => a.alert).sort());
  });

  test('every section says what the alert means and what to do', () => {
    const bodies = runbooks.split(/^## /m).slice(1);
    for (const body of bodies) {
      const title = body.split('\n')[0];
      assert.match(body, /\*\*Meaning\.\*\*/, `${title}: no Meaning`);
      assert.match(body, /\*\*What to do\.\*\*/, `${title}: no What to do`);
    }
  });
});

describe('RBAC', () => {
  const documented = path.join(REPO_ROOT, 'operator/deploy/rbac.yaml');
  test(
    "the chart's operator rules (its ClusterRole, or its Roles in namespaced mode) are those of operator/deploy/rbac.yaml",
    { skip: !existsSync(documented) && 'operator/deploy/rbac.yaml does not exist yet' },
    () => {
      const docs = parseAllDocuments(readFileSync(documented, 'utf8')).map(
        (d) => d.toJS() as Record<string, unknown>,
      );
      const clusterRole = docs.find((d) => d?.kind === 'ClusterRole');
      assert.ok(clusterRole, 'operator/deploy/rbac.yaml has a ClusterRole');
      const template = readFileSync(path.join(CHART_DIR, 'templates/rbac.yaml'), 'utf8');
      // The rules are defined once, as plain YAML (no template actions inside the define).
      const rulesTemplate = readFileSync(path.join(CHART_DIR, 'templates/_rbac-rules.tpl'), 'utf8');
      const rulesBlock =
        /\{\{- define "mailfleet.operatorRules" \}\}\n([\s\S]*?)\n\{\{- end \}\}/.exec(rulesTemplate)?.[1] ??
        '';
      const chartRules = parse(rulesBlock) as unknown[];
      assert.ok(chartRules.length > 5, 'the ClusterRole rules of templates/rbac.yaml were found');
      assert.deepEqual(normalizeRules(chartRules), normalizeRules(clusterRole.rules as unknown[]));
      const role = docs.find((d) => d?.kind === 'Role');
      assert.ok(role, 'operator/deploy/rbac.yaml has a leader-election Role');
      const roleBlock =
        /kind: Role\nmetadata:\n {2}name: \{\{ include "mailfleet.fullname" \. \}\}-leader-election\n[\s\S]*?\nrules:\n([\s\S]*?)\n---/.exec(
          template,
        )?.[1] ?? '';
      assert.deepEqual(
        normalizeRules(parse(roleBlock) as unknown[]),
        normalizeRules(role.rules as unknown[]),
      );
    },
  );
});

/** Rules as a sorted set of "group/resource verb" strings, so order and grouping do not matter. */
function normalizeRules(rules: unknown[]): string[] {
  const out = new Set<string>();
  for (const rule of rules as Array<Record<string, string[]>>) {
    for (const group of rule.apiGroups ?? [''])
      for (const resource of rule.resources ?? [])
        for (const verb of rule.verbs ?? []) out.add(`${group}/${resource} ${verb}`);
  }
  return [...out].sort();
}
