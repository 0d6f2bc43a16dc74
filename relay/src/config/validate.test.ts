import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from './validate.ts';

function errorsOf(raw: unknown): string[] {
  const result = validateConfig(raw);
  assert.equal(result.ok, false, 'expected validation to fail');
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
}

function configOf(raw: unknown) {
  const result = validateConfig(raw, { defaultHostname: 'relay-0.example.net' });
  if (!result.ok) assert.fail(JSON.stringify(result.errors));
  return result.config;
}

const smarthostConfig = (port: unknown) => ({
  delivery: { mode: 'smarthost', smarthost: { host: '127.0.0.1', port, tls: 'starttls-required' } },
});

describe('validateConfig', () => {
  test('a minimal config gets every default', () => {
    const config = configOf({});
    assert.equal(config.listeners.smtp.port, 25);
    assert.equal(config.listeners.smtps.enabled, false);
    assert.equal(config.auth.mode, 'Disabled');
    assert.equal(config.delivery.mode, 'direct');
    assert.equal(config.delivery.ehloName, 'relay-0.example.net');
    assert.equal(config.hostname, 'relay-0.example.net');
    assert.equal(config.retry.firstRetry, '5m');
    assert.equal(config.retry.maxBackoff, '1h');
    assert.equal(config.retry.maxQueueLifetime, '5d');
    assert.equal(config.dsn.enabled, true);
    assert.equal(config.accounting.file, '/var/spool/mailfleet/accounting.jsonl');
    assert.deepEqual(config.rateLimits, []);
  });

  test('a smarthost port out of range names the field', () => {
    assert.deepEqual(errorsOf(smarthostConfig(70000)), [
      'delivery.smarthost.port: must be an integer 1-65535',
    ]);
  });

  test('a smarthost port that is a string names the field', () => {
    assert.deepEqual(errorsOf(smarthostConfig('25')), [
      'delivery.smarthost.port: must be an integer 1-65535',
    ]);
  });

  test('smarthost mode without a smarthost is refused', () => {
    assert.deepEqual(errorsOf({ delivery: { mode: 'smarthost' } }), [
      'delivery.smarthost: is required when delivery.mode is smarthost',
    ]);
  });

  test('an unknown field is reported as a probable typo', () => {
    assert.deepEqual(errorsOf({ spool: { directory: '/x' } }), ['spool.directory: unknown field']);
  });

  test('a bad CIDR in allowedNetworks names the list index', () => {
    assert.deepEqual(errorsOf({ allowedNetworks: ['10.0.0.0/8', '10.0.0.0/33'] }), [
      'allowedNetworks[1]: prefix length must be 0-32',
    ]);
  });

  test('a bad duration names the field', () => {
    assert.deepEqual(errorsOf({ retry: { firstRetry: 'soon' } }), [
      'retry.firstRetry: must be a duration such as 30s, 5m, 1h or 5d',
    ]);
  });

  test('smtps without tls is refused', () => {
    assert.deepEqual(errorsOf({ listeners: { smtps: { enabled: true } } }), [
      'listeners.smtps.enabled: implicit TLS needs tls.certFile and tls.keyFile',
    ]);
  });

  test('auth Required without a users file is refused', () => {
    assert.deepEqual(errorsOf({ auth: { mode: 'Required' } }), [
      'auth.usersFile: is required when auth.mode is Required',
    ]);
  });

  test('a sending domain listed twice is refused', () => {
    const raw = { sendingDomains: [{ domain: 'example.com' }, { domain: 'Example.com' }] };
    assert.deepEqual(errorsOf(raw), ['sendingDomains[1].domain: example.com is listed twice']);
  });

  test('dkim with an unknown algorithm names the field', () => {
    const raw = {
      sendingDomains: [{ domain: 'a.com', dkim: { selector: 's', algorithm: 'md5', keyFile: 'k' } }],
    };
    assert.deepEqual(errorsOf(raw), [
      'sendingDomains[0].dkim.algorithm: must be one of rsa-sha256, ed25519-sha256',
    ]);
  });

  test('two listeners on the same port are refused', () => {
    const raw = { listeners: { submission: { enabled: true, port: 25 } } };
    assert.deepEqual(errorsOf(raw), ['listeners.submission.port: 25 is already used by listeners.smtp']);
  });

  test('every error is reported at once', () => {
    const errors = errorsOf({ http: { port: -1 }, limits: { maxRecipients: 0 }, drainTimeout: 5 });
    assert.equal(errors.length, 3);
  });

  test('rate limits default burst to the rate and onExceed to defer', () => {
    const config = configOf({
      rateLimits: [
        { name: 'gmail', match: { recipientDomains: ['gmail.com'] }, rate: { messages: 10, per: 'minute' } },
      ],
    });
    assert.equal(config.rateLimits[0]?.burst, 10);
    assert.equal(config.rateLimits[0]?.onExceed, 'defer');
    assert.deepEqual(config.rateLimits[0]?.match.senderDomains, []);
  });

  test('a rate limit without a rate is refused', () => {
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'x' }] }), ['rateLimits[0].rate: is required']);
  });

  test('dns servers accept ip:port', () => {
    assert.deepEqual(
      configOf({ delivery: { dns: { servers: ['127.0.0.1:5353', '::1'] } } }).delivery.dns.servers,
      ['127.0.0.1:5353', '::1'],
    );
    assert.deepEqual(errorsOf({ delivery: { dns: { servers: ['dns.google'] } } }), [
      'delivery.dns.servers[0]: "dns.google" is not ip, ip:port or [ipv6]:port',
    ]);
  });

  test('a non-mapping document is refused', () => {
    assert.deepEqual(errorsOf('hello'), ['(root): must be a mapping']);
  });
});
