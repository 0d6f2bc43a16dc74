// Which envelope sender each recipient's copy leaves with. A sending domain with a return path
// gets one SMTP transaction per recipient (RFC 5321 allows one reverse-path per transaction), each
// with its own signed VERP address; everything else keeps one transaction for all recipients.
// Pure.
import type { SendingDomainConfig } from '../config/types.ts';
import { verpAddress } from './verp.ts';

export interface ReturnPaths {
  /** The pool's VERP signing key (returnPath.keyFile). */
  key: Buffer;
  /** Sending domain -> its return-path domain, for the domains that have one. */
  bySendingDomain: ReadonlyMap<string, string>;
  /** Return-path domain -> the sending domains that use it (the inbound listener's lookup). */
  byReturnPath: ReadonlyMap<string, readonly string[]>;
}

export function returnPaths(key: Buffer, domains: readonly SendingDomainConfig[]): ReturnPaths {
  const bySendingDomain = new Map<string, string>();
  const byReturnPath = new Map<string, string[]>();
  for (const d of domains) {
    if (!d.returnPath) continue;
    bySendingDomain.set(d.domain, d.returnPath);
    byReturnPath.set(d.returnPath, [...(byReturnPath.get(d.returnPath) ?? []), d.domain]);
  }
  return { key, bySendingDomain, byReturnPath };
}

export interface Envelope {
  from: string;
  recipients: string[];
}

export function envelopesFor(
  from: string,
  queueId: string | undefined,
  recipients: readonly string[],
  paths: ReturnPaths | undefined,
): Envelope[] {
  const sendingDomain = from.slice(from.lastIndexOf('@') + 1).toLowerCase();
  // A null sender (a DSN we send) never gets a return path: RFC 3464 §2 forbids answering one.
  const returnPath = from && queueId ? paths?.bySendingDomain.get(sendingDomain) : undefined;
  if (!returnPath || !paths) return [{ from, recipients: [...recipients] }];
  const plain: string[] = [];
  const out: Envelope[] = [];
  for (const recipient of recipients) {
    const verp = verpAddress(paths.key, returnPath, { sendingDomain, queueId: queueId!, recipient });
    if (verp) out.push({ from: verp, recipients: [recipient] });
    else plain.push(recipient);
  }
  if (plain.length > 0) out.push({ from, recipients: plain });
  return out;
}
