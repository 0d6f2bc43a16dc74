// RFC 3461 DSN parameters: read from what smtp-server parsed (it advertises DSN, checks NOTIFY and
// ORCPT syntax and decodes xtext), kept in the spool record (record.ts), honoured in the DSNs this
// relay writes (dsn.ts) and given to a next hop that advertises DSN. Pure.
import type { DsnNotify, DsnParams, RecipientDsn } from '../spool/record.ts';

/** What smtp-server 3.21 leaves in session.envelope: `dsn` {ret, envid}, each `rcptTo[i].dsn`. */
export interface SessionEnvelopeDsn {
  dsn?: { ret?: string | null; envid?: string | null } | undefined;
  rcptTo: { dsn?: { notify?: string[] | undefined; orcpt?: string | undefined } | undefined }[];
}

const NOTIFY = new Set<string>(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);

/** The parameters of one transaction, or undefined when the client gave none. */
export function dsnFromSession(envelope: SessionEnvelopeDsn): DsnParams | undefined {
  const params: DsnParams = {};
  const ret = envelope.dsn?.ret?.toUpperCase();
  if (ret === 'FULL' || ret === 'HDRS') params.ret = ret;
  if (envelope.dsn?.envid) params.envid = envelope.dsn.envid;
  const recipients = envelope.rcptTo.map(({ dsn }): RecipientDsn | null => {
    const r: RecipientDsn = {};
    const notify = dsn?.notify?.map((n) => n.toUpperCase()).filter((n) => NOTIFY.has(n));
    if (notify?.length) r.notify = notify as DsnNotify[];
    if (dsn?.orcpt) r.orcpt = dsn.orcpt;
    return r.notify || r.orcpt ? r : null;
  });
  if (recipients.some((r) => r !== null)) params.recipients = recipients;
  return Object.keys(params).length > 0 ? params : undefined;
}

/**
 * Whether a failure of recipient `index` is reported: RFC 3461 §4.1, without NOTIFY the MTA
 * behaves as for NOTIFY=FAILURE (or FAILURE,DELAY); NOTIFY=NEVER or a list without FAILURE: no DSN.
 */
export function failureNotified(params: DsnParams | undefined, index: number): boolean {
  const notify = params?.recipients?.[index]?.notify;
  return notify === undefined || notify.includes('FAILURE');
}

/**
 * Whether recipient `index`, still deferred, gets one "delayed" DSN: only when its NOTIFY lists
 * DELAY. RFC 3461 §4.1 lets an MTA treat an absent NOTIFY as FAILURE or as FAILURE,DELAY; this
 * relay takes FAILURE: its senders are mostly applications with a bounce processor, for which a
 * warning about mail that is still being retried is noise (Postfix, too, sends none by default).
 */
export function delayNotified(params: DsnParams | undefined, index: number): boolean {
  return params?.recipients?.[index]?.notify?.includes('DELAY') === true;
}

/**
 * Whether a delivery of recipient `index` is reported as "relayed" (RFC 3461 §6.2.3): NOTIFY lists
 * SUCCESS and the next hop did not list DSN, so no one further along will report it. A next hop
 * that lists DSN got the NOTIFY and reports the outcome itself.
 */
export function relayNotified(
  params: DsnParams | undefined,
  index: number,
  nextHopListsDsn: boolean,
): boolean {
  return !nextHopListsDsn && params?.recipients?.[index]?.notify?.includes('SUCCESS') === true;
}

/** RFC 3461 §4: `+`, `=` and bytes outside 33..126 as `+XX`. */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8'))
    out +=
      byte < 33 || byte > 126 || byte === 0x2b || byte === 0x3d
        ? `+${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  return out;
}

/** What an attempt gives the next hop, used only when its EHLO lists DSN (RFC 3461 §6.2). */
export interface NextHopDsn {
  ret?: 'FULL' | 'HDRS';
  /** Decoded; the SMTP client encodes it. */
  envid?: string;
  /** Recipient address -> its RCPT TO parameters, encoded, with a leading space (or none). */
  rcpt: Map<string, string>;
}

export function nextHopDsn(
  params: DsnParams | undefined,
  recipients: readonly { index: number; address: string }[],
): NextHopDsn | undefined {
  if (!params) return undefined;
  const rcpt = new Map<string, string>();
  for (const { index, address } of recipients) {
    const r = params.recipients?.[index];
    const args: string[] = [];
    if (r?.notify) args.push(`NOTIFY=${r.notify.join(',')}`);
    if (r?.orcpt) args.push(`ORCPT=${encodeXtext(r.orcpt)}`);
    if (args.length > 0 && !rcpt.has(address)) rcpt.set(address, ` ${args.join(' ')}`);
  }
  const next: NextHopDsn = { rcpt };
  if (params.ret) next.ret = params.ret;
  if (params.envid) next.envid = params.envid;
  return next;
}
