import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkAddress } from './address.ts';

describe('checkAddress', () => {
  const refused: Array<[string, string, string]> = [
    ['a local part without a domain', 'postmaster', 'no-domain'],
    ['an address ending in @', 'user@', 'no-domain'],
    ['an address starting with @', '@example.com', 'no-domain'],
    ['the percent hack', 'victim%evil.example@relay.example.com', 'percent-hack'],
    ['a UUCP bang path', 'evil.example!victim@relay.example.com', 'bang-path'],
    ['a quoted local part hiding another address', '"victim@evil.example"@example.com', 'quoted-routing'],
    ['a quoted local part with a percent hack', '"victim%evil.example"@example.com', 'quoted-routing'],
    ['an unquoted second @', 'victim@evil.example@example.com', 'quoted-routing'],
    ['a source route left inside the address', '@relay.example:victim@evil.example', 'source-route'],
    ['a single-label domain', 'user@localhost', 'bad-domain'],
    ['a domain with an underscore label', 'user@bad_host.example.com', 'bad-domain'],
    ['a domain with an empty label', 'user@example..com', 'bad-domain'],
    ['a local part over 64 characters', `${'a'.repeat(65)}@example.com`, 'too-long'],
    [
      'a path over 256 characters',
      `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com`,
      'too-long',
    ],
  ];
  for (const [name, address, trick] of refused) {
    test(`refuses ${name}`, () => {
      assert.deepEqual(checkAddress(address), { ok: false, trick });
    });
  }
  const accepted: Array<[string, string, string]> = [
    ['a plain address', 'alice@example.com', 'example.com'],
    ['an upper-case domain, returned lower-case', 'Alice@EXAMPLE.COM', 'example.com'],
    ['a trailing dot on the domain', 'alice@example.com.', 'example.com'],
    ['a plus tag', 'alice+news@example.com', 'example.com'],
    ['a quoted local part with a space', '"alice smith"@example.com', 'example.com'],
    ['an IDN in punycode', 'alice@xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['an IPv4 address literal', 'alice@[192.0.2.1]', '[192.0.2.1]'],
  ];
  for (const [name, address, domain] of accepted) {
    test(`accepts ${name}`, () => {
      const result = checkAddress(address);
      assert.equal(result.ok, true);
      assert.equal(result.ok && result.domain, domain);
    });
  }
});
