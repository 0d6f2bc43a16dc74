// The suppression list on the management port: list, add, remove (admin), import (admin, JSON
// lines or CSV streamed in) and export (JSON lines streamed out). Mounted by admin/http.ts.
import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import type { Reply, Route } from '../admin/http.ts';
import {
  POOL_SCOPE,
  entryFrom,
  entryView,
  normalizeAddress,
  parseImportLine,
  type EntryInput,
  type SuppressionEntry,
} from './entry.ts';
import type { SuppressionList } from './list.ts';

export interface SuppressionApiDeps {
  list: SuppressionList;
  now: () => number;
}

/** A JSON body to add one entry is small; an import streams and has no such limit. */
const MAX_JSON_BODY = 64 * 1024;
/** Bad import lines reported back (the rest are only counted). */
const MAX_REPORTED_ERRORS = 100;

export function suppressionRoutes(deps: SuppressionApiDeps): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/suppressions$/,
      access: 'read',
      handler: (_p, url) => listReply(deps, url),
    },
    {
      method: 'GET',
      pattern: /^\/api\/suppressions\/export$/,
      access: 'read',
      handler: () => ({
        status: 200,
        contentType: 'application/x-ndjson',
        body: exportLines(deps.list.entries()),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/api\/suppressions$/,
      access: 'admin',
      action: 'suppression-add',
      handler: async (_p, _url, req) => {
        const body = await jsonBody(req);
        if (!body.ok) return { status: 400, body: { error: body.error } };
        const made = entryFrom(body.value as EntryInput, { now: deps.now(), source: 'api' });
        if (!made.ok) return { status: 400, body: { error: made.error } };
        await deps.list.add([made.entry]);
        return {
          status: 201,
          body: entryView(made.entry),
          audit: { address: made.entry.address, scope: made.entry.scope },
        };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/suppressions$/,
      access: 'admin',
      action: 'suppression-remove',
      handler: async (_p, url) => {
        const address = url.searchParams.get('address');
        const scope = (url.searchParams.get('scope') || POOL_SCOPE).toLowerCase();
        if (!address) return { status: 400, body: { error: 'address is required' } };
        const removed = await deps.list.remove(scope, address);
        const audit = { address: normalizeAddress(address), scope };
        return removed
          ? { status: 200, body: { ...audit, removed: true }, audit }
          : { status: 404, body: { error: `not suppressed: ${address} (scope ${scope})` }, audit };
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/suppressions\/import$/,
      access: 'admin',
      action: 'suppression-import',
      handler: async (_p, _url, req) => {
        const result = await importLines(deps, req);
        return { status: 200, body: result, audit: { added: result.added, invalid: result.invalid } };
      },
    },
  ];
}

function listReply(deps: SuppressionApiDeps, url: URL): Reply {
  const address = url.searchParams.get('address');
  const scope = url.searchParams.get('scope');
  const reason = url.searchParams.get('reason');
  const contains = url.searchParams.get('contains')?.toLowerCase();
  const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 10_000);
  if (address) {
    // The direct question "is this address suppressed, and why" is answered without a scan.
    const normalized = normalizeAddress(address);
    const found: SuppressionEntry[] = [];
    for (const s of scope ? [scope.toLowerCase()] : scopesOf(deps.list)) {
      const e = deps.list.get(s, normalized);
      if (e) found.push(e);
    }
    return { status: 200, body: { total: deps.list.size, entries: found.map(entryView) } };
  }
  const entries: ReturnType<typeof entryView>[] = [];
  for (const e of deps.list.entries()) {
    if (entries.length >= limit) break;
    if (scope && e.scope !== scope.toLowerCase()) continue;
    if (reason && e.reason !== reason) continue;
    if (contains && !e.address.includes(contains)) continue;
    entries.push(entryView(e));
  }
  return { status: 200, body: { total: deps.list.size, entries } };
}

/** The pool scope and every sending domain scope in use (few: one per sending domain). */
function scopesOf(list: SuppressionList): string[] {
  return [POOL_SCOPE, ...list.table.scopes()].filter((s, i, all) => all.indexOf(s) === i);
}

async function* exportLines(entries: Iterable<SuppressionEntry>): AsyncIterable<string> {
  let chunk: string[] = [];
  for (const e of entries) {
    chunk.push(`${JSON.stringify(entryView(e))}\n`);
    if (chunk.length === 1000) {
      yield chunk.join('');
      chunk = [];
    }
  }
  yield chunk.join('');
}

async function importLines(deps: SuppressionApiDeps, req: IncomingMessage) {
  const now = deps.now();
  const errors: { line: number; error: string }[] = [];
  let invalid = 0;
  let lineNo = 0;
  let batch: SuppressionEntry[] = [];
  let added = 0;
  for await (const line of createInterface({ input: req, crlfDelay: Infinity })) {
    lineNo++;
    const parsed = parseImportLine(line, now);
    if (!parsed) continue;
    if (!parsed.ok) {
      invalid++;
      if (errors.length < MAX_REPORTED_ERRORS) errors.push({ line: lineNo, error: parsed.error });
      continue;
    }
    batch.push(parsed.entry);
    if (batch.length === 10_000) {
      added += await deps.list.import(batch);
      batch = [];
    }
  }
  added += await deps.list.import(batch);
  return { added, invalid, errors };
}

async function jsonBody(
  req: IncomingMessage,
): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BODY) return { ok: false, error: 'body too large' };
    chunks.push(chunk as Buffer);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? { ok: true, value }
      : { ok: false, error: 'body is a JSON object' };
  } catch {
    return { ok: false, error: 'body is not JSON' };
  }
}
