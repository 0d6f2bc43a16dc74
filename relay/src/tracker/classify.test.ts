import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BURST_WINDOW_MS, RecentClicks, classifyClick, classifyOpen } from './classify.ts';

describe('opens: human or machine', () => {
  const cases: [string, string, string, 'human' | 'machine'][] = [
    [
      'Apple Mail on macOS',
      'GET',
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)',
      'human',
    ],
    [
      'Thunderbird',
      'GET',
      'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1',
      'human',
    ],
    [
      'Outlook desktop',
      'GET',
      'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)',
      'human',
    ],
    [
      'Gmail image proxy',
      'GET',
      'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)',
      'machine',
    ],
    [
      'Yahoo mail proxy',
      'GET',
      'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html',
      'machine',
    ],
    ['Apple Mail Privacy Protection (bare Mozilla/5.0)', 'GET', 'Mozilla/5.0', 'machine'],
    ['no user agent', 'GET', '', 'machine'],
    ['a HEAD request', 'HEAD', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', 'machine'],
    ['curl', 'GET', 'curl/8.5.0', 'machine'],
  ];
  for (const [name, method, userAgent, expected] of cases)
    test(`${name}: ${expected}`, () => assert.equal(classifyOpen({ method, userAgent }), expected));
});

describe('clicks: human or machine', () => {
  const browser = {
    method: 'GET',
    userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148',
  };
  test('a browser following one link: human', () => assert.equal(classifyClick(browser, 1), 'human'));
  test('a scanner user agent: machine', () =>
    assert.equal(
      classifyClick({ method: 'GET', userAgent: 'Mozilla/5.0 (compatible; Barracuda Sentinel)' }, 1),
      'machine',
    ));
  test('the third distinct link of a message within the window: machine', () =>
    assert.equal(classifyClick(browser, 3), 'machine'));
});

describe('RecentClicks: the burst rule', () => {
  test('distinct links within the window count, the same link twice counts once', () => {
    const r = new RecentClicks();
    assert.equal(r.record('m1', 'a', 0), 1);
    assert.equal(r.record('m1', 'a', 10), 1);
    assert.equal(r.record('m1', 'b', 20), 2);
    assert.equal(r.record('m1', 'c', 30), 3);
    assert.equal(r.record('m2', 'a', 40), 1, 'another message has its own count');
  });
  test('links older than the window are forgotten', () => {
    const r = new RecentClicks();
    r.record('m', 'a', 0);
    r.record('m', 'b', 1);
    assert.equal(r.record('m', 'c', BURST_WINDOW_MS + 2), 1);
  });
  test('bounded: past maxMessages the oldest message is forgotten', () => {
    const r = new RecentClicks(2);
    r.record('m1', 'a', 0);
    r.record('m1', 'b', 0);
    r.record('m2', 'a', 0);
    r.record('m3', 'a', 0);
    assert.equal(r.record('m1', 'c', 1), 1, 'm1 was forgotten');
  });
});
