import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clickUrl, decodeToken, encodeToken, isTrackableUrl, openUrl, type TrackingToken } from './links.ts';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const other = Buffer.from('fedcba9876543210fedcba9876543210');
const click: TrackingToken = {
  kind: 'click',
  domain: 'shop.example',
  messageId: 'a@b',
  url: 'https://shop.example/p?x=1&y=2',
};
const open: TrackingToken = { kind: 'open', domain: 'shop.example', messageId: 'a@b' };

describe('tracking tokens', () => {
  test('a click token and an open token decode to what was encoded', () => {
    assert.deepEqual(decodeToken([key], encodeToken(key, click)), click);
    assert.deepEqual(decodeToken([key], encodeToken(key, open)), open);
  });
  test('the previous key still verifies tokens it made (key rotation)', () => {
    assert.deepEqual(decodeToken([other, key], encodeToken(key, click)), click);
  });
  const token = encodeToken(key, click);
  const [payload, mac] = token.split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify(['c', 'shop.example', 'a@b', 'https://evil.example/'])).toString(
    'base64url',
  );
  const cases: { name: string; text: string; keys?: Buffer[] }[] = [
    { name: 'another key', text: token, keys: [other] },
    { name: 'a payload changed to another URL, MAC kept (open redirect attempt)', text: `${forged}.${mac}` },
    {
      name: 'a MAC with one character changed',
      text: `${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`,
    },
    { name: 'a truncated MAC', text: `${payload}.${mac.slice(0, 10)}` },
    { name: 'no MAC', text: payload },
    { name: 'empty', text: '' },
  ];
  for (const c of cases)
    test(`refused: ${c.name}`, () => assert.equal(decodeToken(c.keys ?? [key], c.text), undefined));
  test('a validly signed token for a javascript: URL is still refused', () => {
    const js = encodeToken(key, { ...click, url: 'javascript:alert(1)' });
    assert.equal(decodeToken([key], js), undefined);
  });
  test('the URLs point at the tracking host over HTTPS with URL-safe characters only', () => {
    const c = clickUrl(key, 't.shop.example', 'shop.example', 'a@b', click.url);
    const o = openUrl(key, 't.shop.example', 'shop.example', 'a@b');
    assert.match(c, /^https:\/\/t\.shop\.example\/c\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.match(o, /^https:\/\/t\.shop\.example\/o\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.gif$/);
  });
});

describe('isTrackableUrl', () => {
  const cases: [string, boolean][] = [
    ['https://shop.example/x', true],
    ['HTTP://shop.example', true],
    ['mailto:a@b', false],
    ['#top', false],
    ['/relative', false],
    ['javascript:alert(1)', false],
    ['https://', false],
    ['data:text/html,hi', false],
    ['{{unsubscribe_url}}', false],
  ];
  for (const [url, expected] of cases)
    test(`${url} -> ${expected}`, () => assert.equal(isTrackableUrl(url), expected));
});
