import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRelayConfig, restartChecksum } from './relayconfig.ts';
import type { RelayConfigOptions } from './relayconfig.ts';
import { validateConfig } from '../../../relay/src/config/validate.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const options = (
  spec: Partial<RelayPoolSpec>,
  extra: Partial<RelayConfigOptions> = {},
): RelayConfigOptions => ({
  pool: withDefaults(relayPool(spec)).resource,
  domains: [],
  rateLimits: [],
  hasUsers: false,
  hasSmarthostCredentials: false,
  ...extra,
});

test('rendered config passes the relay validation', async (t) => {
  const cases: {
    name: string;
    o: RelayConfigOptions;
    check: (c: NonNullable<ReturnType<typeof validateConfig> & { ok: true }>['config']) => void;
  }[] = [
    {
      name: 'defaults',
      o: options({}),
      check: (c) => {
        assert.equal(c.listeners.smtp.port, 25);
        assert.equal(c.delivery.mode, 'direct');
        assert.deepEqual(c.delivery.tlsPolicy, { default: 'opportunistic', destinations: [] });
        assert.equal(c.limits.maxMessageSize, 25 * 1024 * 1024);
        assert.equal(c.spool.dir, '/var/spool/mailfleet');
        assert.equal(c.http.port, 8080);
        // Relative to the config file: /etc/mailfleet/admin-tokens/<role>, where pod.ts projects them.
        assert.deepEqual(c.http.tokens, [
          { name: 'read', role: 'read', file: 'admin-tokens/read' },
          { name: 'admin', role: 'admin', file: 'admin-tokens/admin' },
        ]);
      },
    },
    {
      name: 'direct delivery TLS policy: default and per-destination overrides, enum mapping',
      o: options({
        delivery: {
          tlsPolicy: {
            default: 'Encrypt',
            destinations: [
              { domain: 'partner.example', policy: 'Verify' },
              { domain: '*.legacy.example', policy: 'Opportunistic' },
            ],
          },
        },
      }),
      check: (c) => {
        assert.equal(c.delivery.tlsPolicy?.default, 'encrypt');
        assert.deepEqual(c.delivery.tlsPolicy?.destinations, [
          { domain: 'partner.example', policy: 'verify' },
          { domain: '*.legacy.example', policy: 'opportunistic' },
        ]);
      },
    },
    {
      name: 'smarthost with credentials, enum mapping',
      o: options(
        {
          delivery: {
            mode: 'Smarthost',
            smarthost: { host: 'relay.example.net', tls: 'StartTLSOpportunistic' },
          },
        },
        { hasSmarthostCredentials: true },
      ),
      check: (c) => {
        assert.equal(c.delivery.mode, 'smarthost');
        assert.equal(c.delivery.smarthost?.tls, 'starttls-opportunistic');
        assert.equal(c.delivery.smarthost?.port, 587);
        assert.equal(c.delivery.smarthost?.credentialsFile, 'smarthost.yaml');
      },
    },
    {
      name: 'TLS, auth with users, domains and limits',
      o: options(
        {
          tls: { secretName: 't', minVersion: 'TLSv1.3' },
          auth: { mode: 'Optional' },
          listeners: { submission: { enabled: true } },
          allowedNetworks: ['10.0.0.0/8'],
        },
        {
          hasUsers: true,
          domains: [
            { domain: 'example.com', suspended: true, dkim: { selector: 's1', algorithm: 'ed25519-sha256' } },
          ],
          rateLimits: [
            {
              name: 'yahoo',
              match: { senderDomains: [], recipientDomains: ['yahoo.com'], senderAddresses: [] },
              rate: { messages: 10, per: 'minute' },
              burst: 5,
              onExceed: 'defer',
              maxConnections: 3,
            },
            {
              name: 'google-connections',
              match: {
                senderDomains: [],
                recipientDomains: [],
                senderAddresses: [],
                recipientMXHosts: ['*.google.com'],
              },
              onExceed: 'defer',
              maxConnections: 4,
            },
          ],
        },
      ),
      check: (c) => {
        assert.equal(c.tls?.certFile, 'tls/tls.crt');
        assert.equal(c.tls?.minVersion, 'TLSv1.3');
        assert.equal(c.auth.mode, 'Optional');
        assert.equal(c.auth.usersFile, 'users');
        assert.equal(c.listeners.submission.enabled, true);
        assert.deepEqual(c.allowedNetworks, ['10.0.0.0/8']);
        assert.deepEqual(c.sendingDomains, [
          {
            domain: 'example.com',
            suspended: true,
            dkim: { selector: 's1', algorithm: 'ed25519-sha256', keyFile: 'dkim.example.com.s1.pem' },
          },
        ]);
        assert.equal(c.rateLimits[0]?.rate?.per, 'minute');
        assert.equal(c.rateLimits[0]?.maxConnections, 3);
        // A connection-only limit has no rate, and MX rollup reaches the relay.
        assert.equal(c.rateLimits[1]?.rate, undefined);
        assert.equal(c.rateLimits[1]?.maxConnections, 4);
        assert.deepEqual(c.rateLimits[1]?.match.recipientMXHosts, ['*.google.com']);
      },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const result = validateConfig(renderRelayConfig(c.o), { defaultHostname: 'relay-0' });
      assert.equal(result.ok, true, JSON.stringify(!result.ok && result.errors));
      if (result.ok) c.check(result.config);
    });
  }
});

test('the restart checksum moves for listeners, not for domains or limits', () => {
  const base = restartChecksum(renderRelayConfig(options({})));
  const withDomain = restartChecksum(
    renderRelayConfig(options({}, { domains: [{ domain: 'a.com', suspended: false }] })),
  );
  const otherLimits = restartChecksum(renderRelayConfig(options({ limits: { maxRecipients: 10 } })));
  const otherPort = restartChecksum(renderRelayConfig(options({ listeners: { smtp: { port: 2525 } } })));
  assert.equal(withDomain, base);
  assert.equal(otherLimits, base);
  assert.notEqual(otherPort, base);
});
