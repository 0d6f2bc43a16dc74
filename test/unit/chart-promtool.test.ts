// The chart's alert rules under promtool: `promtool check rules` (syntax, templates) and
// `promtool test rules` with synthetic series, one case per alert that must fire and cases that
// must not. Annotations are stripped for `test rules` only (promtool compares them verbatim); their
// templates are checked by `check rules`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import {
  ALERTS_FILE,
  expandVariables,
  loadAlertGroups,
  loadDashboards,
  panelQueries,
} from '../helpers/prometheus/chart-files.ts';

interface Series {
  series: string;
  values: string;
}
interface AlertCase {
  name: string;
  alert: string;
  series: Series[];
  /** When to evaluate, e.g. "30m". */
  at: string;
  /** The label sets expected to fire (severity and alertname are added); [] means must not fire. */
  fires: Array<Record<string, string>>;
}

const pool = { namespace: 'mail', pool: 'tx' };
const relay0 = { ...pool, pod: 'tx-0' };
const MiB = 1024 * 1024;
const labels = (name: string, set: Record<string, string>): string =>
  `${name}{${Object.entries(set)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

const cases: AlertCase[] = [
  {
    name: 'a domain bouncing 10% against a 5% policy fires; one bouncing 10% against 20% does not',
    alert: 'MailfleetBounceRateOverPolicy',
    series: [
      {
        series: labels('mailfleet_relay_recipients_bounced_total', {
          ...relay0,
          sending_domain: 'a.example',
          category: 'bad-mailbox',
        }),
        values: '0+6x60',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...relay0,
          sending_domain: 'a.example',
        }),
        values: '0+54x60',
      },
      {
        series: labels('mailfleet_operator_sending_domain_max_bounce_rate', {
          ...pool,
          sending_domain: 'a.example',
        }),
        values: '0.05x60',
      },
      {
        series: labels('mailfleet_relay_recipients_bounced_total', {
          ...relay0,
          sending_domain: 'b.example',
          category: 'policy',
        }),
        values: '0+6x60',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...relay0,
          sending_domain: 'b.example',
        }),
        values: '0+54x60',
      },
      {
        series: labels('mailfleet_operator_sending_domain_max_bounce_rate', {
          ...pool,
          sending_domain: 'b.example',
        }),
        values: '0.2x60',
      },
    ],
    at: '30m',
    fires: [{ ...pool, sending_domain: 'a.example' }],
  },
  {
    name: 'bounces summed over two relays: one relay at 20%, the other at 0%, pool at 10% over 5%',
    alert: 'MailfleetBounceRateOverPolicy',
    series: [
      {
        series: labels('mailfleet_relay_recipients_bounced_total', {
          ...relay0,
          sending_domain: 'a.example',
          category: 'other',
        }),
        values: '0+12x60',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...relay0,
          sending_domain: 'a.example',
        }),
        values: '0+48x60',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...pool,
          pod: 'tx-1',
          sending_domain: 'a.example',
        }),
        values: '0+60x60',
      },
      {
        series: labels('mailfleet_operator_sending_domain_max_bounce_rate', {
          ...pool,
          sending_domain: 'a.example',
        }),
        values: '0.05x60',
      },
    ],
    at: '30m',
    fires: [{ ...pool, sending_domain: 'a.example' }],
  },
  {
    name: 'a suspended domain fires',
    alert: 'MailfleetSendingDomainSuspended',
    series: [
      {
        series: labels('mailfleet_operator_sending_domain_suspended', {
          ...pool,
          sending_domain: 'a.example',
        }),
        values: '1x10',
      },
      {
        series: labels('mailfleet_operator_sending_domain_suspended', {
          ...pool,
          sending_domain: 'b.example',
        }),
        values: '0x10',
      },
    ],
    at: '5m',
    fires: [{ ...pool, sending_domain: 'a.example' }],
  },
  {
    name: 'complaints at 1% against the default 0.3% fire; 0.1% against 0.3% does not',
    alert: 'MailfleetComplaintRateOverPolicy',
    series: [
      {
        series: labels('mailfleet_operator_sending_domain_complaint_rate', {
          ...pool,
          sending_domain: 'a.example',
        }),
        values: '0.01x20',
      },
      {
        series: labels('mailfleet_operator_sending_domain_max_complaint_rate', {
          ...pool,
          sending_domain: 'a.example',
        }),
        values: '0.003x20',
      },
      {
        series: labels('mailfleet_operator_sending_domain_complaint_rate', {
          ...pool,
          sending_domain: 'b.example',
        }),
        values: '0.001x20',
      },
      {
        series: labels('mailfleet_operator_sending_domain_max_complaint_rate', {
          ...pool,
          sending_domain: 'b.example',
        }),
        values: '0.003x20',
      },
    ],
    at: '10m',
    fires: [{ ...pool, sending_domain: 'a.example' }],
  },
  {
    name: 'a queue growing for over 30 minutes fires',
    alert: 'MailfleetQueueGrowing',
    series: [
      {
        series: labels('mailfleet_relay_queue_jobs', {
          ...relay0,
          state: 'deferred',
          sending_domain: 'a.example',
        }),
        values: '0+10x90',
      },
    ],
    at: '75m',
    fires: [pool],
  },
  {
    name: 'a large but shrinking queue does not fire',
    alert: 'MailfleetQueueGrowing',
    series: [
      {
        series: labels('mailfleet_relay_queue_jobs', {
          ...relay0,
          state: 'deferred',
          sending_domain: 'a.example',
        }),
        values: '5000-10x90',
      },
    ],
    at: '75m',
    fires: [],
  },
  {
    name: 'a message older than 6 hours fires',
    alert: 'MailfleetOldestMessageTooOld',
    series: [
      { series: labels('mailfleet_relay_queue_oldest_message_age_seconds', relay0), values: '22000+60x30' },
    ],
    at: '20m',
    fires: [relay0],
  },
  {
    name: 'an unscraped relay fires; an unscraped operator (no pool label) does not',
    alert: 'MailfleetRelayDown',
    series: [
      { series: labels('up', { ...relay0, job: 'tx' }), values: '0x10' },
      {
        series: labels('up', { namespace: 'mailfleet-system', pod: 'op-0', job: 'mailfleet-metrics' }),
        values: '0x10',
      },
    ],
    at: '8m',
    fires: [{ ...relay0, job: 'tx' }],
  },
  {
    name: 'a relay not ready for 10 minutes fires',
    alert: 'MailfleetRelayNotReady',
    series: [
      { series: labels('mailfleet_relay_ready', relay0), values: '0x20' },
      { series: labels('mailfleet_relay_ready', { ...pool, pod: 'tx-1' }), values: '1x20' },
    ],
    at: '15m',
    fires: [relay0],
  },
  {
    name: 'a spool with 300 MiB free fires; one with 2 GiB free and steady does not',
    alert: 'MailfleetSpoolDiskLow',
    series: [
      { series: labels('mailfleet_relay_spool_free_bytes', relay0), values: `${300 * MiB}x10` },
      {
        series: labels('mailfleet_relay_spool_free_bytes', { ...pool, pod: 'tx-1' }),
        values: `${2048 * MiB}x10`,
      },
    ],
    at: '8m',
    fires: [relay0],
  },
  {
    name: 'a spool with 2 GiB free losing 10 MiB a minute fires before it is low',
    alert: 'MailfleetSpoolDiskLow',
    series: [
      { series: labels('mailfleet_relay_spool_free_bytes', relay0), values: `${2048 * MiB}-${10 * MiB}x60` },
    ],
    at: '45m',
    fires: [relay0],
  },
  {
    name: 'a relay with 10 minutes of history does not fire on a steep prediction (noise on a big disk)',
    alert: 'MailfleetSpoolDiskLow',
    series: [
      {
        series: labels('mailfleet_relay_spool_free_bytes', relay0),
        values: `${80 * 1024 * MiB}-${1024 * MiB}x10`,
      },
    ],
    at: '10m',
    fires: [],
  },
  {
    name: 'a pool whose deliveries are all deferred fires',
    alert: 'MailfleetSmarthostDeliveriesFailing',
    series: [
      {
        series: labels('mailfleet_relay_recipients_deferred_total', {
          ...relay0,
          sending_domain: 'a.example',
        }),
        values: '0+5x40',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...relay0,
          sending_domain: 'a.example',
          destination: 'smarthost',
        }),
        values: '7x40',
      },
    ],
    at: '30m',
    fires: [pool],
  },
  {
    name: 'a pool with some deferrals but also deliveries does not fire',
    alert: 'MailfleetSmarthostDeliveriesFailing',
    series: [
      {
        series: labels('mailfleet_relay_recipients_deferred_total', {
          ...relay0,
          sending_domain: 'a.example',
        }),
        values: '0+5x40',
      },
      {
        series: labels('mailfleet_relay_recipients_delivered_total', {
          ...relay0,
          sending_domain: 'a.example',
          destination: 'smarthost',
        }),
        values: '0+1x40',
      },
    ],
    at: '30m',
    fires: [],
  },
  {
    name: 'reconcile errors for 15 minutes fire, by code',
    alert: 'MailfleetOperatorReconcileErrors',
    series: [
      {
        series: labels('mailfleet_operator_errors_total', {
          namespace: 'mailfleet-system',
          pod: 'op-0',
          code: 'Forbidden',
        }),
        values: '0+2x40',
      },
    ],
    at: '30m',
    fires: [{ namespace: 'mailfleet-system', code: 'Forbidden' }],
  },
  {
    name: 'a claim whose absorb Jobs failed and is still not absorbed fires; a claim being absorbed with no failure does not',
    alert: 'MailfleetAbsorbJobFailing',
    series: [
      {
        series: labels('mailfleet_operator_absorb_failures', {
          namespace: 'mail',
          pool: 'sts',
          claim: 'spool-sts-2',
          pod: 'op-0',
        }),
        values: '0x5 1x10 2x30',
      },
      {
        series: labels('mailfleet_operator_absorb_failures', {
          namespace: 'mail',
          pool: 'sts',
          claim: 'spool-sts-3',
          pod: 'op-0',
        }),
        values: '0x45',
      },
    ],
    at: '40m',
    fires: [{ namespace: 'mail', pool: 'sts', claim: 'spool-sts-2' }],
  },
  {
    name: 'a certificate three days from expiry fires; one sixty days away does not',
    alert: 'MailfleetCertificateExpiringSoon',
    series: [
      {
        series: labels('mailfleet_operator_tls_certificate_expiry_timestamp_seconds', pool),
        values: `${3 * 86400}x200`,
      },
      {
        series: labels('mailfleet_operator_tls_certificate_expiry_timestamp_seconds', {
          namespace: 'mail',
          pool: 'fresh',
        }),
        values: `${60 * 86400}x200`,
      },
    ],
    at: '2h',
    fires: [pool],
  },
  {
    name: 'two operators that both stand by fire',
    alert: 'MailfleetOperatorNoLeader',
    series: [
      { series: labels('mailfleet_operator_leader', { pod: 'op-0' }), values: '0x10' },
      { series: labels('mailfleet_operator_leader', { pod: 'op-1' }), values: '0x10' },
    ],
    at: '8m',
    fires: [{}],
  },
  {
    name: 'no operator scraped at all fires',
    alert: 'MailfleetOperatorNoLeader',
    series: [{ series: labels('up', { job: 'something-else' }), values: '1x10' }],
    at: '8m',
    fires: [{}],
  },
  {
    name: 'one leader does not fire',
    alert: 'MailfleetOperatorNoLeader',
    series: [
      { series: labels('mailfleet_operator_leader', { pod: 'op-0' }), values: '1x10' },
      { series: labels('mailfleet_operator_leader', { pod: 'op-1' }), values: '0x10' },
    ],
    at: '8m',
    fires: [],
  },
];

function runPromtool(args: string[]): { code: number | null; output: string } {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('alerts under promtool', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-promtool-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('promtool check rules accepts files/alerts.yaml', () => {
    const { code, output } = runPromtool(['check', 'rules', ALERTS_FILE]);
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS: 13 rules found/);
  });

  test('every dashboard query is valid PromQL (promtool check rules on them as recording rules)', () => {
    const queries = [...loadDashboards()].flatMap(([file, dashboard]) => panelQueries(file, dashboard));
    assert.ok(queries.length > 30, `${queries.length} queries`);
    const file = path.join(dir, 'dashboard-queries.yaml');
    writeFileSync(
      file,
      stringify({
        groups: [
          {
            name: 'dashboards',
            rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: expandVariables(q.expr) })),
          },
        ],
      }),
    );
    const { code, output } = runPromtool(['check', 'rules', file]);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`SUCCESS: ${queries.length} rules found`));
  });

  test('every alert has at least one firing case below', () => {
    const alerts = loadAlertGroups().flatMap((g) => g.rules.map((r) => r.alert));
    const covered = new Set(cases.filter((c) => c.fires.length > 0).map((c) => c.alert));
    assert.deepEqual(
      alerts.filter((a) => !covered.has(a)),
      [],
    );
  });

  const rulesFile = path.join(dir, 'alerts-without-annotations.yaml');
  const groups = loadAlertGroups();
  writeFileSync(
    rulesFile,
    stringify({
      groups: groups.map((g) => ({
        name: g.name,
        rules: g.rules.map(({ annotations: _a, ...rule }) => rule),
      })),
    }),
  );
  const severity = new Map(
    groups.flatMap((g) => g.rules.map((r) => [r.alert, r.labels?.severity ?? ''] as const)),
  );

  for (const [index, c] of cases.entries()) {
    test(`${c.alert}: ${c.name}`, () => {
      const testFile = path.join(dir, `case-${index}.yaml`);
      writeFileSync(
        testFile,
        stringify({
          rule_files: [rulesFile],
          evaluation_interval: '1m',
          tests: [
            {
              interval: '1m',
              input_series: c.series,
              alert_rule_test: [
                {
                  eval_time: c.at,
                  alertname: c.alert,
                  exp_alerts: c.fires.map((set) => ({
                    exp_labels: { ...set, severity: severity.get(c.alert) },
                  })),
                },
              ],
            },
          ],
        }),
      );
      const { code, output } = runPromtool(['test', 'rules', testFile]);
      assert.equal(code, 0, output);
    });
  }
});
