// Reads the chart's single sources of alerts and dashboards, so the unit tests, promtool and the
// real-Prometheus tests all use exactly what the chart ships.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
export const CHART_DIR = path.join(REPO_ROOT, 'charts/mailfleet');
export const ALERTS_FILE = path.join(CHART_DIR, 'files/alerts.yaml');
export const DASHBOARDS_DIR = path.join(CHART_DIR, 'dashboards');
export const RUNBOOKS_FILE = path.join(REPO_ROOT, 'docs/runbooks.md');
/** The runbook base URL in files/alerts.yaml; the PrometheusRule template replaces it by the value. */
export const DEFAULT_RUNBOOK_BASE = 'https://github.com/mailfleet/mailfleet/blob/main/docs/runbooks.md';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

export function loadAlertGroups(): RuleGroup[] {
  const parsed = parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: RuleGroup[] };
  return parsed.groups;
}

export function loadAlerts(): AlertRule[] {
  return loadAlertGroups().flatMap((group) => group.rules);
}

/** A Grafana panel target: the PromQL expression and the panel it belongs to. */
export interface PanelQuery {
  dashboard: string;
  panel: string;
  expr: string;
}

export interface GrafanaPanel {
  id?: number;
  title?: string;
  type?: string;
  datasource?: unknown;
  targets?: Array<{ expr?: string; refId?: string; datasource?: unknown; legendFormat?: string }>;
  panels?: GrafanaPanel[];
  gridPos?: { x: number; y: number; w: number; h: number };
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query?: unknown; datasource?: unknown }> };
  panels: GrafanaPanel[];
}

export function loadDashboards(): Map<string, GrafanaDashboard> {
  const dashboards = new Map<string, GrafanaDashboard>();
  for (const file of readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    dashboards.set(
      file,
      JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8')) as GrafanaDashboard,
    );
  }
  return dashboards;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export function panelQueries(file: string, dashboard: GrafanaDashboard): PanelQuery[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      dashboard: file,
      panel: panel.title ?? `#${panel.id}`,
      expr: target.expr ?? '',
    })),
  );
}

/**
 * Substitutes Grafana's template variables the way Grafana does for "All" selections, so that a
 * dashboard query can be sent to Prometheus as it is: `$__rate_interval` and `$__interval` become
 * a fixed range, every `$var`/`${var}` becomes the given value (default `.*`, used with `=~`).
 */
export function expandVariables(expr: string, values: Record<string, string> = {}, range = '1m'): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range/g, range)
    .replace(
      /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g,
      (_match, braced: string | undefined, bare: string | undefined) => {
        const name = braced ?? bare ?? '';
        return values[name] ?? '.*';
      },
    );
}

/** Names of the metrics an expression reads (identifiers followed by `{`, `[` or a boundary, not functions). */
export function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  const names = new Set<string>();
  for (const match of withoutStrings.matchAll(/\b(mailfleet_[a-z0-9_]+|up)\b(?!\s*\()/g)) {
    names.add(match[1] ?? '');
  }
  return [...names].sort();
}
