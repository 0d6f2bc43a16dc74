// Newsletters as mailing platforms send them, for the tracking tests and the benchmark: nested
// multiparts, quoted-printable and base64 bodies, UTF-8 and legacy charsets, attachments, a
// forwarded message, List-Unsubscribe. Built by hand (not by our own code) so that the rewriter
// meets MIME it did not produce; each builder returns the raw message.

export interface Newsletter {
  name: string;
  raw: Buffer;
  /** http(s) links a reader can click that tracking should rewrite (in the message's HTML body). */
  trackable: string[];
  /** Links that must stay exactly as they are. */
  untouched: string[];
  /** The HTML body is in a charset the rewriter must leave alone. */
  htmlSkipped?: boolean;
}

const CRLF = '\r\n';

function qp(text: Buffer): string {
  // Quoted-printable (RFC 2045 §6.7) written independently of libqp: every byte outside printable
  // ASCII and '=' escaped, soft line breaks keep lines under 76 characters.
  const lines: string[] = [];
  for (const line of text.toString('latin1').split('\r\n')) {
    let encoded = '';
    let current = '';
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      const last = i === line.length - 1;
      const piece =
        (c >= 33 && c <= 126 && c !== 61) || (c === 32 && !last)
          ? line[i]!
          : '=' + c.toString(16).toUpperCase().padStart(2, '0');
      if (current.length + piece.length > 75) {
        encoded += current + '=' + CRLF;
        current = '';
      }
      current += piece;
    }
    lines.push(encoded + current);
  }
  return lines.join(CRLF);
}

function b64(body: Buffer): string {
  return (
    body
      .toString('base64')
      .match(/.{1,76}/g)
      ?.join(CRLF) ?? ''
  );
}

function headers(subject: string, id: string, from = 'news@shop.example', extra: string[] = []): string {
  return [
    `From: Shop News <${from}>`,
    'To: reader@example.org',
    `Subject: ${subject}`,
    'Date: Sat, 05 Dec 2026 10:00:00 +0000',
    `Message-ID: <${id}@shop.example>`,
    'MIME-Version: 1.0',
    ...extra,
  ].join(CRLF);
}

/** The HTML of one article block; several make a newsletter of any size. */
function article(n: number): string {
  return (
    `<tr><td style="padding:16px;font-family:Arial,sans-serif"><h2>Offer ${n}</h2>` +
    `<p>Our product ${n} is back in stock, with free delivery this week only. ` +
    `Read what customers say about it and pick your colour before the weekend.</p>` +
    `<a href="https://shop.example/p/${n}?utm_source=news&amp;utm_medium=email&amp;utm_campaign=dec" ` +
    `style="background:#0a6;color:#fff;padding:8px 16px;text-decoration:none">See product ${n}</a>` +
    `</td></tr>\r\n`
  );
}

export function newsletterHtml(articles: number, tail = ''): string {
  let body = '';
  for (let n = 1; n <= articles; n++) body += article(n);
  return (
    '<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"><title>News</title></head>\r\n' +
    '<body style="margin:0"><table width="100%" cellpadding="0" cellspacing="0">\r\n' +
    '<tr><td><a href="#top" name="top">Top</a> | <a href="https://shop.example/view?id=42&amp;s=1">View in browser</a></td></tr>\r\n' +
    body +
    `<tr><td>${tail}<a href="mailto:help@shop.example">Write to us</a> | ` +
    `<a href='https://shop.example/account'>Your account</a> | ` +
    `<a href=https://shop.example/stores>Stores</a> | ` +
    `<a href="https://shop.example/unsubscribe?u=abc">Unsubscribe</a> | ` +
    `<a data-notrack href="https://shop.example/privacy">Privacy</a></td></tr>\r\n` +
    '</table></body></html>\r\n'
  );
}

