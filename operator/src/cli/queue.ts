// `mailfleet queue ...`: inspect and change the queues of a pool's relays from a workstation.
// Read (kubeconfig) -> decide (pure helpers below) -> call each relay through one RelayTransport.
// The relay token is read from the pool's admin-tokens Secret with the user's own credentials, so
// Kubernetes RBAC decides who may look (get on that Secret) and how the relays are reached.
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

export const USAGE = `usage: mailfleet queue <command> --pool <pool> [options]

commands:
  summary                  queued messages and jobs per relay
  list                     queued messages of every relay (--state, --limit)
  show <id>                one message: envelope, recipients, attempts, last replies
  retry <id>               deliver the message's deferred jobs now            (admin token)
  delete <id>              remove the message from queue and spool, no DSN    (admin token)
  drain --pod <pod>        stop the relay: refuse new mail, hand off, exit    (admin token)

options:
  --pool <name>            the RelayPool (required)
  -n, --namespace <ns>     default: the kubeconfig context's namespace, else default
  --pod <name>             only this relay pod
  --state <s>              list: ready, waiting, deferred or inflight
  --limit <n>              list: at most n messages per relay (default 100)
  -o, --output <fmt>       table (default) or json
  --via <how>              proxy (API server pod proxy, default) or port-forward (kubectl)
  --targets <file>         JSON {"namespace/pod": "http://host:port"}: relays reached directly
  --kubeconfig <file>      default: $KUBECONFIG, else ~/.kube/config
`;

export type QueueCommand = 'summary' | 'list' | 'show' | 'retry' | 'delete' | 'drain';
const COMMANDS: readonly QueueCommand[] = ['summary', 'list', 'show', 'retry', 'delete', 'drain'];

/** The token role each command needs: the relay refuses a read token on the others (403). */
export const ROLE: Record<QueueCommand, 'read' | 'admin'> = {
  summary: 'read',
  list: 'read',
  show: 'read',
  retry: 'admin',
  delete: 'admin',
  drain: 'admin',
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

type ListedJob = { destination: string; state: string; attempts: number };
export type ListedMessage = {
  id: string;
  from: string;
  recipients: number;
  ageSeconds: number;
  jobs: ListedJob[];
};

export function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
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

/** Pure: the `queue list` table. */
export function listTable(byPod: { pod: string; messages: ListedMessage[] }[]): string {
  const rows = [['POD', 'ID', 'AGE', 'FROM', 'RCPT', 'STATE', 'ATTEMPTS']];
  for (const { pod, messages } of byPod)
    for (const m of messages)
      rows.push([
        pod,
        m.id,
        age(m.ageSeconds),
        m.from || '<>',
        String(m.recipients),
        [...new Set(m.jobs.map((j) => j.state))].join(','),
        String(Math.max(0, ...m.jobs.map((j) => j.attempts))),
      ]);
  return table(rows);
}

type Summary = { messages: number; jobs: Record<string, number>; oldestAgeSeconds: number };

/** Pure: the `queue summary` table. */
export function summaryTable(byPod: { pod: string; summary: Summary }[]): string {
  const rows = [['POD', 'MESSAGES', 'READY', 'WAITING', 'DEFERRED', 'INFLIGHT', 'OLDEST']];
  for (const { pod, summary: s } of byPod)
    rows.push([
      pod,
      String(s.messages),
      ...['ready', 'waiting', 'deferred', 'inflight'].map((k) => String(s.jobs[k] ?? 0)),
      age(s.oldestAgeSeconds),
    ]);
  return table(rows);
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

export type Io = { out: (text: string) => void; err: (text: string) => void };

type Parsed = {
  command: QueueCommand;
  id?: string;
  pool: string;
  namespace?: string;
  pod?: string;
  state?: string;
  limit: number;
  json: boolean;
  via: 'proxy' | 'port-forward';
  targets?: string;
  kubeconfig?: string;
};

/** Pure: the command line, or a usage error. */
export function parseQueueArgs(args: string[]): Parsed | { error: string } {
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
        state: { type: 'string' },
        limit: { type: 'string' },
        output: { type: 'string', short: 'o' },
        via: { type: 'string' },
        targets: { type: 'string' },
        kubeconfig: { type: 'string' },
      },
    }) as { values: Record<string, string | undefined>; positionals: string[] });
  } catch (error) {
    return { error: (error as Error).message };
  }
  const [command, id, ...extra] = positionals;
  if (!COMMANDS.includes(command as QueueCommand)) return { error: `unknown command ${command ?? '(none)'}` };
  const needsId = command === 'show' || command === 'retry' || command === 'delete';
  if (needsId && (!id || !/^[A-Za-z0-9]+$/.test(id))) return { error: `${command} needs a message id` };
  if (!needsId && id !== undefined) return { error: `${command} takes no argument` };
  if (extra.length > 0) return { error: `unexpected ${extra.join(' ')}` };
  if (!values.pool) return { error: '--pool is required' };
  if (command === 'drain' && !values.pod) return { error: 'drain needs --pod (one relay at a time)' };
  const via = values.via ?? 'proxy';
  if (via !== 'proxy' && via !== 'port-forward') return { error: '--via is proxy or port-forward' };
  const output = values.output ?? 'table';
  if (output !== 'table' && output !== 'json') return { error: '--output is table or json' };
  const limit = Number(values.limit ?? 100);
  if (!Number.isInteger(limit) || limit < 1) return { error: '--limit must be a positive integer' };
  const parsed: Parsed = {
    command: command as QueueCommand,
    pool: values.pool,
    limit,
    json: output === 'json',
    via,
  };
  if (id !== undefined) parsed.id = id;
  for (const key of ['namespace', 'pod', 'state', 'targets', 'kubeconfig'] as const)
    if (values[key] !== undefined) parsed[key] = values[key];
  return parsed;
}

