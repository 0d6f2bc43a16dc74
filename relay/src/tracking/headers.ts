// What the tracking decision reads from a message's top-level header block. Pure.

export interface TrackingHeaders {
  /** d= of every DKIM-Signature field, lower-cased. */
  dkimDomains: string[];
  /** Message-ID without its angle brackets; '' when the message has none. */
  messageId: string;
  /** http(s) targets of List-Unsubscribe (RFC 2369, RFC 8058): never rewritten. */
  unsubscribe: string[];
}

/** The header block (latin1) with folded lines unfolded (RFC 5322 §2.2.3). */
function headerBlock(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  return message
    .subarray(0, end < 0 ? message.length : end)
    .toString('latin1')
    .replace(/\r\n(?=[ \t])/g, '');
}

function fields(block: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`^${name}[ \\t]*:(.*)$`, 'gim');
  for (let m = re.exec(block); m; m = re.exec(block)) out.push(m[1]!);
  return out;
}

export function trackingHeaders(message: Buffer): TrackingHeaders {
  const block = headerBlock(message);
  const dkimDomains = fields(block, 'dkim-signature').flatMap((v) => {
    const d = /(?:^|;)\s*d\s*=\s*([^;\s]+)/i.exec(v);
    return d ? [d[1]!.toLowerCase()] : [];
  });
  const id = fields(block, 'message-id')[0] ?? '';
  const messageId = (/<([^>]*)>/.exec(id)?.[1] ?? id).trim();
  const unsubscribe = fields(block, 'list-unsubscribe').flatMap((v) =>
    [...v.matchAll(/<([^>]*)>/g)].map((m) => m[1]!.trim()),
  );
  return { dkimDomains, messageId, unsubscribe };
}
