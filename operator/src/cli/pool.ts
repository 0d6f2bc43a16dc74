// What every pool command of the CLI shares: find the pool's running relay pods, read the relay
// token of the role needed from the pool's admin-tokens Secret with the user's own credentials (so
// Kubernetes RBAC decides), and call the relays through one RelayTransport.
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../kube/client.ts';
import { loadKubeConfigClass } from '../kube/kubeconfig.ts';
import { OperatorError } from '../errors.ts';
import { POOL_LABEL, names } from '../desired/meta.ts';
import {
  podProxyTransport,
  portForwardTransport,
  targetsTransport,
  type RelayReply,
  type RelayTransport,
} from './transport.ts';

export type Io = { out: (text: string) => void; err: (text: string) => void };

/** Calls one relay's management API; `body` is sent as text. */
export type Call = (
  pod: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: string,
) => Promise<RelayReply>;

/** Where the pool is and how to reach it (the common options of every pool command). */
export type PoolTarget = {
  pool: string;
  namespace?: string;
  pod?: string;
  via: 'proxy' | 'port-forward';
  targets?: string;
  kubeconfig?: string;
};

/** The options every pool command takes, with what they parse to. */
export type PoolArgs = PoolTarget & {
  json: boolean;
  limit: number;
  positionals: string[];
  /** The command's own options (named in `own`), as given. */
  values: Record<string, string | undefined>;
};

/**
 * Pure: the common options of a pool command (--pool, -n, --pod, -o, --limit, --via, --targets,
 * --kubeconfig) plus the command's own string options `own`, or a usage error.
 */
export function parsePoolArgs(args: string[], own: readonly string[]): PoolArgs | { error: string } {
  let values: Record<string, string | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        pool: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        pod: { type: 'string' },
        limit: { type: 'string' },
        output: { type: 'string', short: 'o' },
        via: { type: 'string' },
        targets: { type: 'string' },
        kubeconfig: { type: 'string' },
        ...Object.fromEntries(own.map((name) => [name, { type: 'string' as const }])),
      },
    }) as { values: Record<string, string | undefined>; positionals: string[] });
  } catch (error) {
    return { error: (error as Error).message };
  }
  if (!values.pool) return { error: '--pool is required' };
  const via = values.via ?? 'proxy';
  if (via !== 'proxy' && via !== 'port-forward') return { error: '--via is proxy or port-forward' };
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') return { error: '--output is table or json' };
  const limit = Number(values.limit ?? 100);
  if (!Number.isInteger(limit) || limit < 1) return { error: '--limit must be a positive integer' };
  const parsed: PoolArgs = { pool: values.pool, via, json: output === 'json', limit, positionals, values };
  for (const key of ['namespace', 'pod', 'targets', 'kubeconfig'] as const)
    if (values[key] !== undefined) parsed[key] = values[key];
  return parsed;
}

export type PoolConnection = {
  namespace: string;
  pods: string[];
  /** The Secret the token came from (named in refusals). */
  secretName: string;
  call: Call;
  close(): Promise<void>;
};

export type Pod = {
  metadata?: { name?: string; deletionTimestamp?: string };
  status?: { phase?: string };
};

/** Pure: the pods to ask, by name: running ones (a draining relay is not Ready but still holds mail). */
export function relayPods(pods: Pod[], only?: string): string[] {
  return pods
    .filter((p) => p.status?.phase === 'Running')
    .map((p) => p.metadata?.name ?? '')
    .filter((name) => name !== '' && (only === undefined || name === only))
    .sort();
}

/** Pure: aligned columns, header first. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows
      .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '))
      .join('\n') + '\n'
  );
}

/** Pure: what to tell the user about a reply that is not a success. */
export function refusal(pod: string, reply: RelayReply, secret: string): string {
  let error = reply.text.trim();
  try {
    error = (JSON.parse(reply.text) as { error?: string; message?: string }).error ?? error;
  } catch {
    // not JSON (the API server's own answer): keep the text
  }
  const hint: Record<number, string> = {
    401: ` (the token in Secret ${secret} was refused: if it was just rotated, the relay reads the new one once the kubelet has updated the file)`,
    403: ' (a read token cannot change the queue)',
    429: ' (too many failed attempts from this address; wait and retry)',
  };
  return `${pod}: ${reply.status} ${error}${hint[reply.status] ?? ''}`;
}

/**
 * Reads the token and the pods; undefined (after telling the user why) if either is missing.
 * `program` and `command` name what runs, for messages.
 */
export async function connectToPool(
  p: PoolTarget,
  role: 'read' | 'admin',
  program: string,
  command: string,
  io: Io,
): Promise<PoolConnection | undefined> {
  const KubeConfigClass = await loadKubeConfigClass();
  const kc: KubeConfig = new KubeConfigClass();
  if (p.kubeconfig) kc.loadFromFile(p.kubeconfig);
  else kc.loadFromDefault();
  const namespace = p.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const client = new KubeClient(kc);
  const secretName = names.adminTokens(p.pool);

  let token: string;
  let pods: string[];
  try {
    const secret = await client.request<{ data?: Record<string, string> }>(
      'GET',
      `/api/v1/namespaces/${namespace}/secrets/${secretName}`,
      { verb: 'get' },
    );
    token = Buffer.from(secret.data?.[role] ?? '', 'base64')
      .toString('utf8')
      .trim();
    if (!token) throw new Error(`Secret ${namespace}/${secretName} has no ${role} key`);
    const list = await client.request<{ items: Pod[] }>('GET', `/api/v1/namespaces/${namespace}/pods`, {
      verb: 'list',
      query: { labelSelector: `${POOL_LABEL}=${p.pool}` },
    });
    pods = relayPods(list.items, p.pod);
  } catch (error) {
    const forbidden = error instanceof OperatorError && error.status === 403;
    io.err(
      `${program}: ${(error as Error).message}${forbidden ? `\n(your RBAC: ${command} needs get on secrets/${secretName} and list on pods in ${namespace})` : ''}\n`,
    );
    return undefined;
  }
  if (pods.length === 0) {
    io.err(
      `${program}: no running relay pod of pool ${namespace}/${p.pool}${p.pod ? ` named ${p.pod}` : ''}\n`,
    );
    return undefined;
  }

  const transport: RelayTransport = p.targets
    ? targetsTransport(p.targets)
    : p.via === 'port-forward'
      ? portForwardTransport(p.kubeconfig ? ['--kubeconfig', p.kubeconfig] : [])
      : podProxyTransport(client);
  return {
    namespace,
    pods,
    secretName,
    call: (pod, method, path, body) =>
      transport.request({ namespace, pod, method, path, token, ...(body === undefined ? {} : { body }) }),
    close: () => transport.close(),
  };
}
