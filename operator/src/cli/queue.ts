// `mailfleet queue ...`: inspect and change the queues of a pool's relays from a workstation.
// Read (kubeconfig) -> decide (pure helpers below) -> call each relay through one RelayTransport.
// The relay token is read from the pool's admin-tokens Secret with the user's own credentials, so
// Kubernetes RBAC decides who may look (get on that Secret) and how the relays are reached.
import type { RelayReply } from './transport.ts';
import { connectToPool, parsePoolArgs, refusal, table, type Call, type Io, type PoolTarget } from './pool.ts';

export { refusal, relayPods, table, type Io, type Pod } from './pool.ts';

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

type Parsed = PoolTarget & {
  command: QueueCommand;
  id?: string;
  state?: string;
  limit: number;
  json: boolean;
};

/** Pure: the command line, or a usage error. */
export function parseQueueArgs(args: string[]): Parsed | { error: string } {
  const common = parsePoolArgs(args, ['state']);
  if ('error' in common) return common;
  const { positionals, values, ...target } = common;
  const [command, id, ...extra] = positionals;
  if (!COMMANDS.includes(command as QueueCommand)) return { error: `unknown command ${command ?? '(none)'}` };
  const needsId = command === 'show' || command === 'retry' || command === 'delete';
  if (needsId && (!id || !/^[A-Za-z0-9]+$/.test(id))) return { error: `${command} needs a message id` };
  if (!needsId && id !== undefined) return { error: `${command} takes no argument` };
  if (extra.length > 0) return { error: `unexpected ${extra.join(' ')}` };
  if (command === 'drain' && !target.pod) return { error: 'drain needs --pod (one relay at a time)' };
  const parsed: Parsed = { ...target, command: command as QueueCommand };
  if (id !== undefined) parsed.id = id;
  if (values.state !== undefined) parsed.state = values.state;
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
  const pool = await connectToPool(p, ROLE[p.command], `mailfleet queue`, p.command, io);
  if (!pool) return 1;
  try {
    return await run(p, pool.pods, pool.call, io, pool.secretName);
  } catch (error) {
    io.err(`mailfleet queue: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await pool.close();
  }
}

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
