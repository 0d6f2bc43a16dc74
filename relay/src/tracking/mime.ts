// The MIME work of tracking: every text/html part that is not an attachment is decoded (base64 or
// quoted-printable), rewritten by html.ts and encoded again; every other part, text/plain
// included, passes through byte for byte. mailsplit (by the nodemailer author, the splitter
// ZoneMTA rewrites links with) parses the structure (nested multiparts, message/rfc822, header
// updates) and joins it back; libqp (its own quoted-printable codec) encodes.
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Joiner, Splitter, type MimeNode } from 'mailsplit';
import libqp from 'libqp';
import { rewriteHtml, type HtmlPlan } from './html.ts';

/**
 * Charsets in which every ASCII byte means the ASCII character, in every position: then tags and
 * attributes can be found in the bytes without decoding the text. UTF-16/32, UTF-7 and the
 * ISO-2022 family are not; their parts are left untouched.
 */
function asciiCompatible(charset: string | false | undefined): boolean {
  const c = (charset || 'us-ascii').toLowerCase().trim();
  return !/^(?:utf-?(?:16|32|7)|ucs-?[24]|iso-?2022|csiso2022|hz-gb|unicode)/.test(c);
}

/**
 * A text/html part the reader sees as this message's body: not an attachment, and not inside an
 * attached message (a forwarded message/rfc822 or a part under an attachment keeps its bytes).
 */
function isMessageHtml(node: MimeNode): boolean {
  if (node.contentType !== 'text/html') return false;
  for (let n: MimeNode | false | undefined = node; n; n = n.parentNode) {
    if (n.disposition === 'attachment') return false;
    if (n !== node && n.rfc822) return false;
  }
  return true;
}

export interface MimeResult {
  message: Buffer;
  htmlParts: number;
  /** HTML parts left alone: charset not ASCII-compatible, or larger than the limit. */
  skippedParts: number;
  links: number;
  pixels: number;
}

type SplitObject = MimeNode | { type: 'body' | 'data'; node: MimeNode; value: Buffer };

/**
 * Buffers each HTML part's body (the splitter gives it line by line), then decodes, rewrites and
 * encodes it in one synchronous step. mailsplit's own Rewriter does this through decoder and
 * encoder streams with a setImmediate per chunk and a 100 ms pause when its output buffer is full:
 * 49 ms per 30 KB newsletter, against 10 ms here (docs/tracking.md).
 */
class HtmlPartRewriter extends Transform {
  private readonly rewrite: (node: MimeNode, decoded: Buffer) => Buffer | undefined;
  /** The HTML part being collected, and its encoded body lines so far. */
  private current: { node: MimeNode; lines: Buffer[] } | undefined;

  constructor(rewrite: (node: MimeNode, decoded: Buffer) => Buffer | undefined) {
    super({ objectMode: true });
    this.rewrite = rewrite;
  }

  override _transform(
    data: SplitObject,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    try {
      if (this.current && data.type === 'body' && data.node === this.current.node) {
        this.current.lines.push(data.value);
        return callback();
      }
      this.finishPart();
      if (data.type === 'node' && isMessageHtml(data)) this.current = { node: data, lines: [] };
      else this.push(data);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: (error?: Error | null) => void): void {
    try {
      this.finishPart();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  private finishPart(): void {
    const part = this.current;
    if (!part) return;
    this.current = undefined;
    const encoded = Buffer.concat(part.lines);
    const encoding = part.node.encoding || '7bit';
    const decoded =
      encoding === 'base64'
        ? Buffer.from(encoded.toString('latin1'), 'base64')
        : encoding === 'quoted-printable'
          ? libqp.decode(encoded.toString('latin1'))
          : encoded;
    const rewritten = this.rewrite(part.node, decoded);
    if (!rewritten) {
      this.push(part.node);
      if (encoded.length > 0) this.push({ type: 'body', node: part.node, value: encoded });
      return;
    }
    let body: string;
    if (encoding === 'base64') {
      body = rewritten.toString('base64').replace(/.{76}(?=.)/g, '$&\r\n');
    } else {
      // 7bit/8bit become quoted-printable: tracked URLs lengthen lines, and RFC 5322 §2.1.1 caps
      // a line at 998 characters.
      if (encoding !== 'quoted-printable')
        part.node.headers.update('Content-Transfer-Encoding', 'quoted-printable');
      body = libqp.wrap(libqp.encode(rewritten), 76);
    }
    // The line break before the next boundary (RFC 2046 §5.1.1) belongs to the boundary.
    if (!body.endsWith('\r\n')) body += '\r\n';
    this.push(part.node);
    this.push({ type: 'body', node: part.node, value: Buffer.from(body, 'latin1') });
  }
}

export async function rewriteMessage(
  message: Buffer,
  plan: HtmlPlan,
  limits: { maxHtmlBytes: number },
): Promise<MimeResult> {
  const result: MimeResult = { message, htmlParts: 0, skippedParts: 0, links: 0, pixels: 0 };
  const rewriter = new HtmlPartRewriter((node, decoded) => {
    result.htmlParts++;
    if (decoded.length > limits.maxHtmlBytes || !asciiCompatible(node.charset)) {
      result.skippedParts++;
      return undefined;
    }
    const rewritten = rewriteHtml(decoded.toString('latin1'), plan);
    result.links += rewritten.links;
    result.pixels += rewritten.pixels;
    return Buffer.from(rewritten.html, 'latin1');
  });
  const out: Buffer[] = [];
  await pipeline(Readable.from([message]), new Splitter(), rewriter, new Joiner(), async (source) => {
    for await (const chunk of source) out.push(chunk as Buffer);
  });
  result.message = Buffer.concat(out);
  return result;
}
