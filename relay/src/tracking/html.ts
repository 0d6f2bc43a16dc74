// Rewrites one HTML body: the href of every <a>/<area> that points at a web page becomes a tracked
// link, and the open pixel goes before </body>. The body is handled as a latin1 string (one
// character per byte), so bytes outside the tags we touch are kept exactly, whatever the part's
// charset, as long as the charset is ASCII-compatible (mime.ts checks that). Pure.
import { isTrackableUrl } from './links.ts';

export interface HtmlPlan {
  /** Maps an original URL to its tracked URL; absent when clicks are not tracked. */
  click?: (url: string) => string;
  /** The open pixel's URL; absent when opens are not tracked. */
  pixel?: string;
  /** URLs never rewritten: the message's List-Unsubscribe targets (RFC 8058 one-click included). */
  keep: ReadonlySet<string>;
}

export interface HtmlResult {
  html: string;
  /** Links rewritten. */
  links: number;
  /** Pixels added (0 or 1). */
  pixels: number;
}

// An <a> or <area> start tag; attribute values may hold '>' only inside quotes.
const LINK_TAG = /<(?:a|area)\b(?:"[^"]*"|'[^']*'|[^'">])*>/gi;
const HREF = /(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i;
// Links the sender marked as not to be tracked, and opt-out links: a tracked unsubscribe link
// would record an opt-out as a click, and some receivers treat a redirected unsubscribe as a
// tracking signal.
const NO_TRACK_ATTR = /\sdata-(?:mailfleet-)?notrack\b/i;
const OPT_OUT = /unsubscribe|opt-?out|optout/i;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * The URL an attribute value means (HTML character references decoded), or undefined when it uses
 * a named reference we do not decode: then we do not know the URL the reader would follow.
 */
export function attributeUrl(value: string): string | undefined {
  let unknown = false;
  const url = value.replace(/&(#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    const named = NAMED[ref.toLowerCase()];
    if (named === undefined) unknown = true;
    return named ?? whole;
  });
  return unknown ? undefined : url.trim();
}

function trackable(url: string | undefined, keep: ReadonlySet<string>): url is string {
  return (
    url !== undefined &&
    // Only ASCII: a raw non-ASCII byte means something different in each charset, and we do not
    // know the URL the reader's client would build from it.
    /^[\x21-\x7e]*$/.test(url) &&
    isTrackableUrl(url) &&
    !OPT_OUT.test(url) &&
    !keep.has(url)
  );
}

export function rewriteHtml(html: string, plan: HtmlPlan): HtmlResult {
  let links = 0;
  let out = html;
  if (plan.click) {
    const click = plan.click;
    out = out.replace(LINK_TAG, (tag) => {
      if (NO_TRACK_ATTR.test(tag)) return tag;
      const href = HREF.exec(tag);
      if (!href) return tag;
      const raw = href[2] ?? href[3] ?? href[4] ?? '';
      const url = attributeUrl(raw);
      if (!trackable(url, plan.keep)) return tag;
      links++;
      // The tracked URL has only [A-Za-z0-9-_./:] characters: nothing to escape inside quotes.
      const quote = href[3] !== undefined ? "'" : '"';
      return (
        tag.slice(0, href.index) +
        `${href[1]}${quote}${click(url)}${quote}` +
        tag.slice(href.index + href[0].length)
      );
    });
  }
  let pixels = 0;
  if (plan.pixel) {
    const img = `<img src="${plan.pixel}" width="1" height="1" alt="" style="border:0;width:1px;height:1px">`;
    const body = out.toLowerCase().lastIndexOf('</body');
    out = body < 0 ? out + img : out.slice(0, body) + img + out.slice(body);
    pixels = 1;
  }
  return { html: out, links, pixels };
}
