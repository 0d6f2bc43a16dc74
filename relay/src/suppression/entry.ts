// A suppression entry and everything pure about it: normalisation, the lookup key, the journal
// line codec, the import formats, the entry a feedback event (hard bounce, complaint) makes, and
// the RCPT reply for a suppressed recipient.
import { REPLIES, type SmtpReply } from '../errors.ts';
import { checkAddress } from '../security/address.ts';

/** Why the address is suppressed. */
export type SuppressionReason = 'hard-bounce' | 'complaint' | 'manual';
export const REASONS: readonly SuppressionReason[] = ['hard-bounce', 'complaint', 'manual'];

/** Where the entry came from: a synchronous 5xx, an async DSN, an ARF report, the API, an import. */
export type SuppressionSource = 'smtp' | 'dsn' | 'arf' | 'api' | 'import' | 'peer';
export const SOURCES: readonly SuppressionSource[] = ['smtp', 'dsn', 'arf', 'api', 'import', 'peer'];

/** The scope of an entry for every sending domain of the pool. */
export const POOL_SCOPE = '*';

export interface SuppressionEntry {
  /** The recipient, lower-cased. */
  address: string;
  /** A sending domain (lower-case), or `*`: every sending domain of the pool. */
  scope: string;
  reason: SuppressionReason;
  source: SuppressionSource;
  /** Queue id or Message-ID of the message that caused it; '' if none. */
  messageId: string;
  /** Milliseconds since the epoch. */
  addedAt: number;
  /** Milliseconds since the epoch; 0: never expires. */
  expiresAt: number;
}

/** A change to the list, as journalled and as shared between relays. */
export type SuppressionChange =
  { op: 'add'; entry: SuppressionEntry } | { op: 'remove'; scope: string; address: string; at: number };

/** Recipient addresses compare case-insensitively here (as every large mailbox provider treats them). */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim();
  // toLowerCase always makes a new string, which the RCPT-time Map lookup must hash anew (a third
  // of the lookup's cost); most addresses arrive in lower case already.
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c > 127) return trimmed.toLowerCase();
  }
  return trimmed;
}

export type EntryInput = {
  address?: unknown;
  scope?: unknown;
  reason?: unknown;
  source?: unknown;
  messageId?: unknown;
  addedAt?: unknown;
  expiresAt?: unknown;
};

/** Pure: a complete entry from user input (API body, import line), or why not. */
export function entryFrom(
  input: EntryInput,
  defaults: { now: number; source: SuppressionSource },
): { ok: true; entry: SuppressionEntry } | { ok: false; error: string } {
  if (typeof input.address !== 'string') return { ok: false, error: 'address is required' };
  const address = normalizeAddress(input.address);
  // Whitespace and commas would break the journal's and the CSV export's line formats.
  if (/[\s,]/.test(address)) return { ok: false, error: `not a plain mailbox address: ${input.address}` };
  if (!checkAddress(address).ok) return { ok: false, error: `not a plain mailbox address: ${input.address}` };
  const scope = input.scope === undefined || input.scope === '' ? POOL_SCOPE : input.scope;
  if (typeof scope !== 'string' || !(scope === POOL_SCOPE || /^[a-z0-9.-]+$/i.test(scope)))
    return { ok: false, error: 'scope is a sending domain or *' };
  const reason = input.reason ?? 'manual';
  if (!REASONS.includes(reason as SuppressionReason))
    return { ok: false, error: `reason is one of ${REASONS.join(', ')}` };
  const source = input.source ?? defaults.source;
  if (!SOURCES.includes(source as SuppressionSource))
    return { ok: false, error: `source is one of ${SOURCES.join(', ')}` };
  const messageId = input.messageId ?? '';
  if (typeof messageId !== 'string' || messageId.length > 998)
    return { ok: false, error: 'messageId is a string' };
  const addedAt = timeOf(input.addedAt, defaults.now);
  const expiresAt = timeOf(input.expiresAt, 0);
  if (addedAt === undefined || expiresAt === undefined)
    return { ok: false, error: 'addedAt and expiresAt are RFC 3339 times or epoch milliseconds' };
  return {
    ok: true,
    entry: {
      address,
      scope: scope.toLowerCase(),
      reason: reason as SuppressionReason,
      source: source as SuppressionSource,
      messageId,
      addedAt,
      expiresAt,
    },
  };
}