function newsletterLinks(articles: number): { trackable: string[]; untouched: string[] } {
  const trackable = ['https://shop.example/view?id=42&s=1'];
  for (let n = 1; n <= articles; n++)
    trackable.push(`https://shop.example/p/${n}?utm_source=news&utm_medium=email&utm_campaign=dec`);
  trackable.push('https://shop.example/account', 'https://shop.example/stores');
  return {
    trackable,
    untouched: [
      '#top',
      'mailto:help@shop.example',
      'https://shop.example/unsubscribe?u=abc',
      'https://shop.example/privacy',
    ],
  };
}

const TEXT =
  'Offers this week: https://shop.example/p/1\r\nUnsubscribe: https://shop.example/unsubscribe?u=abc\r\n';
// A small PNG and PDF: binary attachments whose bytes must come out identical.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
const PDF = Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n\x00\xff\xfe', 'latin1');

/** multipart/mixed > (multipart/related > multipart/alternative > text QP, html QP; inline image) + PDF + an attached .html file. */
export function nestedUtf8(): Newsletter {
  const html = Buffer.from(
    newsletterHtml(
      4,
      'Grüße aus Köln — ¡ofertas! <a href="https://shop.example/list-unsub?u=abc">one-click</a><img src="cid:logo@shop"> ',
    ),
    'utf8',
  );
  const attachedHtml = '<html><body><a href="https://attached.example/x">attached</a></body></html>';
  const raw = [
    headers('Nested UTF-8', 'nested-utf8', 'news@shop.example', [
      'List-Unsubscribe: <https://shop.example/list-unsub?u=abc>, <mailto:unsub@shop.example>',
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      'Content-Type: multipart/mixed; boundary="=_mixed"',
    ]),
    '',
    'This is a multi-part message in MIME format.',
    '--=_mixed',
    'Content-Type: multipart/related; boundary="=_related"; type="multipart/alternative"',
    '',
    '--=_related',
    'Content-Type: multipart/alternative; boundary="=_alt"',
    '',
    '--=_alt',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qp(Buffer.from(TEXT, 'utf8')),
    '--=_alt',
    'Content-Type: text/html; charset="UTF-8"',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qp(html),
    '--=_alt--',
    '',
    '--=_related',
    'Content-Type: image/png',
    'Content-Transfer-Encoding: base64',
    'Content-ID: <logo@shop>',
    'Content-Disposition: inline; filename="logo.png"',
    '',
    b64(PNG),
    '--=_related--',
    '',
    '--=_mixed',
    'Content-Type: application/pdf; name="terms.pdf"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="terms.pdf"',
    '',
    b64(PDF),
    '--=_mixed',
    'Content-Type: text/html; charset=utf-8; name="invoice.html"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="invoice.html"',
    '',
    b64(Buffer.from(attachedHtml)),
    '--=_mixed--',
    '',
  ].join(CRLF);
  const links = newsletterLinks(4);
  return {
    name: 'nested multipart, QP, UTF-8, List-Unsubscribe, attachments',
    raw: Buffer.from(raw, 'latin1'),
    trackable: links.trackable,
    untouched: [...links.untouched, 'https://shop.example/list-unsub?u=abc', 'cid:logo@shop'],
  };
}

/** multipart/alternative with a base64 ISO-8859-1 HTML part and an 8bit text part. */
export function base64Latin1(): Newsletter {
  const html = Buffer.from(newsletterHtml(3, 'Café, crème brûlée, façade. '), 'latin1');
  const raw = [
    headers('Base64 Latin-1', 'b64-latin1', 'news@shop.example', [
      'Content-Type: multipart/alternative; boundary="alt-b64"',
    ]),
    '',
    '--alt-b64',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: 8bit',
    '',
    Buffer.from('Caf\xe9 offers: https://shop.example/p/1\r\n', 'latin1').toString('latin1'),
    '--alt-b64',
    'Content-Type: text/html; charset=ISO-8859-1',
    'Content-Transfer-Encoding: base64',
    '',
    b64(html),
    '--alt-b64--',
    '',
  ].join(CRLF);
  return {
    name: 'multipart/alternative, base64, ISO-8859-1',
    raw: Buffer.from(raw, 'latin1'),
    ...newsletterLinks(3),
  };
}

