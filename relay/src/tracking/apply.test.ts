import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadLinkTracking, trackingKey } from './apply.ts';
import { validateConfig } from '../config/validate.ts';

const key = Buffer.from('0123456789abcdef-key');
const config = (over: { tracking?: boolean; opens?: boolean } = {}) => ({
  sendingDomains: [
    {
      domain: 'a.example',
      suspended: false,
      tracking: { opens: over.opens ?? true, clicks: false, host: 't.a.example' },
    },
    { domain: 'b.example', suspended: false },
  ],
  ...(over.tracking === false ? {} : { tracking: { keyFile: 'k', maxMessageBytes: 100, maxHtmlBytes: 100 } }),
  limits: { maxMessageSize: 1000 } as never,
});

describe('loadLinkTracking', () => {
  test('a tracking domain and a readable key: tracking with that key', () => {
    const r = loadLinkTracking(config(), undefined, () => key);
    assert.ok(r.tracking?.key.equals(key));
    assert.equal(r.error, undefined);
  });
  test('no domain tracks (opens and clicks off): no tracking', () => {
    assert.equal(loadLinkTracking(config({ opens: false }), undefined, () => key).tracking, undefined);
  });
  test('an unreadable key keeps the previous one and reports the error', () => {
    const previous = loadLinkTracking(config(), undefined, () => key).tracking;
    const r = loadLinkTracking(config(), previous, () => {
      throw new Error('ENOENT');
    });
    assert.ok(r.tracking?.key.equals(key));
    assert.match(r.error ?? '', /ENOENT/);
  });
  test('a short key with no previous one: no tracking (mail goes out untracked), error reported', () => {
    const r = loadLinkTracking(config(), undefined, () => Buffer.from('short'));
    assert.equal(r.tracking, undefined);
    assert.match(r.error ?? '', /shorter than 16 bytes/);
  });
  test('a trailing newline is not part of the key', () => {
    assert.equal(trackingKey(Buffer.from('0123456789abcdef\n')).toString(), '0123456789abcdef');
  });
});

describe('relay config: tracking', () => {
  const base = { sendingDomains: [{ domain: 'a.example', tracking: { opens: true, host: 't.a.example' } }] };
  const cases: { name: string; raw: Record<string, unknown>; error?: RegExp }[] = [
    { name: 'a tracking domain needs tracking.keyFile', raw: base, error: /tracking\.keyFile/ },
    { name: 'with a key file: valid, limits defaulted', raw: { ...base, tracking: { keyFile: '/k' } } },
    {
      name: 'a host that is not a host name is refused',
      raw: {
        sendingDomains: [{ domain: 'a.example', tracking: { opens: true, host: 'http://x' } }],
        tracking: { keyFile: '/k' },
      },
      error: /tracking\.host/,
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const v = validateConfig(c.raw);
      if (c.error) {
        assert.equal(v.ok, false);
        assert.match(JSON.stringify(!v.ok && v.errors), c.error);
      } else {
        assert.ok(v.ok, JSON.stringify(v));
        assert.deepEqual(v.config.tracking, {
          keyFile: '/k',
          maxMessageBytes: 10 << 20,
          maxHtmlBytes: 1 << 20,
        });
        assert.equal(v.config.sendingDomains[0]?.tracking?.clicks, false);
      }
    });
});
