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

  test('no management tokens by default, and the failed-attempt throttle defaults', () => {
    const config = configOf({});
    assert.deepEqual(config.http.tokens, []);
    assert.deepEqual(config.http.authThrottle, { burst: 10, refill: '6s' });
  });

  test('management tokens name a holder, a role and a file', () => {
    const config = configOf({
      http: { tokens: [{ name: 'operator', role: 'read', file: '/t/read' }], authThrottle: { burst: 3 } },
    });
    assert.deepEqual(config.http.tokens, [{ name: 'operator', role: 'read', file: '/t/read' }]);
    assert.equal(config.http.authThrottle.burst, 3);
  });

  const tokenErrors: { name: string; token: unknown; want: string }[] = [
    {
      name: 'a role is required',
      token: { name: 'a', file: '/t' },
      want: 'http.tokens[0].role: is required',
    },
    {
      name: 'an unknown role is refused',
      token: { name: 'a', role: 'root', file: '/t' },
      want: 'http.tokens[0].role: must be one of read, admin',
    },
    {
      name: 'a file is required',
      token: { name: 'a', role: 'read' },
      want: 'http.tokens[0].file: is required',
    },
    {
      name: 'a name with spaces is refused (it goes into audit logs)',
      token: { name: 'a b', role: 'read', file: '/t' },
      want: 'http.tokens[0].name: letters, digits, ".", "_" and "-" only, at most 63',
    },
  ];
  for (const c of tokenErrors)
    test(`management token: ${c.name}`, () =>
      assert.deepEqual(errorsOf({ http: { tokens: [c.token] } }), [c.want]));

  test('two management tokens with one name are refused', () => {
    const t = { name: 'ops', role: 'admin', file: '/t' };
    assert.deepEqual(errorsOf({ http: { tokens: [t, t] } }), ['http.tokens[1].name: ops is listed twice']);
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

  test('a rate limit without a rate or a connection cap is refused', () => {
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'x' }] }), [
      'rateLimits[0].rate: is required unless maxConnections or maxMessagesPerConnection is set',
    ]);
  });

  test('a connection cap needs no rate', () => {
    const limit = configOf({ rateLimits: [{ name: 'x', maxConnections: 2 }] }).rateLimits[0];
    assert.equal(limit?.rate, undefined);
    assert.equal(limit?.maxConnections, 2);
    assert.equal(limit?.share, 1);
    assert.deepEqual(limit?.match.recipientMXHosts, []);
  });

  test('MX rollup, wildcards and a pool share are accepted', () => {
    const limit = configOf({
      rateLimits: [
        {
          name: 'google',
          match: { recipientMXHosts: ['*.google.com'], recipientDomains: ['*.example.org'] },
          rate: { messages: 20, per: 'second' },
          share: 0.25,
        },
      ],
    }).rateLimits[0];
    assert.deepEqual(limit?.match.recipientMXHosts, ['*.google.com']);
    assert.equal(limit?.share, 0.25);
  });

  test('pool-wide numbers: burst defaults to the rate; they need a rate to fall back to; rejecting limits have them too', () => {
    const pool = { rate: { messages: 30, per: 'second' } };
    const limit = configOf({ rateLimits: [{ name: 'x', rate: { messages: 10 }, pool }] }).rateLimits[0];
    assert.deepEqual(limit?.pool, { rate: { messages: 30, per: 'second' }, burst: 30 });
    assert.deepEqual(errorsOf({ rateLimits: [{ name: 'x', maxConnections: 2, pool }] }), [
      'rateLimits[0].pool: needs a rate (the share enforced while the store is down)',
    ]);
    const reject = configOf({
      rateLimits: [{ name: 'x', rate: { messages: 10 }, onExceed: 'reject', pool }],
    });
    assert.deepEqual(reject.rateLimits[0]?.pool, { rate: { messages: 30, per: 'second' }, burst: 30 });
  });

  test("pool-wide connection caps: each needs the limit's own cap (its share) to fall back to", () => {
    const cases: { name: string; limit: Record<string, unknown>; pool?: unknown; errors?: string[] }[] = [
      {
        name: 'a cap alone',
        limit: { name: 'x', maxConnections: 1, pool: { maxConnections: 4 } },
        pool: { maxConnections: 4 },
      },
      {
        name: 'a rate and a cap',
        limit: {
          name: 'x',
          rate: { messages: 10 },
          maxConnections: 1,
          pool: { rate: { messages: 30 }, maxConnections: 4 },
        },
        pool: { rate: { messages: 30, per: 'second' }, burst: 30, maxConnections: 4 },
      },
      {
        name: 'a pool cap without the share',
        limit: { name: 'x', rate: { messages: 10 }, pool: { maxConnections: 4 } },
        errors: [
          "rateLimits[0].pool: maxConnections needs the limit's maxConnections (the share used while the store is down)",
        ],
      },
      {
        name: 'empty pool numbers',
        limit: { name: 'x', maxConnections: 1, pool: {} },
        errors: ['rateLimits[0].pool: needs a rate or maxConnections'],
      },
      {
        name: 'a burst without a rate',
        limit: { name: 'x', maxConnections: 1, pool: { burst: 3, maxConnections: 2 } },
        errors: ['rateLimits[0].pool.burst: needs a rate'],
      },
    ];
    for (const c of cases) {
      if (c.errors) assert.deepEqual(errorsOf({ rateLimits: [c.limit] }), c.errors, c.name);
      else assert.deepEqual(configOf({ rateLimits: [c.limit] }).rateLimits[0]?.pool, c.pool, c.name);
    }
  });

  test('a share outside (0, 1] is refused', () => {
    for (const share of [0, 1.5, '1/2']) {
      assert.deepEqual(errorsOf({ rateLimits: [{ name: 'x', rate: { messages: 1 }, share }] }), [
        'rateLimits[0].share: must be a number greater than 0 and at most 1',
      ]);
    }
  });

  test('adaptive backoff defaults, and its throttle patterns must be regular expressions', () => {
    assert.equal(configOf({}).adaptiveBackoff.enabled, true);
    assert.ok(configOf({}).adaptiveBackoff.throttlePatterns.includes('try (again )?later'));
    assert.deepEqual(errorsOf({ adaptiveBackoff: { throttlePatterns: ['('] } }), [
      'adaptiveBackoff.throttlePatterns[0]: "(" is not a regular expression',
    ]);
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

  test('a reject limit cannot match on MX hosts', () => {
    assert.deepEqual(
      errorsOf({
        rateLimits: [
          {
            name: 'g',
            match: { recipientMXHosts: ['*.google.com'] },
            rate: { messages: 1, per: 'second' },
            onExceed: 'reject',
          },
        ],
      }),
      [
        'rateLimits[0].onExceed: reject cannot be combined with match.recipientMXHosts (MX hosts are known only at delivery)',
      ],
    );
  });

  test('intake: open unless the file says intake.open: false; anything else is refused', () => {
    const cases: [string, unknown, boolean | string[]][] = [
      ['absent: open', undefined, true],
      ['an empty mapping: open', {}, true],
      ['closed', { open: false }, false],
      ['opened again', { open: true }, true],
      ['a string is not a switch', { open: 'no' }, ['intake.open: must be true or false']],
      ['an unknown field is reported', { closed: true }, ['intake.closed: unknown field']],
    ];
    for (const [name, intake, want] of cases) {
      const raw = intake === undefined ? {} : { intake };
      if (Array.isArray(want))
        assert.deepEqual(
          errorsOf(raw).map((e) => e.replace(/ \(did you mean .*\)$/, '')),
          want,
          name,
        );
      else assert.equal(configOf(raw).intake.open, want, name);
    }
  });

  test('handoff: the internal port defaults to 2526 and peers come from a Service name or a static list', () => {
    const config = configOf({
      handoff: { secretFile: '/etc/mailfleet/handoff/secret', service: 'pool-peers.mail.svc.cluster.local' },
    });
    assert.deepEqual(config.handoff, {
      host: '0.0.0.0',
      port: 2526,
      secretFile: '/etc/mailfleet/handoff/secret',
      peers: [],
      dnsServers: [],
      service: 'pool-peers.mail.svc.cluster.local',
    });
  });

  test('handoff.evacuateTo: the target pool by Service name (dialled on handoff.port) and its secret', () => {
    const config = configOf({
      handoff: {
        secretFile: '/etc/mailfleet/handoff/secret',
        evacuateTo: { service: 'b-headless.mail.svc', secretFile: '/etc/mailfleet/evacuate/secret' },
      },
    });
    assert.deepEqual(config.handoff?.evacuateTo, {
      service: 'b-headless.mail.svc',
      peers: [],
      secretFile: '/etc/mailfleet/evacuate/secret',
    });
  });

  const handoffErrors: [string, unknown, string[]][] = [
    ['a handoff without a secret file is refused', { service: 'peers' }, ['handoff.secretFile: is required']],
    [
      'a static peer without a port is refused',
      { secretFile: '/s', peers: ['10.0.0.1'] },
      ['handoff.peers[0]: "10.0.0.1" is not host:port'],
    ],
    [
      'an unknown handoff field is reported',
      { secretFile: '/s', target: 'x' },
      ['handoff.target: unknown field'],
    ],
    [
      'an evacuation target needs a Service name or peers',
      { secretFile: '/s', evacuateTo: { secretFile: '/t' } },
      ['handoff.evacuateTo: needs a service or peers'],
    ],
    [
      'an evacuation target without its secret file is refused',
      { secretFile: '/s', evacuateTo: { service: 'b-headless.mail.svc' } },
      ['handoff.evacuateTo.secretFile: is required'],
    ],
    [
      'an evacuation peer without a port is refused',
      { secretFile: '/s', evacuateTo: { secretFile: '/t', peers: ['10.0.0.2'] } },
      ['handoff.evacuateTo.peers[0]: "10.0.0.2" is not host:port'],
    ],
    [
      'the internal port may not be a public listener port',
      { secretFile: '/s', port: 25 },
      ['handoff.port: 25 is already used by listeners.smtp'],
    ],
  ];
  test('returnPath: the VERP key file and a return-path domain per sending domain, lower-cased', () => {
    const config = configOf({
      sendingDomains: [{ domain: 'example.com', returnPath: 'Bounces.Example.com' }],
      returnPath: { keyFile: '/etc/mailfleet/returnpath/key' },
    });
    assert.equal(config.sendingDomains[0]?.returnPath, 'bounces.example.com');
    assert.deepEqual(config.returnPath, {
      keyFile: '/etc/mailfleet/returnpath/key',
      listener: { enabled: true, host: '0.0.0.0', port: 2527 },
    });
  });
  const returnPathErrors: [string, unknown, string[]][] = [
    ['a returnPath without a key file is refused', { returnPath: {} }, ['returnPath.keyFile: is required']],
    [
      'a return-path domain that is no domain is refused',
      { sendingDomains: [{ domain: 'example.com', returnPath: 'not a domain' }] },
      ['sendingDomains[0].returnPath: '],
    ],
    [
      'the return-path listener may not share a port',
      { returnPath: { keyFile: '/k', listener: { port: 25 } } },
      ['returnPath.listener.port: 25 is already used by listeners.smtp'],
    ],
  ];
  for (const [name, raw, expected] of returnPathErrors) {
    test(name, () => {
      const errors = errorsOf(raw);
      assert.equal(errors.length, expected.length, errors.join('\n'));
      expected.forEach((e, i) => assert.ok(errors[i]!.startsWith(e), errors[i]));
    });
  }
  for (const [name, handoff, expected] of handoffErrors) {
    test(name, () => {
      assert.deepEqual(
        errorsOf({ handoff }).map((e) => e.replace(/ \(did you mean .*\)$/, '')),
        expected,
      );
    });
  }

  test('a non-mapping document is refused', () => {
    assert.deepEqual(errorsOf('hello'), ['(root): must be a mapping']);
  });

  test('the outbound TLS policy: opportunistic by default, overrides per domain', () => {
    assert.deepEqual(configOf({}).delivery.tlsPolicy, {
      default: 'opportunistic',
      destinations: [],
      daneResolver: '',
    });
    const policy = configOf({
      delivery: {
        tlsPolicy: {
          default: 'encrypt',
          destinations: [
            { domain: 'Partner.example', policy: 'verify' },
            { domain: '*.partner.example', policy: 'verify' },
          ],
        },
      },
    }).delivery.tlsPolicy;
    assert.equal(policy?.default, 'encrypt');
    assert.deepEqual(
      policy?.destinations.map((d) => d.domain),
      ['partner.example', '*.partner.example'],
    );
  });

  test('TLS reports: contactInfo defaults to from; absent, no reports', () => {
    assert.equal(configOf({}).delivery.tlsReports, undefined);
    assert.deepEqual(
      configOf({ delivery: { tlsReports: { organizationName: 'Example', from: 'tlsrpt@example.com' } } })
        .delivery.tlsReports,
      { organizationName: 'Example', from: 'tlsrpt@example.com', contactInfo: 'tlsrpt@example.com' },
    );
    assert.deepEqual(
      errorsOf({ delivery: { tlsReports: { organizationName: 'Example', from: 'nobody' } } }),
      ['delivery.tlsReports.from: must be an address local@domain'],
    );
  });

  test('an outbound TLS policy error names the field', async (t) => {
    const cases: { name: string; tlsPolicy: unknown; want: string }[] = [
      {
        name: 'an unknown default',
        tlsPolicy: { default: 'none' },
        want: 'delivery.tlsPolicy.default: must be one of opportunistic, encrypt, verify, mta-sts, dane, dane-mta-sts',
      },
      {
        name: 'a DANE resolver that is not an address',
        tlsPolicy: { daneResolver: 'resolver.example' },
        want: 'delivery.tlsPolicy.daneResolver: "resolver.example" is not ip, ip:port or [ipv6]:port',
      },
      {
        name: 'an override without a policy',
        tlsPolicy: { destinations: [{ domain: 'a.example' }] },
        want: 'delivery.tlsPolicy.destinations[0].policy: is required',
      },
      {
        name: 'a domain listed twice',
        tlsPolicy: {
          destinations: [
            { domain: 'a.example', policy: 'verify' },
            { domain: 'A.example', policy: 'encrypt' },
          ],
        },
        want: 'delivery.tlsPolicy.destinations[1].domain: a.example is listed twice',
      },
    ];
    for (const c of cases) {
      await t.test(c.name, () =>
        assert.deepEqual(errorsOf({ delivery: { tlsPolicy: c.tlsPolicy } }), [c.want]),
      );
    }
  });
});

