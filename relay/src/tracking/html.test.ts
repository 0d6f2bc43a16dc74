import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { attributeUrl, rewriteHtml, type HtmlPlan } from './html.ts';

const plan = (over: Partial<HtmlPlan> = {}): HtmlPlan => ({
  click: (url) => `https://t.example/c/${Buffer.from(url).toString('base64url')}`,
  pixel: 'https://t.example/o/p.gif',
  keep: new Set(),
  ...over,
});
const tracked = (url: string) => `https://t.example/c/${Buffer.from(url).toString('base64url')}`;

describe('rewriteHtml: which links become tracked', () => {
  const cases: { name: string; html: string; expected: string; keep?: string[] }[] = [
    {
      name: 'double quotes',
      html: '<a href="https://a.example/x">',
      expected: `<a href="${tracked('https://a.example/x')}">`,
    },
    {
      name: 'single quotes',
      html: "<a href='https://a.example/x'>",
      expected: `<a href='${tracked('https://a.example/x')}'>`,
    },
    {
      name: 'no quotes: stays unquoted',
      html: '<a href=https://a.example/x>',
      expected: `<a href=${tracked('https://a.example/x')}>`,
    },
    {
      name: 'a tag left open at the end is no tag: what follows its quote is not a link',
      html: '<a href="<a href=https://a.example/x>',
      expected: '<a href="<a href=https://a.example/x>',
    },
    {
      name: "a link written inside another tag's attribute value is no link",
      html: '<img alt="<a href=https://a.example/x>">',
      expected: '<img alt="<a href=https://a.example/x>">',
    },
    {
      name: 'href= inside another attribute value is not the href',
      html: '<a title="see href=https://a.example/t" href="https://a.example/x">',
      expected: `<a title="see href=https://a.example/t" href="${tracked('https://a.example/x')}">`,
    },
    {
      name: 'a link in an Outlook conditional comment is tracked within the comment',
      html: '<!--[if mso]><a href="https://a.example/x">b</a><![endif]-->',
      expected: `<!--[if mso]><a href="${tracked('https://a.example/x')}">b</a><![endif]-->`,
    },
    {
      name: 'text of a <style> element is not markup',
      html: '<style>/* <a href="https://a.example/x"> */</style>',
      expected: '<style>/* <a href="https://a.example/x"> */</style>',
    },
    {
      name: 'upper-case tag and attribute, other attributes kept',
      html: '<A class="b" HREF="https://a.example/x" target=_blank>',
      expected: `<A class="b" HREF="${tracked('https://a.example/x')}" target=_blank>`,
    },
    {
      name: '&amp; in the URL is decoded before signing',
      html: '<a href="https://a.example/?a=1&amp;b=2&#38;c=3">',
      expected: `<a href="${tracked('https://a.example/?a=1&b=2&c=3')}">`,
    },
    {
      name: 'an <area> of an image map',
      html: '<area shape="rect" href="https://a.example/m">',
      expected: `<area shape="rect" href="${tracked('https://a.example/m')}">`,
    },
    {
      name: 'a > inside a quoted attribute does not end the tag',
      html: '<a title="1 > 0" href="https://a.example/x">',
      expected: `<a title="1 > 0" href="${tracked('https://a.example/x')}">`,
    },
    {
      name: 'mailto: untouched',
      html: '<a href="mailto:a@b.example">',
      expected: '<a href="mailto:a@b.example">',
    },
    { name: 'tel: untouched', html: '<a href="tel:+331234">', expected: '<a href="tel:+331234">' },
    { name: 'anchor untouched', html: '<a href="#top">', expected: '<a href="#top">' },
    { name: 'relative link untouched', html: '<a href="/x">', expected: '<a href="/x">' },
    { name: 'template placeholder untouched', html: '<a href="{{url}}">', expected: '<a href="{{url}}">' },
    {
      name: 'unsubscribe link untouched',
      html: '<a href="https://a.example/Unsubscribe?u=1">',
      expected: '<a href="https://a.example/Unsubscribe?u=1">',
    },
    {
      name: 'opt-out link untouched',
      html: '<a href="https://a.example/opt-out">',
      expected: '<a href="https://a.example/opt-out">',
    },
    {
      name: 'a List-Unsubscribe target untouched',
      html: '<a href="https://a.example/l?u=1">',
      expected: '<a href="https://a.example/l?u=1">',
      keep: ['https://a.example/l?u=1'],
    },
    {
      name: 'data-notrack untouched',
      html: '<a data-notrack href="https://a.example/x">',
      expected: '<a data-notrack href="https://a.example/x">',
    },
    {
      name: 'an unknown named entity: URL unknown, untouched',
      html: '<a href="https://a.example/?a=1&copy;">',
      expected: '<a href="https://a.example/?a=1&copy;">',
    },
    {
      name: 'non-ASCII bytes in the URL untouched',
      html: '<a href="https://a.example/caf\xe9">',
      expected: '<a href="https://a.example/caf\xe9">',
    },
    {
      name: 'an <abbr> is not an <a>',
      html: '<abbr href="https://a.example/x">',
      expected: '<abbr href="https://a.example/x">',
    },
    { name: 'a link without href untouched', html: '<a name="x">', expected: '<a name="x">' },
  ];
  for (const c of cases)
    test(c.name, () => {
      const r = rewriteHtml(c.html, plan({ pixel: undefined, keep: new Set(c.keep ?? []) }));
      assert.equal(r.html, c.expected);
      assert.equal(r.links, c.expected === c.html ? 0 : 1);
    });
  test('clicks off: no link changes', () => {
    const html = '<a href="https://a.example/x">';
    assert.equal(rewriteHtml(html, plan({ click: undefined, pixel: undefined })).html, html);
  });
});

