// DKIM signing at delivery: each attempt signs the message as stored, with the key of its sending
// domain as loaded when the deliverer was built. The deliverer is rebuilt on every reload, and a
// change to a key file triggers one (the config watcher polls every referenced file), so a rotated
// key signs the next attempt, queued mail included.
import { readFileSync } from 'node:fs';
import type { SendingDomainConfig } from '../config/types.ts';
import { loadPrivateKey, signatureField, streamedSignatureField, type DkimKey } from '../dkim/sign.ts';

/** The domain of the first From: header field, lower-cased; '' if there is none. Pure. */
export function headerFromDomain(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  const header = message.subarray(0, end < 0 ? message.length : end).toString('latin1');
  const from = /^from:((?:.*)(?:\r\n[ \t].*)*)/im.exec(header);
  if (!from) return '';
  const value = from[1]!.replace(/\r\n/g, '');
  const angle = /<([^>]*)>/.exec(value);
  const address = (angle ? angle[1]! : value).trim();
  const at = address.lastIndexOf('@');
  return at < 0
    ? ''
    : address
        .slice(at + 1)
        .replace(/[>\s;,]+$/, '')
        .toLowerCase();
}

export interface KeyLoadError {
  domain: string;
  keyFile: string;
  error: string;
}

export class DkimKeyring {
  /** Sending domain -> key, for the domains that have a usable one. */
  private readonly keys: Map<string, DkimKey & { keyFile: string; pem: string }>;

  private constructor(keys: Map<string, DkimKey & { keyFile: string; pem: string }>) {
    this.keys = keys;
  }

  /**
   * Reads every configured key. A key that cannot be read or parsed keeps the previous keyring's
   * key for that domain when it had one (a half-written Secret must not stop signing), and is
   * reported in `errors`.
   */
  static load(
    domains: readonly SendingDomainConfig[],
    previous?: DkimKeyring,
  ): { keyring: DkimKeyring; errors: KeyLoadError[] } {
    const keys = new Map<string, DkimKey & { keyFile: string; pem: string }>();
    const errors: KeyLoadError[] = [];
    for (const d of domains) {
      if (!d.dkim) continue;
      try {
        const pem = readFileSync(d.dkim.keyFile, 'latin1');
        const old = previous?.keys.get(d.domain);
        const privateKey =
          old && old.pem === pem && old.algorithm === d.dkim.algorithm
            ? old.privateKey
            : loadPrivateKey(pem, d.dkim.algorithm);
        keys.set(d.domain, {
          domain: d.domain,
          selector: d.dkim.selector,
          algorithm: d.dkim.algorithm,
          privateKey,
          keyFile: d.dkim.keyFile,
          pem,
        });
      } catch (err) {
        errors.push({ domain: d.domain, keyFile: d.dkim.keyFile, error: (err as Error).message });
        const old = previous?.keys.get(d.domain);
        if (old) keys.set(d.domain, { ...old, selector: d.dkim.selector });
      }
    }
    return { keyring: new DkimKeyring(keys), errors };
  }

  /** Whether any sending domain has a key (else no message is signed). */
  signs(): boolean {
    return this.keys.size > 0;
  }

  /**
   * The key for a message: the header From domain's (DMARC alignment), else the envelope
   * sender's. undefined when neither is a sending domain with a key.
   */
  keyFor(message: Buffer, envelopeFrom: string): DkimKey | undefined {
    // No keys (no DKIM configured): nothing to look up, so the header is not parsed.
    if (this.keys.size === 0) return undefined;
    const headerDomain = headerFromDomain(message);
    const at = envelopeFrom.lastIndexOf('@');
    const envelopeDomain = at < 0 ? '' : envelopeFrom.slice(at + 1).toLowerCase();
    return this.keys.get(headerDomain) ?? this.keys.get(envelopeDomain);
  }

  /**
   * The DKIM-Signature field to send in front of the message, for a message with a key; the
   * message itself is left as it is (no copy of it with the field in front).
   */
  sign(message: Buffer, envelopeFrom: string, now = Date.now() / 1000): { field?: Buffer; domain?: string } {
    const key = this.keyFor(message, envelopeFrom);
    if (!key) return {};
    return { field: signatureField(message, key, now), domain: key.domain };
  }

  /**
   * The same for a message read in chunks (a big one, from the spool): one pass over its chunks,
   * each read into the same buffer, holding its header block and that buffer, never the whole
   * message. The chunks are the caller's to read again to send the message after the field.
   */
  async signChunks(
    message: { chunks(options: { transient: true }): AsyncIterable<Buffer> },
    envelopeFrom: string,
    now = Date.now() / 1000,
  ): Promise<{ field?: Buffer; domain?: string }> {
    if (this.keys.size === 0) return {};
    const signed = await streamedSignatureField(
      message.chunks({ transient: true }),
      (header) => this.keyFor(header, envelopeFrom),
      now,
    );
    return signed ? { field: signed.field, domain: signed.key.domain } : {};
  }
}
