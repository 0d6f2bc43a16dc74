// Link tracking at delivery, before DKIM signing: the deliverer hands each message to apply(),
// which decides (decide.ts) and rewrites (mime.ts). Built from the relay config and the tracking
// key; replaced, not mutated, on reload.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RelayConfig } from '../config/types.ts';
import { headerFromDomain } from '../delivery/dkim.ts';
import { decideTracking, type DomainTracking, type TrackingDecision } from './decide.ts';
import { trackingHeaders } from './headers.ts';
import { MIN_KEY_BYTES, clickUrl, openUrl } from './links.ts';
import { rewriteMessage } from './mime.ts';

export interface TrackingLimits {
  /** Messages larger than this are sent as they are (the whole message is parsed to rewrite it). */
  maxMessageBytes: number;
  /** An HTML part larger than this (decoded) is left as it is. */
  maxHtmlBytes: number;
  /** A rewritten message that would exceed this (the pool's maxMessageSize) is sent unrewritten. */
  maxOutputBytes: number;
}

export type TrackingOutcome =
  | { result: 'rewritten'; domain: string; links: number; pixels: number; skippedParts: number }
  | { result: 'untracked' }
  | { result: 'signed-by-sender' | 'too-large' | 'no-html'; domain: string };

/**
 * The message reference carried by tracked links: the Message-ID, or when the message has none a
 * hash of its header block, so every retry of the same message yields the same links.
 */
function trackingMessageId(messageId: string, message: Buffer): string {
  if (messageId) return messageId.slice(0, 255);
  const end = message.indexOf('\r\n\r\n');
  return (
    'sha256:' +
    createHash('sha256')
      .update(message.subarray(0, end < 0 ? message.length : end))
      .digest('hex')
      .slice(0, 32)
  );
}

export class LinkTracking {
  readonly key: Buffer;
  private readonly domains: ReadonlyMap<string, DomainTracking>;
  private readonly limits: TrackingLimits;

  constructor(key: Buffer, domains: ReadonlyMap<string, DomainTracking>, limits: TrackingLimits) {
    this.key = key;
    this.domains = domains;
    this.limits = limits;
  }

  decide(message: Buffer, envelopeFrom: string): TrackingDecision {
    const at = envelopeFrom.lastIndexOf('@');
    return decideTracking({
      headerFromDomain: headerFromDomain(message),
      envelopeDomain: at < 0 ? '' : envelopeFrom.slice(at + 1).toLowerCase(),
      size: message.length,
      maxMessageBytes: this.limits.maxMessageBytes,
      domains: this.domains,
      headers: () => trackingHeaders(message),
    });
  }

  async apply(message: Buffer, envelopeFrom: string): Promise<{ body: Buffer; outcome: TrackingOutcome }> {
    if (this.domains.size === 0) return { body: message, outcome: { result: 'untracked' } };
    const decision = this.decide(message, envelopeFrom);
    if (!decision.track) {
      const outcome: TrackingOutcome =
        decision.reason === 'untracked'
          ? { result: 'untracked' }
          : { result: decision.reason, domain: decision.domain ?? '' };
      return { body: message, outcome };
    }
    const { domain, tracking } = decision;
    const headers = trackingHeaders(message);
    const id = trackingMessageId(headers.messageId, message);
    const rewritten = await rewriteMessage(
      message,
      {
        keep: new Set(headers.unsubscribe),
        ...(tracking.clicks
          ? { click: (url: string) => clickUrl(this.key, tracking.host, domain, id, url) }
          : {}),
        ...(tracking.opens ? { pixel: openUrl(this.key, tracking.host, domain, id) } : {}),
      },
      { maxHtmlBytes: this.limits.maxHtmlBytes },
    );
    if (rewritten.htmlParts === rewritten.skippedParts)
      return { body: message, outcome: { result: 'no-html', domain } };
    if (rewritten.message.length > this.limits.maxOutputBytes)
      return { body: message, outcome: { result: 'too-large', domain } };
    return {
      body: rewritten.message,
      outcome: {
        result: 'rewritten',
        domain,
        links: rewritten.links,
        pixels: rewritten.pixels,
        skippedParts: rewritten.skippedParts,
      },
    };
  }
}

/**
 * The link tracking a relay config asks for: undefined when no domain tracks. A key that cannot be
 * read (or is too short) keeps the previous key when there was one, like DKIM keys; without any
 * key, mail is delivered untracked and the error reported.
 */
export function loadLinkTracking(
  config: Pick<RelayConfig, 'sendingDomains' | 'tracking' | 'limits'>,
  previous: LinkTracking | undefined,
  readKey: (file: string) => Buffer = (file) => readFileSync(file),
): { tracking?: LinkTracking; error?: string } {
  const domains = new Map<string, DomainTracking>();
  for (const d of config.sendingDomains)
    if (d.tracking && (d.tracking.opens || d.tracking.clicks)) domains.set(d.domain, d.tracking);
  if (domains.size === 0 || !config.tracking) return {};
  const limits = {
    maxMessageBytes: config.tracking.maxMessageBytes,
    maxHtmlBytes: config.tracking.maxHtmlBytes,
    maxOutputBytes: config.limits.maxMessageSize,
  };
  let key: Buffer | undefined;
  let error: string | undefined;
  try {
    key = trackingKey(readKey(config.tracking.keyFile));
  } catch (err) {
    error = `tracking key ${config.tracking.keyFile}: ${(err as Error).message}`;
    key = previous?.key;
  }
  return key ? { tracking: new LinkTracking(key, domains, limits), ...(error ? { error } : {}) } : { error };
}

/** The key in a key file: its bytes without a trailing line break. */
export function trackingKey(file: Buffer): Buffer {
  const key = Buffer.from(file.toString('latin1').replace(/\r?\n$/, ''), 'latin1');
  if (key.length < MIN_KEY_BYTES) throw new Error(`shorter than ${MIN_KEY_BYTES} bytes`);
  return key;
}
