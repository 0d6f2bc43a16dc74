// Reading links back out of a delivered message, for the tracking tests: every href of its HTML,
// and what a tracked one resolves to through the token (the tracker's own decodeToken).
import { Parser } from 'htmlparser2';
import { simpleParser } from 'mailparser';
import { decodeToken, type TrackingToken } from '../../../relay/src/tracking/links.ts';

/** The href of every <a> and <area> as an independent HTML parser (htmlparser2) reads them, entities decoded. */
export function hrefs(html: string): string[] {
  const found: string[] = [];
  const parser = new Parser({
    onopentag(name, attributes) {
      if ((name === 'a' || name === 'area') && attributes.href !== undefined)
        found.push(attributes.href.trim());
    },
  });
  parser.write(html);
  parser.end();
  return found;
}

/** The original URL of a link: itself, or for a tracked link the URL its verified token carries. */
export function resolveLink(
  keys: Buffer[],
  host: string,
  url: string,
): { url: string; token?: TrackingToken } {
  const prefix = `https://${host}/c/`;
  if (!url.startsWith(prefix)) return { url };
  const token = decodeToken(keys, url.slice(prefix.length));
  if (token?.kind !== 'click') throw new Error(`tracked link does not verify: ${url}`);
  return { url: token.url, token };
}

/** Open pixels in the HTML: the verified tokens of <img src="https://host/o/...gif">. */
export function pixels(keys: Buffer[], host: string, html: string): TrackingToken[] {
  const re = new RegExp(`src="https://${host.replace(/\./g, '\\.')}/o/([A-Za-z0-9_.-]+)\\.gif"`, 'g');
  return [...html.matchAll(re)].map((m) => {
    const token = decodeToken(keys, m[1]!);
    if (!token) throw new Error(`pixel does not verify: ${m[1]}`);
    return token;
  });
}

/** Text outside tags, whitespace collapsed: what the reader reads. */
export function visibleText(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export async function parsed(raw: Buffer) {
  return simpleParser(raw, { skipHtmlToText: true });
}
