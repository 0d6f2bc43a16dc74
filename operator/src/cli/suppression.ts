// `mailfleet suppression ...`: the pool's suppression list from a workstation. Changes go to every
// running relay of the pool (each keeps a durable copy; with spec.sharedState they also share it
// through the store, and a change applied twice is the same change); reads merge what the relays
// answer, one line per scope and address.
import { readFile } from 'node:fs/promises';
import { connectToPool, parsePoolArgs, refusal, table, type Call, type Io, type PoolTarget } from './pool.ts';

export const USAGE = `usage: mailfleet suppression <command> --pool <pool> [options]

commands:
  list                     suppressed recipients (--address, --scope, --reason, --limit)
  add <address>            suppress a recipient (--scope, --reason, --expires)      (admin token)
  remove <address>         take a recipient off the list (--scope)                  (admin token)
  import <file>            add every line of file (- for stdin): CSV
                           address[,scope[,reason[,expiresAt]]] or JSON lines         (admin token)
  export                   every entry as JSON lines (the format import reads back)

options:
  --pool <name>            the RelayPool (required)
  -n, --namespace <ns>     default: the kubeconfig context's namespace, else default
  --pod <name>             only this relay pod
  --address <a>            list: this address only
  --scope <s>              a sending domain, or * (default): every sending domain of the pool
  --reason <r>             manual (default for add), hard-bounce or complaint
  --expires <time>         add: RFC 3339 time after which the entry no longer applies
  --limit <n>              list: at most n entries per relay (default 100)
  -o, --output <fmt>       table (default) or json
  --via <how>              proxy (API server pod proxy, default) or port-forward (kubectl)
  --targets <file>         JSON {"namespace/pod": "http://host:port"}: relays reached directly
  --kubeconfig <file>      default: $KUBECONFIG, else ~/.kube/config
`;

export type SuppressionCommand = 'list' | 'add' | 'remove' | 'import' | 'export';
const COMMANDS: readonly SuppressionCommand[] = ['list', 'add', 'remove', 'import', 'export'];

export const ROLE: Record<SuppressionCommand, 'read' | 'admin'> = {
  list: 'read',
  export: 'read',
  add: 'admin',
  remove: 'admin',
  import: 'admin',
};

type Parsed = PoolTarget & {
  command: SuppressionCommand;
  /** add/remove: the address; import: the file. */
  argument?: string;
  address?: string;
  scope?: string;
  reason?: string;
  expires?: string;
  limit: number;
  json: boolean;
};

/** Pure: the command line, or a usage error. */
export function parseSuppressionArgs(args: string[]): Parsed | { error: string } {
  const common = parsePoolArgs(args, ['address', 'scope', 'reason', 'expires']);
  if ('error' in common) return common;
  const { positionals, values, ...target } = common;
  const [command, argument, ...extra] = positionals;
  if (!COMMANDS.includes(command as SuppressionCommand))
    return { error: `unknown command ${command ?? '(none)'}` };
  const needs = { add: 'an address', remove: 'an address', import: 'a file (- for stdin)' } as const;
  const needed = needs[command as keyof typeof needs];
  if (needed && !argument) return { error: `${command} needs ${needed}` };
  if (!needed && argument !== undefined) return { error: `${command} takes no argument` };
  if (extra.length > 0) return { error: `unexpected ${extra.join(' ')}` };
  if (values.reason !== undefined && !['manual', 'hard-bounce', 'complaint'].includes(values.reason))
    return { error: '--reason is manual, hard-bounce or complaint' };
  if (values.expires !== undefined && Number.isNaN(Date.parse(values.expires)))
    return { error: '--expires is an RFC 3339 time, e.g. 2027-01-31T00:00:00Z' };
  const parsed: Parsed = { ...target, command: command as SuppressionCommand };
  if (argument !== undefined) parsed.argument = argument;
  for (const key of ['address', 'scope', 'reason', 'expires'] as const)
    if (values[key] !== undefined) parsed[key] = values[key];
  return parsed;
}

export type ListedEntry = {
  address: string;
  scope: string;
  reason: string;
  source: string;
  messageId: string;
  addedAt: string;
  expiresAt: string | null;
};

/** Pure: the relays' entries as one list: one per scope and address, the earliest addition kept. */
export function mergeEntries(byPod: ListedEntry[][]): ListedEntry[] {
  const merged = new Map<string, ListedEntry>();
  for (const entries of byPod)
    for (const e of entries) {
      const key = `${e.scope}\n${e.address}`;
      const seen = merged.get(key);
      if (!seen || e.addedAt < seen.addedAt) merged.set(key, e);
    }
  return [...merged.values()];
}

