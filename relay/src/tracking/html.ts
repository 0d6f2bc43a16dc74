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

// The HTML tokenizer's view (WHATWG HTML §13.2.5), as far as finding links needs: a tag runs to
// the first '>' outside a quoted attribute value; comments, and the text of raw-text elements,
// are not markup. A tag still open at the end of the input is not a tag at all.
const TAG = /<\/?([a-zA-Z][^\s/>]*)((?:"[^"]*"|'[^']*'|[^'">])*)>/y;
const ATTRIBUTE = /[\s/]*([^\s"'>/=][^\s"'>/=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/y;
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'noembed', 'noframes']);

// Links the sender marked as not to be tracked, and opt-out links: a tracked unsubscribe link
// would record an opt-out as a click, and some receivers treat a redirected unsubscribe as a
// tracking signal.
const NO_TRACK = new Set(['data-notrack', 'data-mailfleet-notrack']);
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

interface Href {
  /** Offsets of the value in the tag (quotes excluded). */
  start: number;
  end: number;
  value: string;
}

/** The href of an <a>/<area> tag's attributes (the first one, as HTML keeps), unless marked notrack. */
function linkHref(attributes: string, offset: number): Href | undefined {
  let href: Href | undefined;
  ATTRIBUTE.lastIndex = 0;
  for (let m = ATTRIBUTE.exec(attributes); m && m[0] !== ''; m = ATTRIBUTE.exec(attributes)) {
    const name = m[1]!.toLowerCase();
    if (NO_TRACK.has(name)) return undefined;
    const value = m[2] ?? m[3] ?? m[4];
    if (name === 'href' && !href && value !== undefined) {
      const end = offset + ATTRIBUTE.lastIndex - (m[4] === undefined ? 1 : 0);
      href = { start: end - value.length, end, value };
    }
  }
  return href;
}

interface Scan {
  /** The hrefs of links, in order. */
  hrefs: Href[];
  /** Where the last </body> end tag starts, or -1. */
  bodyEnd: number;
  /** Where a tag left open at the end of the input starts (the rest is not markup), or -1. */
  openTagAt: number;
}

/** Finds links and the end of the body between `from` and `to`, comments scanned as fragments of their own. */
function scan(html: string, from: number, to: number, out: Scan): void {
  let i = from;
  while (i < to) {
    const lt = html.indexOf('<', i);
    if (lt < 0 || lt >= to) return;
    if (html.startsWith('<!--', lt)) {
      // Comment content is no markup to the reader's client, but Outlook renders conditional
      // comments (<!--[if mso]>): their links are found like any others, within the comment only.
      const close = html.indexOf('-->', lt + 4);
      const end = close < 0 || close >= to ? to : close;
      scan(html, lt + 4, end, out);
      i = end + 3;
      continue;
    }
    TAG.lastIndex = lt;
    const tag = TAG.exec(html);
    if (!tag || TAG.lastIndex > to) {
      if (/^<\/?[a-zA-Z]/.test(html.slice(lt, lt + 3))) {
        out.openTagAt = lt;
        return;
      }
      i = lt + 1;
      continue;
    }
    const name = tag[1]!.toLowerCase();
    const endTag = html[lt + 1] === '/';
    i = TAG.lastIndex;
    if (endTag) {
      if (name === 'body') out.bodyEnd = lt;
      continue;
    }
    if (name === 'a' || name === 'area') {
      const href = linkHref(tag[2]!, lt + 1 + tag[1]!.length);
      if (href) out.hrefs.push(href);
    } else if (RAW_TEXT.has(name)) {
      const close = html.toLowerCase().indexOf(`</${name}`, i);
      i = close < 0 || close >= to ? to : close;
    }
  }
}

export function rewriteHtml(html: string, plan: HtmlPlan): HtmlResult {
  const found: Scan = { hrefs: [], bodyEnd: -1, openTagAt: -1 };
  scan(html, 0, html.length, found);
  /** Replacements in order of position: [start, end, text]. */
  const edits: [number, number, string][] = [];
  let links = 0;
  if (plan.click) {
    for (const href of found.hrefs) {
      const url = attributeUrl(href.value);
      if (!trackable(url, plan.keep)) continue;
      links++;
      // The tracked URL has only [A-Za-z0-9-_./:] characters: valid as it is quoted or unquoted,
      // so the attribute keeps its quoting and nothing around it parses differently.
      edits.push([href.start, href.end, plan.click(url)]);
    }
  }
  let pixels = 0;
  if (plan.pixel) {
    // Before the last </body>; else at the end, or before a tag left open there (the pixel would
    // otherwise become part of it).
    const at = found.bodyEnd >= 0 ? found.bodyEnd : found.openTagAt >= 0 ? found.openTagAt : html.length;
    const img = `<img src="${plan.pixel}" width="1" height="1" alt="" style="border:0;width:1px;height:1px">`;
    const index = edits.findIndex(([start]) => start >= at);
    edits.splice(index < 0 ? edits.length : index, 0, [at, at, img]);
    pixels = 1;
  }
  let out = '';
  let copied = 0;
  for (const [start, end, text] of edits) {
    out += html.slice(copied, start) + text;
    copied = end;
  }
  out += html.slice(copied);
  return { html: out, links, pixels };
}
