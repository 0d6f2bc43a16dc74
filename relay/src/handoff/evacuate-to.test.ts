import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evacuationTarget } from './evacuate-to.ts';
import type { RuntimeConfig } from '../config/runtime.ts';
import type { HandoffConfig } from '../config/types.ts';

const SECRET = Buffer.from('pool-b-secret-0123456789abcdef');

function runtime(
  handoff: Partial<HandoffConfig> | undefined,
  evacuation?: RuntimeConfig['evacuation'],
): Pick<RuntimeConfig, 'config' | 'evacuation'> {
  const config = {
    handoff: handoff && {
      host: '0.0.0.0',
      port: 2526,
      secretFile: '/etc/mailfleet/handoff/secret',
      peers: ['10.0.0.9:2526'],
      dnsServers: ['10.96.0.10'],
      ...handoff,
    },
  } as RuntimeConfig['config'];
  return evacuation ? { config, evacuation } : { config };
}

const cases: [string, Pick<RuntimeConfig, 'config' | 'evacuation'>, unknown][] = [
  ['no handoff: not evacuating', runtime(undefined), undefined],
  ['a handoff without evacuateTo: not evacuating', runtime({}), undefined],
  [
    'evacuateTo whose secret could not be read: not evacuating (the relay delivers itself)',
    runtime(
      { evacuateTo: { service: 'b-headless.mail.svc', peers: [], secretFile: '/e' } },
      { problem: 'cannot read /e: ENOENT' },
    ),
    undefined,
  ],
  [
    "a Service: the target's relays on this relay's handoff port, through its resolvers, never its own peers",
    runtime(
      { evacuateTo: { service: 'b-headless.mail.svc', peers: [], secretFile: '/e' } },
      { secret: SECRET },
    ),
    {
      target: { port: 2526, service: 'b-headless.mail.svc', peers: [], dnsServers: ['10.96.0.10'] },
      secret: SECRET,
    },
  ],
  [
    'static peers only',
    runtime({ evacuateTo: { peers: ['127.0.0.1:4000'], secretFile: '/e' } }, { secret: SECRET }),
    { target: { port: 2526, peers: ['127.0.0.1:4000'], dnsServers: ['10.96.0.10'] }, secret: SECRET },
  ],
];

for (const [name, input, expected] of cases) {
  test(`evacuationTarget: ${name}`, () => {
    assert.deepEqual(evacuationTarget(input), expected);
  });
}
