// A control plane with the CRDs and the operator's RBAC, and operator processes started as
// `mailfleet operator` with a ServiceAccount kubeconfig (never admin): what `npm start` runs, and
// the integration tests' harness (test/helpers/operator/harness.ts).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { startControlPlane, REPO_ROOT } from './controlplane/cluster.ts';
import { freePort } from './net.ts';
import type { ControlPlane } from './controlplane/cluster.ts';

export type OperatorProcess = {
  process: ChildProcess;
  metricsUrl: string;
  logs: string[];
  stop(): Promise<void>;
};

/** The operator container's node flags and NODE_OPTIONS from the chart's values (one source). */
const CHART_OPERATOR: { nodeFlags?: string[]; nodeOptions?: string } =
  parse(fs.readFileSync(path.join(REPO_ROOT, 'charts/mailfleet/values.yaml'), 'utf8')).operator ?? {};

/** Control plane with the CRDs and RBAC; `nodes` kwok nodes of 110 pods each (default 3). */
export async function startCluster(nodes = 3): Promise<ControlPlane> {
  const cp = await startControlPlane({ nodes });
  // The generated CRDs declare properties.metadata, which kube-apiserver rejects; strip it here
  // until the generator stops emitting it (reported to the API owner).
  for (const file of fs.readdirSync(path.join(REPO_ROOT, 'crds')).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(fs.readFileSync(path.join(REPO_ROOT, 'crds', file), 'utf8'));
    for (const v of crd.spec.versions) delete v.schema.openAPIV3Schema.properties.metadata;
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
  }
  await cp.kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await cp.kubectl(['create', 'namespace', 'mailfleet-system']);
  await cp.kubectl(['apply', '-f', path.join(REPO_ROOT, 'operator/deploy/rbac.yaml')]);
  return cp;
}

/** The operator's ServiceAccount kubeconfig for one operator identity. */
export function operatorKubeconfig(cp: ControlPlane, identity: string): Promise<string> {
  return cp.serviceAccountKubeconfig('mailfleet-system', 'mailfleet-operator', {
    path: path.join(path.dirname(cp.kubeconfig), `sa-${identity}.kubeconfig`),
  });
}

export async function startOperator(
  cp: ControlPlane,
  identity: string,
  extraArgs: string[] = [],
  options: { kubeconfig?: string } = {},
): Promise<OperatorProcess> {
  const kubeconfig = options.kubeconfig ?? (await operatorKubeconfig(cp, identity));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      // node's own flags as the chart's operator container passes them.
      ...(CHART_OPERATOR.nodeFlags ?? []),
      path.join(REPO_ROOT, 'bin/mailfleet.ts'),
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--http',
      `127.0.0.1:${port}`,
      '--lease-namespace',
      'mailfleet-system',
      '--identity',
      identity,
      '--image',
      'mailfleet:test',
      ...extraArgs,
    ],
    // NODE_OPTIONS as the chart sets them for the operator container (plus any a benchmark adds).
    {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: {
        ...process.env,
        NODE_OPTIONS: `${CHART_OPERATOR.nodeOptions ?? ''} ${process.env.MAILFLEET_OPERATOR_NODE_OPTIONS ?? ''}`,
      },
    },
  );
  const logs: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    logs.push(...chunk.split('\n').filter(Boolean));
    if (process.env.OPERATOR_LOGS) process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Started means answering /metrics: on a loaded machine loading the client takes seconds, and a
  // test that reads a standby's metrics must not race its start.
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await eventually(
    `operator ${identity} to listen`,
    async () => {
      if (child.exitCode !== null) throw new Error(`operator ${identity} exited: ${logs.join('\n')}`);
      return (await fetch(metricsUrl)).ok;
    },
    60_000,
  );
  return {
    process: child,
    metricsUrl,
    logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
