// The contract between the two programs, end to end in memory: what the operator renders into a
// pool's ConfigMap is a config the relay accepts, with the values the operator meant. These tests
// import both programs, which neither program may do (scripts/lint/imports.ts, programBoundaries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { renderRelayConfig } from '../../operator/src/desired/relay-config.ts';
import type { RelayConfigOptions } from '../../operator/src/desired/relay-config.ts';
import { desiredState } from '../../operator/src/desired/state.ts';
import type { KubeObject } from '../../operator/src/desired/types.ts';
import { withDefaults } from '../../operator/src/api/defaults.ts';
import type { RelayPoolSpec } from '../../operator/src/api/types.ts';
import { validateConfig } from '../../relay/src/config/validate.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
} from '../helpers/operator/fixtures.ts';

const kinds = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();

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
      name: 'spec.events: the webhook, its secret file, the outbox on the spool volume',
      o: options({
        events: { url: 'https://hooks.example.com/mail', secretRef: { name: 'hook' }, types: ['bounced'] },
      }),
      check: (c) =>
        assert.deepEqual(c.events, {
          url: 'https://hooks.example.com/mail',
          secretFile: 'events/secret',
          types: ['bounced'],
          batchSize: 100,
          batchInterval: '1s',
          dir: '/var/spool/mailfleet/events',
          maxBytes: 256 * 1024 * 1024,
          timeout: '10s',
          maxBackoff: '1m',
        }),
    },
    {
      name: 'defaults',
      o: options({}),
      check: (c) => {
        assert.equal(c.listeners.smtp.port, 25);
        assert.equal(c.delivery.mode, 'direct');
        assert.deepEqual(c.delivery.tlsPolicy, {
          default: 'dane-mta-sts',
          destinations: [],
          daneResolver: '',
        });
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
              { domain: 'bank.example', policy: 'MTASTS' },
            ],
          },
        },
      }),
      check: (c) => {
        assert.equal(c.delivery.tlsPolicy?.default, 'encrypt');
        assert.deepEqual(c.delivery.tlsPolicy?.destinations, [
          { domain: 'partner.example', policy: 'verify' },
          { domain: '*.legacy.example', policy: 'opportunistic' },
          { domain: 'bank.example', policy: 'mta-sts' },
        ]);
      },
    },
    {
      name: 'DANE with a validating resolver, and TLS reports (contactInfo defaults to from)',
      o: options({
        delivery: {
          tlsPolicy: {
            default: 'DANE',
            daneResolver: '10.0.0.53:53',
            destinations: [{ domain: 'partner.example', policy: 'DANEAndMTASTS' }],
          },
          tlsReports: { organizationName: 'Example', from: 'tlsrpt@example.com' },
        },
      }),
      check: (c) => {
        assert.equal(c.delivery.tlsPolicy?.default, 'dane');
        assert.equal(c.delivery.tlsPolicy?.daneResolver, '10.0.0.53:53');
        assert.deepEqual(c.delivery.tlsPolicy?.destinations, [
          { domain: 'partner.example', policy: 'dane-mta-sts' },
        ]);
        assert.deepEqual(c.delivery.tlsReports, {
          organizationName: 'Example',
          from: 'tlsrpt@example.com',
          contactInfo: 'tlsrpt@example.com',
        });
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

test('the ConfigMap of a new pool with TLS, users, submission and a DKIM domain passes the relay validation', () => {
  const d = desiredState(
    observed({
      pool: relayPool({
        tls: { secretName: 'tls' },
        auth: { mode: 'Optional' },
        listeners: { submission: { enabled: true } },
      }),
      domains: [sendingDomain('example.com', { dkim: { selector: 's1', algorithm: 'ed25519-sha256' } })],
      secrets: secrets(secret('tls', { 'tls.crt': 'CERT', 'tls.key': 'KEY' })),
    }),
    fakeGenerators(),
  );
  const config = d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> };
  const rendered = validateConfig(parse(config.data['relay.yaml'] ?? ''));
  assert.equal(rendered.ok, true, JSON.stringify(!rendered.ok && rendered.errors));
  if (!rendered.ok) return;
  assert.equal(rendered.config.auth.mode, 'Optional');
  assert.equal(rendered.config.listeners.submission.enabled, true);
  assert.deepEqual(
    rendered.config.sendingDomains.map((s) => s.domain),
    ['example.com'],
  );
});

test('the rendered relay config of every pool carries a handoff target', async (t) => {
  for (const replicas of [1, 2, 5]) {
    for (const persistence of [undefined, { size: '1Gi' }]) {
      await t.test(`${replicas} replicas, ${persistence ? 'StatefulSet' : 'Deployment'}`, () => {
        const spec = persistence ? { replicas, queue: { persistence } } : { replicas };
        const d = desiredState(observed({ pool: relayPool(spec) }), fakeGenerators());
        const config = d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> };
        const rendered = validateConfig(parse(config.data['relay.yaml'] ?? ''));
        assert.ok(rendered.ok);
        assert.deepEqual(rendered.config.handoff, {
          host: '0.0.0.0',
          port: 2526,
          secretFile: 'handoff/secret',
          peers: [],
          dnsServers: [],
          service: 'transactional-headless.mail.svc',
        });
        assert.ok(kinds(d.apply).includes('Service/transactional-headless'));
        assert.ok(kinds(d.create).includes('Secret/transactional-handoff'));
      });
    }
  }
});