describe('rewriteHtml: the open pixel', () => {
  const img =
    '<img src="https://t.example/o/p.gif" width="1" height="1" alt="" style="border:0;width:1px;height:1px">';
  const cases: { name: string; html: string; expected: string }[] = [
    {
      name: 'before </body>',
      html: '<html><body>x</body></html>',
      expected: `<html><body>x${img}</body></html>`,
    },
    {
      name: 'before the last </BODY> (case-insensitive)',
      html: '<body>a</body><body>b</BODY >',
      expected: `<body>a</body><body>b${img}</BODY >`,
    },
    {
      name: 'before a tag left open at the end, not inside it',
      html: '<p>x</p><a href="y',
      expected: `<p>x</p>${img}<a href="y`,
    },
    {
      name: 'a </body> inside an attribute value is not the end of the body',
      html: '<body><img alt="</body>">x',
      expected: `<body><img alt="</body>">x${img}`,
    },
    { name: 'appended without </body>', html: '<p>x</p>', expected: `<p>x</p>${img}` },
  ];
  for (const c of cases)
    test(c.name, () => {
      const r = rewriteHtml(c.html, plan({ click: undefined }));
      assert.equal(r.html, c.expected);
      assert.equal(r.pixels, 1);
    });
  test('opens off: no pixel', () =>
    assert.equal(rewriteHtml('<body></body>', plan({ pixel: undefined })).pixels, 0));
});

describe('attributeUrl', () => {
  const cases: [string, string | undefined][] = [
    ['https://a/?a=1&amp;b=2', 'https://a/?a=1&b=2'],
    ['https://a/?a=1&b=2', 'https://a/?a=1&b=2'],
    ['https://a/&#x26;&#38;&quot;', 'https://a/&&"'],
    ['https://a/&nbsp;', undefined],
    ['  https://a/  ', 'https://a/'],
  ];
  for (const [value, expected] of cases)
    test(`${value} -> ${expected}`, () => assert.equal(attributeUrl(value), expected));
});