/** Runs one command; returns the exit code (0 done, 1 refused or not found, 2 usage). */
export async function queueMain(args: string[], io: Io): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    io.out(USAGE);
    return 0;
  }
  const p = parseQueueArgs(args);
  if ('error' in p) {
    io.err(`mailfleet queue: ${p.error}\n${USAGE}`);
    return 2;
  }
  const KubeConfigClass = await loadKubeConfigClass();
  const kc: KubeConfig = new KubeConfigClass();
  if (p.kubeconfig) kc.loadFromFile(p.kubeconfig);
  else kc.loadFromDefault();
  const namespace = p.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const client = new KubeClient(kc);
  const secretName = names.adminTokens(p.pool);
  const role = ROLE[p.command];

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
      `mailfleet queue: ${(error as Error).message}${forbidden ? `\n(your RBAC: ${p.command} needs get on secrets/${secretName} and list on pods in ${namespace})` : ''}\n`,
    );
    return 1;
  }
  if (pods.length === 0) {
    io.err(
      `mailfleet queue: no running relay pod of pool ${namespace}/${p.pool}${p.pod ? ` named ${p.pod}` : ''}\n`,
    );
    return 1;
  }

  const transport: RelayTransport = p.targets
    ? targetsTransport(p.targets)
    : p.via === 'port-forward'
      ? portForwardTransport(p.kubeconfig ? ['--kubeconfig', p.kubeconfig] : [])
      : podProxyTransport(client);
  const call = (pod: string, method: 'GET' | 'POST' | 'DELETE', path: string) =>
    transport.request({ namespace, pod, method, path, token });
  try {
    return await run(p, pods, call, io, secretName);
  } catch (error) {
    io.err(`mailfleet queue: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await transport.close();
  }
}

type Call = (pod: string, method: 'GET' | 'POST' | 'DELETE', path: string) => Promise<RelayReply>;

async function run(p: Parsed, pods: string[], call: Call, io: Io, secret: string): Promise<number> {
  const ok = (r: RelayReply) => r.status >= 200 && r.status < 300;
  let failed = false;
  switch (p.command) {
    case 'summary':
    case 'list': {
      const query = new URLSearchParams({ limit: String(p.limit), ...(p.state ? { state: p.state } : {}) });
      const path = p.command === 'summary' ? '/api/queue' : `/api/messages?${query}`;
      const results: { pod: string; body: unknown }[] = [];
      for (const pod of pods) {
        const reply = await call(pod, 'GET', path);
        if (!ok(reply)) {
          io.err(`${refusal(pod, reply, secret)}\n`);
          failed = true;
          continue;
        }
        results.push({ pod, body: JSON.parse(reply.text) });
      }
      if (p.json) io.out(`${JSON.stringify(results, null, 2)}\n`);
      else if (p.command === 'summary')
        io.out(summaryTable(results.map((r) => ({ pod: r.pod, summary: r.body as Summary }))));
      else
        io.out(
          listTable(
            results.map((r) => ({
              pod: r.pod,
              messages: (r.body as { messages: ListedMessage[] }).messages,
            })),
          ),
        );
      return failed ? 1 : 0;
    }
    case 'drain': {
      const pod = pods[0] ?? '';
      const reply = await call(pod, 'POST', '/drain');
      if (!ok(reply)) {
        io.err(`${refusal(pod, reply, secret)}\n`);
        return 1;
      }
      io.out(`${pod}: draining (new mail refused, queue handed off or kept, then the relay exits)\n`);
      return 0;
    }
    case 'show':
    case 'retry':
    case 'delete': {
      // A message lives on exactly one relay; ask each until one knows it.
      const id = p.id ?? '';
      const [method, path] =
        p.command === 'show'
          ? (['GET', `/api/messages/${id}`] as const)
          : p.command === 'retry'
            ? (['POST', `/api/messages/${id}/retry`] as const)
            : (['DELETE', `/api/messages/${id}`] as const);
      for (const pod of pods) {
        const reply = await call(pod, method, path);
        if (reply.status === 404) continue;
        if (!ok(reply)) {
          io.err(`${refusal(pod, reply, secret)}\n`);
          return 1;
        }
        if (p.command === 'show')
          io.out(
            p.json ? `${reply.text}\n` : `pod: ${pod}\n${JSON.stringify(JSON.parse(reply.text), null, 2)}\n`,
          );
        else io.out(`${pod}: ${id} ${p.command === 'retry' ? 'retry scheduled' : 'deleted (no DSN sent)'}\n`);
        return 0;
      }
      io.err(`mailfleet queue: message ${id} is on no relay of the pool (delivered, expired or deleted?)\n`);
      return 1;
    }
  }
}