/** A single-part windows-1252 HTML message in 8bit (no MIME structure at all). */
export function singlePart1252(): Newsletter {
  const html = Buffer.from(newsletterHtml(2, '\x93Quoted\x94 \x80 prices. '), 'latin1');
  const raw = Buffer.concat([
    Buffer.from(
      headers('Single part', 'single-1252', 'news@shop.example', [
        'Content-Type: text/html; charset=windows-1252',
        'Content-Transfer-Encoding: 8bit',
      ]) +
        CRLF +
        CRLF,
      'latin1',
    ),
    html,
  ]);
  return { name: 'single-part text/html, 8bit, windows-1252', raw, ...newsletterLinks(2) };
}

/** Shift_JIS HTML (ASCII-compatible for markup) in QP, next to a forwarded message/rfc822 whose HTML stays as it is. */
export function shiftJisWithForward(): Newsletter {
  // "お知らせ" (notice) in Shift_JIS.
  const sjis = Buffer.from([0x82, 0xa8, 0x92, 0x6d, 0x82, 0xe7, 0x82, 0xb9]);
  const html = Buffer.concat([
    Buffer.from('<html><body><p>', 'latin1'),
    sjis,
    Buffer.from(
      '</p><a href="https://shop.example/jp?a=1&amp;b=2">JP</a>\r\n<a href="https://shop.example/unsubscribe">x</a></body></html>\r\n',
      'latin1',
    ),
  ]);
  const forwarded = [
    'From: other@elsewhere.example',
    'Subject: fwd',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><body><a href="https://elsewhere.example/original">kept</a></body></html>',
  ].join(CRLF);
  const raw = [
    headers('Shift_JIS', 'sjis', 'news@shop.example', ['Content-Type: multipart/mixed; boundary="mx"']),
    '',
    '--mx',
    'Content-Type: text/html; charset=Shift_JIS',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qp(html),
    '--mx',
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    forwarded,
    '--mx--',
    '',
  ].join(CRLF);
  return {
    name: 'Shift_JIS HTML in QP, forwarded message/rfc822',
    raw: Buffer.from(raw, 'latin1'),
    trackable: ['https://shop.example/jp?a=1&b=2'],
    untouched: ['https://shop.example/unsubscribe', 'https://elsewhere.example/original'],
  };
}

/** ISO-2022-JP HTML: a stateful 7-bit charset whose text bytes can look like markup; left alone. */
export function iso2022jp(): Newsletter {
  const html = Buffer.concat([
    Buffer.from('<html><body><p>\x1b$B', 'latin1'),
    Buffer.from('$*CN$i$;', 'latin1'), // お知らせ in JIS X 0208
    Buffer.from('\x1b(B</p><a href="https://shop.example/jis">JIS</a></body></html>\r\n', 'latin1'),
  ]);
  const raw = Buffer.concat([
    Buffer.from(
      headers('ISO-2022-JP', 'jis', 'news@shop.example', [
        'Content-Type: text/html; charset=ISO-2022-JP',
        'Content-Transfer-Encoding: 7bit',
      ]) +
        CRLF +
        CRLF,
      'latin1',
    ),
    html,
  ]);
  return {
    name: 'ISO-2022-JP HTML (left alone)',
    raw,
    trackable: [],
    untouched: ['https://shop.example/jis'],
    htmlSkipped: true,
  };
}

/** About `bytes` of newsletter (multipart/alternative, QP HTML), for the benchmark. */
export function newsletterOfSize(bytes: number, id = 'bench'): Buffer {
  let articles = 1;
  const build = () =>
    [
      headers('Weekly offers', id, 'news@shop.example', [
        'Content-Type: multipart/alternative; boundary="b"',
      ]),
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      TEXT,
      '--b',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      qp(Buffer.from(newsletterHtml(articles), 'utf8')),
      '--b--',
      '',
    ].join(CRLF);
  let raw = build();
  while (raw.length < bytes) {
    articles++;
    raw = build();
  }
  return Buffer.from(raw, 'latin1');
}

export function newsletters(): Newsletter[] {
  return [nestedUtf8(), base64Latin1(), singlePart1252(), shiftJisWithForward(), iso2022jp()];
}
