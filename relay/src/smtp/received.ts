// The Received trace header the relay prepends (RFC 5321 §4.4). Pure.

export interface ReceivedInput {
  helo: string;
  clientAddress: string;
  byHost: string;
  /** RFC 3848 protocol keyword: ESMTP, ESMTPS, ESMTPA or ESMTPSA. */
  protocol: string;
  queueId: string;
  /** Named only when there is one recipient, so other recipients are not disclosed. */
  recipients: readonly string[];
  date: Date;
  /** TLS version and cipher of the session, when it was encrypted. */
  tls?: { version: string; cipher: string } | undefined;
}

export function protocolKeyword(secure: boolean, authenticated: boolean): string {
  return `ESMTP${secure ? 'S' : ''}${authenticated ? 'A' : ''}`;
}

export function receivedHeader(input: ReceivedInput): string {
  const helo = input.helo.replace(/[^\x21-\x7e]/g, '') || 'unknown';
  const forClause = input.recipients.length === 1 ? `\r\n\tfor <${input.recipients[0]}>` : '';
  const clean = (s: string) => s.replace(/[^\x21-\x7e]/g, '');
  // Postfix's form of the TLS comment, so log tools that parse Received headers understand it.
  const tls = input.tls
    ? `\r\n\t(using ${clean(input.tls.version)} with cipher ${clean(input.tls.cipher)})`
    : '';
  return (
    `Received: from ${helo} ([${input.clientAddress}])${tls}\r\n\tby ${input.byHost} (mailfleet) with ${input.protocol} ` +
    `id ${input.queueId}${forClause};\r\n\t${rfc5322Date(input.date)}\r\n`
  );
}

/** "Mon, 30 Nov 2026 10:28:49 +0000" */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}