function timeOf(value: unknown, fallback: number): number | undefined {
  if (value === undefined || value === null || value === '' || value === 0) return fallback;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.round(value);
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** The entry as the API and exports show it (times in RFC 3339). */
export function entryView(e: SuppressionEntry) {
  return {
    address: e.address,
    scope: e.scope,
    reason: e.reason,
    source: e.source,
    messageId: e.messageId,
    addedAt: new Date(e.addedAt).toISOString(),
    expiresAt: e.expiresAt === 0 ? null : new Date(e.expiresAt).toISOString(),
  };
}

/** Journal line of a change (one JSON object, no newline). Short keys: millions of lines. */
export function encodeChange(c: SuppressionChange): string {
  if (c.op === 'remove') return JSON.stringify({ o: 'r', s: c.scope, a: c.address, t: c.at });
  const e = c.entry;
  return JSON.stringify({
    o: 'a',
    s: e.scope,
    a: e.address,
    r: e.reason,
    src: e.source,
    m: e.messageId,
    t: e.addedAt,
    x: e.expiresAt,
  });
}

/** The change a journal line holds, or undefined for a damaged line (a torn last write). */
export function decodeChange(line: string): SuppressionChange | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || typeof o.s !== 'string' || typeof o.a !== 'string')
    return undefined;
  if (o.o === 'r' && typeof o.t === 'number') return { op: 'remove', scope: o.s, address: o.a, at: o.t };
  if (
    o.o === 'a' &&
    REASONS.includes(o.r as SuppressionReason) &&
    SOURCES.includes(o.src as SuppressionSource) &&
    typeof o.m === 'string' &&
    typeof o.t === 'number' &&
    typeof o.x === 'number'
  )
    return {
      op: 'add',
      entry: {
        address: o.a,
        scope: o.s,
        reason: o.r as SuppressionReason,
        source: o.src as SuppressionSource,
        messageId: o.m,
        addedAt: o.t,
        expiresAt: o.x,
      },
    };
  return undefined;
}

/**
 * One import line: a JSON object (as `export` writes), or CSV `address[,scope[,reason[,expiresAt]]]`
 * (a bare address per line is the common export of other services). Blank lines and `#` comments
 * give undefined.
 */
export function parseImportLine(
  line: string,
  now: number,
): { ok: true; entry: SuppressionEntry } | { ok: false; error: string } | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  if (text.startsWith('{')) {
    let input: EntryInput;
    try {
      input = JSON.parse(text) as EntryInput;
    } catch {
      return { ok: false, error: 'not valid JSON' };
    }
    return entryFrom({ ...input, source: input.source ?? 'import' }, { now, source: 'import' });
  }
  const [address, scope, reason, expiresAt] = text.split(',').map((f) => f.trim());
  // A header line ("email", "address") is skipped, not an error.
  if (address !== undefined && /^(e-?mail|address|recipient)$/i.test(address)) return undefined;
  return entryFrom({ address, scope, reason, expiresAt }, { now, source: 'import' });
}

/** What the relay and its peers emit when mail comes back (hard bounce, complaint). */
export interface Feedback {
  /** The recipient the feedback is about. */
  recipient: string;
  kind: 'hard-bounce' | 'complaint';
  /** The sending domain of the original message ('' if unknown). */
  sendingDomain: string;
  /** Queue id or Message-ID of the original message. */
  messageId: string;
  source: SuppressionSource;
}

export interface FeedbackPolicy {
  /** How long an entry lasts, by kind; 0: forever. */
  hardBounceTtlMs: number;
  complaintTtlMs: number;
}

/**
 * Pure: the entry a feedback event makes. A hard bounce is a fact about the address, so it holds
 * for every sending domain of the pool; a complaint is a recipient's judgement of one sender, so
 * it holds for that sending domain (all of the pool when the domain is unknown).
 */
export function entryFromFeedback(f: Feedback, policy: FeedbackPolicy, now: number): SuppressionEntry {
  const ttl = f.kind === 'hard-bounce' ? policy.hardBounceTtlMs : policy.complaintTtlMs;
  return {
    address: normalizeAddress(f.recipient),
    scope: f.kind === 'complaint' && f.sendingDomain ? f.sendingDomain.toLowerCase() : POOL_SCOPE,
    reason: f.kind,
    source: f.source,
    messageId: f.messageId,
    addedAt: now,
    expiresAt: ttl > 0 ? now + ttl : 0,
  };
}

/** The RCPT reply for a suppressed recipient: the reason decides the enhanced code and text. */
export function suppressedReply(reason: SuppressionReason): SmtpReply {
  switch (reason) {
    case 'hard-bounce':
      return REPLIES.suppressedHardBounce;
    case 'complaint':
      return REPLIES.suppressedComplaint;
    case 'manual':
      return REPLIES.suppressedManual;
  }
}
