// A real Prometheus (Debian's /usr/bin/prometheus) on loopback for the integration tests: static
// scrape targets, the chart's alerts as a plain rules file, and small clients for the HTTP API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../../dev/net.ts';
import { loadAlertGroups } from './chart-files.ts';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

export interface ScrapeJob {
  job: string;
  /** host:port of each target, all with the same labels. */
  targets: { address: string; labels?: Record<string, string> }[];
  honorLabels?: boolean;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  value: string;
}

export interface Prometheus {
  url: string;
  logs: string[];
  /** Instant query; throws on an API error (a bad expression). */
  query(expr: string): Promise<PromSample[]>;
  alerts(): Promise<PromAlert[]>;
  /** Targets' health as Prometheus sees it: scrape URL -> "up" | "down" | "unknown". */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

/**
 * The chart's alerts as a plain Prometheus rules file. `forOverride` replaces every rule's `for:`
 * (the shipped durations are minutes; a test cannot wait that long).
 */
export function renderRules(forOverride?: string): string {
  const groups = loadAlertGroups().map((group) => ({
    ...group,
    rules: group.rules.map((rule) => (forOverride === undefined ? rule : { ...rule, for: forOverride })),
  }));
  return stringify({ groups });
}

export async function startPrometheus(options: {
  jobs: ScrapeJob[];
  /** Rules file contents (see renderRules). */
  rules?: string;
  /** Scrape and rule evaluation interval (default 1s). */
  interval?: string;
}): Promise<Prometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mailfleet-prometheus-'));
  const interval = options.interval ?? '1s';
  const config: Record<string, unknown> = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    scrape_configs: options.jobs.map((job) => ({
      job_name: job.job,
      honor_labels: job.honorLabels ?? false,
      static_configs: job.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
    })),
  };
  if (options.rules !== undefined) {
    await writeFile(path.join(dir, 'rules.yaml'), options.rules);
    config.rule_files = [path.join(dir, 'rules.yaml')];
  }
  await writeFile(path.join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const logs: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    logs.push(...chunk.split('\n').filter(Boolean));
    if (process.env.PROMETHEUS_LOGS) process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited:\n${logs.slice(-20).join('\n')}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 30 s:\n${logs.slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const api = async <T>(apiPath: string): Promise<T> => {
    const response = await fetch(`${url}${apiPath}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${apiPath}: ${body.error ?? response.status}`);
    return body.data;
  };
  return {
    url,
    logs,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: PromSample[] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      return data.result;
    },
    alerts: async () => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    targets: async () =>
      (
        await api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>(
          '/api/v1/targets',
        )
      ).activeTargets,
    stop,
  };
}