describe('events config', () => {
  test('absent: no events; present: every default, the outbox under the spool', () => {
    assert.equal(configOf({}).events, undefined);
    const events = configOf({
      events: { url: 'https://hooks.example.com/mail', secretFile: '/s/events' },
    }).events;
    assert.deepEqual(events, {
      url: 'https://hooks.example.com/mail',
      secretFile: '/s/events',
      types: ['delivered', 'deferred', 'bounced', 'complained', 'suppressed', 'opened', 'clicked'],
      batchSize: 100,
      batchInterval: '1s',
      dir: '/var/spool/mailfleet/events',
      maxBytes: 256 * 1024 * 1024,
      timeout: '10s',
      maxBackoff: '1m',
    });
  });
  const cases: { name: string; events: Record<string, unknown>; want: string[] }[] = [
    {
      name: 'a URL that is not http(s) and a missing secret are refused',
      events: { url: 'ftp://x' },
      want: ['events.url: must be an http:// or https:// URL', 'events.secretFile: is required'],
    },
    {
      name: 'an unknown event type is refused',
      events: { url: 'http://x', secretFile: '/s', types: ['delivered', 'read'] },
      want: [
        'events.types[1]: must be one of delivered, deferred, bounced, complained, suppressed, opened, clicked',
      ],
    },
    {
      name: 'an outbox under 64 KiB and an empty batch are refused',
      events: { url: 'http://x', secretFile: '/s', maxBytes: 1000, batchSize: 0 },
      want: [
        'events.batchSize: must be an integer 1-10000',
        'events.maxBytes: must be an integer 65536-1099511627776',
      ],
    },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(errorsOf({ events: c.events }), c.want));
});
