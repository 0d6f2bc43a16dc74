// Link tracking on real newsletters, in process: the rewritten message parses (mailparser, an
// independent parser), its text, attachments and visible HTML text are unchanged, every tracked
// link resolves through its signed token to the original URL, untouched links stay byte for byte,
// one open pixel per HTML body; and a fast-check fuzz over generated HTML and MIME shapes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LinkTracking, type TrackingOutcome } from '../../relay/src/tracking/apply.ts';
import { newsletters, newsletterOfSize } from '../helpers/tracking/newsletters.ts';
import { hrefs, parsed, pixels, resolveLink, visibleText } from '../helpers/tracking/links.ts';

const key = Buffer.from('test-tracking-key-0123456789abcdef');
const host = 't.shop.example';
const limits = { maxMessageBytes: 10 << 20, maxHtmlBytes: 1 << 20, maxOutputBytes: 25 << 20 };
const tracking = (over: { opens?: boolean; clicks?: boolean } = {}, l = limits) =>
  new LinkTracking(key, new Map([['shop.example', { opens: true, clicks: true, host, ...over }]]), l);

function withoutPixel(html: string): string {
  return html.replace(/<img src="https:\/\/t\.shop\.example\/o\/[^"]*"[^>]*>/g, '');
}

describe('tracking real newsletters', () => {
  for (const n of newsletters()) {
    test(n.name, async () => {
      const { body, outcome } = await tracking().apply(n.raw, 'bounce@shop.example');
      const before = await parsed(n.raw);
      const after = await parsed(body);
      if (n.htmlSkipped) {
        assert.equal(outcome.result, 'no-html');
        assert.ok(body.equals(n.raw), 'left byte for byte');
        return;
      }
      assert.equal(outcome.result, 'rewritten');
      assert.doesNotMatch(body.toString('latin1'), /[^\r]\n/, 'no bare LF');
      assert.equal(after.text, before.text, 'text/plain unchanged');
      assert.deepEqual(
        after.attachments.map((a) => [a.contentType, a.filename, a.content.toString('base64')]),
        before.attachments.map((a) => [a.contentType, a.filename, a.content.toString('base64')]),
        'attachments unchanged',
      );
      const html = after.html || '';
      assert.equal(visibleText(withoutPixel(html)), visibleText(before.html || ''), 'visible text unchanged');
      const links = hrefs(html).map((h) => resolveLink([key], host, h));
      assert.deepEqual(
        links.map((l) => l.url),
        hrefs(before.html || ''),
        'every link resolves to its original, in order',
      );
      const trackedUrls = links.filter((l) => l.token).map((l) => l.url);
      assert.deepEqual([...new Set(trackedUrls)].sort(), [...new Set(n.trackable)].sort(), 'tracked links');
      for (const u of n.untouched) assert.ok(!trackedUrls.includes(u), `${u} is not tracked`);
      for (const l of links)
        if (l.token?.kind === 'click') {
          assert.equal(l.token.domain, 'shop.example');
          assert.match(l.token.messageId, /@shop\.example$/);
        }
      const opens = pixels([key], host, html);
      assert.equal(opens.length, 1, 'one open pixel');
      assert.equal(outcome.result === 'rewritten' && outcome.links, links.filter((l) => l.token).length);
    });
  }
});

describe('tracking decisions', () => {
  const n = newsletters()[1]!;
  const cases: {
    name: string;
    raw: Buffer;
    from?: string;
    t?: LinkTracking;
    expected: TrackingOutcome['result'];
  }[] = [
    {
      name: 'a domain that does not track: untracked',
      raw: Buffer.from(
        n.raw.toString('latin1').replaceAll('news@shop.example', 'news@other.example'),
        'latin1',
      ),
      from: 'b@other.example',
      expected: 'untracked',
    },
    {
      name: 'already DKIM-signed by the sender for the domain: left alone',
      raw: Buffer.concat([
        Buffer.from(
          'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d=Shop.Example; s=s1; h=from; bh=x; b=y\r\n',
        ),
        n.raw,
      ]),
      expected: 'signed-by-sender',
    },
    {
      name: 'DKIM-signed for another domain (an ESP signature): rewritten',
      raw: Buffer.concat([
        Buffer.from('DKIM-Signature: v=1; d=esp.example; s=s1; h=from; bh=x; b=y\r\n'),
        n.raw,
      ]),
      expected: 'rewritten',
    },
    {
      name: 'over maxMessageBytes: too-large',
      raw: n.raw,
      t: tracking({}, { ...limits, maxMessageBytes: 100 }),
      expected: 'too-large',
    },
    {
      name: 'rewritten message over the pool maxMessageSize: too-large',
      raw: n.raw,
      t: tracking({}, { ...limits, maxOutputBytes: n.raw.length }),
      expected: 'too-large',
    },
    {
      name: 'HTML part over maxHtmlBytes: no-html',
      raw: n.raw,
      t: tracking({}, { ...limits, maxHtmlBytes: 100 }),
      expected: 'no-html',
    },
    {
      name: 'plain text only: no-html',
      raw: Buffer.from('From: a@shop.example\r\nSubject: x\r\n\r\nhttps://shop.example/\r\n'),
      expected: 'no-html',
    },
  ];
  for (const c of cases)
    test(c.name, async () => {
      const raw = c.raw;
      const r = await (c.t ?? tracking()).apply(raw, c.from ?? 'bounce@shop.example');
      assert.equal(r.outcome.result, c.expected);
      if (c.expected !== 'rewritten') assert.ok(r.body.equals(raw), 'the message is left byte for byte');
    });
  test('opens only: a pixel, links untouched', async () => {
    const r = await tracking({ clicks: false }).apply(n.raw, 'b@shop.example');
    const html = (await parsed(r.body)).html || '';
    assert.equal(pixels([key], host, html).length, 1);
    assert.deepEqual(hrefs(html), hrefs((await parsed(n.raw)).html || ''));
  });
  test('the same message gives the same rewritten bytes on every attempt (retries)', async () => {
    const raw = newsletterOfSize(30_000);
    const a = await tracking().apply(raw, 'b@shop.example');
    const b = await tracking().apply(raw, 'b@shop.example');
    assert.ok(a.body.equals(b.body));
  });
});