/** Pure: the `suppression list` table. */
export function entriesTable(entries: ListedEntry[]): string {
  return table([
    ['ADDRESS', 'SCOPE', 'REASON', 'SOURCE', 'ADDED', 'EXPIRES'],
    ...entries.map((e) => [e.address, e.scope, e.reason, e.source, e.addedAt, e.expiresAt ?? 'never']),
  ]);
}

/** Pure: the relay API path and query of a read command. */
export function listPath(p: Parsed): string {
  const query = new URLSearchParams({ limit: String(p.limit) });
  for (const key of ['address', 'scope', 'reason'] as const) if (p[key]) query.set(key, p[key]);
  return `/api/suppressions?${query}`;
}

/** Runs one command; returns the exit code (0 done, 1 refused or not found, 2 usage). */
export async function suppressionMain(args: string[], io: Io, stdin: () => Promise<string>): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    io.out(USAGE);
    return 0;
  }
  const p = parseSuppressionArgs(args);
  if ('error' in p) {
    io.err(`mailfleet suppression: ${p.error}\n${USAGE}`);
    return 2;
  }
  let body: string | undefined;
  if (p.command === 'import') {
    try {
      body = p.argument === '-' ? await stdin() : await readFile(p.argument ?? '', 'utf8');
    } catch (error) {
      io.err(`mailfleet suppression: ${(error as Error).message}\n`);
      return 1;
    }
  }
  const pool = await connectToPool(p, ROLE[p.command], 'mailfleet suppression', p.command, io);
  if (!pool) return 1;
  try {
    return await run(p, pool.pods, pool.call, io, pool.secretName, body);
  } catch (error) {
    io.err(`mailfleet suppression: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await pool.close();
  }
}

async function run(
  p: Parsed,
  pods: string[],
  call: Call,
  io: Io,
  secret: string,
  importBody: string | undefined,
): Promise<number> {
  const ok = (status: number) => status >= 200 && status < 300;
  let failed = false;
  const each = async (method: 'GET' | 'POST' | 'DELETE', path: string, body?: string) => {
    const answers: { pod: string; status: number; text: string }[] = [];
    for (const pod of pods) {
      const reply = await call(pod, method, path, body);
      answers.push({ pod, ...reply });
      if (!ok(reply.status) && reply.status !== 404) {
        io.err(`${refusal(pod, reply, secret)}\n`);
        failed = true;
      }
    }
    return answers;
  };
  switch (p.command) {
    case 'list': {
      const answers = await each('GET', listPath(p));
      const entries = mergeEntries(
        answers
          .filter((a) => ok(a.status))
          .map((a) => (JSON.parse(a.text) as { entries: ListedEntry[] }).entries),
      );
      io.out(p.json ? `${JSON.stringify(entries, null, 2)}\n` : entriesTable(entries));
      break;
    }
    case 'export': {
      const answers = await each('GET', '/api/suppressions/export');
      const lines = answers
        .filter((a) => ok(a.status))
        .map((a) =>
          a.text
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as ListedEntry),
        );
      for (const e of mergeEntries(lines)) io.out(`${JSON.stringify(e)}\n`);
      break;
    }
    case 'add': {
      const entry = {
        address: p.argument,
        scope: p.scope ?? '*',
        reason: p.reason ?? 'manual',
        ...(p.expires ? { expiresAt: p.expires } : {}),
      };
      const answers = await each('POST', '/api/suppressions', JSON.stringify(entry));
      for (const a of answers.filter((x) => ok(x.status)))
        io.out(`${a.pod}: ${p.argument} suppressed (scope ${entry.scope})\n`);
      break;
    }
    case 'remove': {
      const query = new URLSearchParams({ address: p.argument ?? '', scope: p.scope ?? '*' });
      const answers = await each('DELETE', `/api/suppressions?${query}`);
      const removed = answers.filter((a) => ok(a.status));
      for (const a of removed) io.out(`${a.pod}: ${p.argument} removed (scope ${p.scope ?? '*'})\n`);
      if (removed.length === 0 && !failed) {
        io.err(`mailfleet suppression: ${p.argument} (scope ${p.scope ?? '*'}) is on no relay's list\n`);
        failed = true;
      }
      break;
    }
    case 'import': {
      const answers = await each('POST', '/api/suppressions/import', importBody);
      for (const a of answers.filter((x) => ok(x.status))) {
        const r = JSON.parse(a.text) as {
          added: number;
          invalid: number;
          errors: { line: number; error: string }[];
        };
        io.out(`${a.pod}: ${r.added} added, ${r.invalid} invalid\n`);
        for (const e of r.errors) io.err(`  line ${e.line}: ${e.error}\n`);
      }
      break;
    }
  }
  return failed ? 1 : 0;
}