// Fuzz: HTML assembled from fragments that stress the tag and attribute scanner (quotes, '>' in
// attributes, entities, non-ASCII bytes, unclosed tags), inside varied MIME shapes.
const fragment = fc.oneof(
  fc.constantFrom(
    '<a href="https://x.example/a?b=1&amp;c=2">',
    "<a href='https://x.example/s'>",
    '<a href=https://x.example/u>',
    '<a title="a > b" href="https://x.example/t">',
    '<a href="mailto:a@b">',
    '<a href="#x">',
    '<a href="https://x.example/unsubscribe">',
    '<a href="https://x.example/&nbsp;">',
    '<A HREF="HTTPS://X.EXAMPLE/UP">',
    '<area href="https://x.example/m">',
    '</a>',
    '<a href="',
    '<body>',
    '</body>',
    '<!-- <a href="https://x.example/c"> -->',
    '\r\n',
    '=',
    '\xe9\xff\x00',
  ),
  fc.string({ maxLength: 20 }),
  fc.webUrl().map((u) => `<a href="${u.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}">`),
);
const htmlArb = fc.array(fragment, { maxLength: 40 }).map((parts) => parts.join(''));
const shapeArb = fc.record({
  encoding: fc.constantFrom('7bit', '8bit', 'quoted-printable', 'base64'),
  charset: fc.constantFrom('utf-8', 'iso-8859-1', 'windows-1252', 'us-ascii'),
  multipart: fc.boolean(),
});

function encode(body: Buffer, encoding: string): string {
  if (encoding === 'base64') return (body.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  if (encoding === 'quoted-printable')
    return body
      .toString('latin1')
      .replace(
        /[^\x21-\x3c\x3e-\x7e]/g,
        (c) => '=' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'),
      )
      .replace(/.{70}(?=.)/g, '$&=\r\n');
  // 7bit/8bit bodies: line breaks as CRLF (what the relay accepts), NUL kept out.
  return body
    .toString('latin1')
    .replace(/\r?\n|\r/g, '\r\n')
    .replaceAll('\0', ' ');
}

describe('fuzz', () => {
  test('any HTML in any shape: parses, text untouched, every link resolves to its original', async () => {
    await fc.assert(
      fc.asyncProperty(htmlArb, shapeArb, async (html, shape) => {
        const part = `Content-Type: text/html; charset=${shape.charset}\r\nContent-Transfer-Encoding: ${shape.encoding}\r\n\r\n${encode(Buffer.from(html, 'latin1'), shape.encoding)}\r\n`;
        const head =
          'From: a@shop.example\r\nTo: b@example.org\r\nSubject: f\r\nMessage-ID: <f@shop.example>\r\nMIME-Version: 1.0\r\n';
        const raw = Buffer.from(
          shape.multipart
            ? `${head}Content-Type: multipart/alternative; boundary="fz"\r\n\r\n--fz\r\nContent-Type: text/plain\r\n\r\nplain <a href="https://x.example/p">\r\n--fz\r\n${part}--fz--\r\n`
            : head + part,
          'latin1',
        );
        const { body, outcome } = await tracking().apply(raw, 'a@shop.example');
        assert.equal(outcome.result, 'rewritten');
        assert.doesNotMatch(body.toString('latin1'), /[^\r]\n/, 'no bare LF');
        const before = await parsed(raw);
        const after = await parsed(body);
        // mailparser derives no text from a single HTML part; with a text/plain part, it must not change.
        if (shape.multipart) assert.equal(after.text, before.text);
        const original = hrefs(before.html || '');
        const resolved = hrefs(withoutPixel(after.html || '')).map((h) => resolveLink([key], host, h).url);
        assert.deepEqual(resolved, original);
        assert.equal(pixels([key], host, after.html || '').length, 1);
      }),
      { numRuns: 300 },
    );
  });
});
