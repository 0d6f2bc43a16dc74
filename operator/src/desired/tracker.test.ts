// The pool's tracker Deployment with and without spec.events: the tracker gets the --events-*
// flags, the signing Secret and an outbox volume only when the pool's events include opened or
// clicked (test/integration/tracker-events.test.ts runs the rendered flags).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';
import { trackerDeployment } from './tracker.ts';

const EVENTS = { url: 'https://hooks.example.com/mail', secretRef: { name: 'hook-secret' } };
const render = (spec: Partial<RelayPoolSpec> = {}) => {
  const d = trackerDeployment({ pool: withDefaults(relayPool(spec)).resource, image: 'mailfleet:test' });
  const pod = d.spec!.template.spec!;
  const container = pod.containers[0]!;
  const args = container.args ?? [];
  const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  return { pod, container, args, flag };
};

describe('tracker Deployment', () => {
  test('without spec.events: no events flags, only the tracking key mounted', () => {
    const { pod, container, args } = render();
    assert.equal(
      args.some((a) => a.startsWith('--events-')),
      false,
    );
    assert.deepEqual(
      pod.volumes?.map((v) => v.name),
      ['key'],
    );
    assert.equal(container.resources?.limits?.['ephemeral-storage'], '64Mi');
  });

  const types: [string, RelayPoolSpec['events'], string | undefined][] = [
    ['every type (the default): opened and clicked', EVENTS, 'opened,clicked'],
    ['only relay types: nothing for the tracker', { ...EVENTS, types: ['delivered', 'bounced'] }, undefined],
    ['clicked among relay types: clicked alone', { ...EVENTS, types: ['bounced', 'clicked'] }, 'clicked'],
    ['opened alone', { ...EVENTS, types: ['opened'] }, 'opened'],
  ];
  for (const [name, events, expected] of types)
    test(`spec.events.types, ${name}`, () => {
      const { args, flag, pod } = render({ events: events! });
      assert.equal(flag('--events-types'), expected);
      assert.equal(flag('--events-url'), expected ? EVENTS.url : undefined);
      assert.equal(args.includes('--events-dir'), expected !== undefined);
      assert.equal(
        pod.volumes?.some((v) => v.name === 'events-outbox'),
        expected !== undefined,
      );
    });

  test('with events: the defaulted batching and bound, the Secret key as the secret file, the outbox on an emptyDir', () => {
    const { pod, container, flag } = render({
      events: { ...EVENTS, secretRef: { name: 'hook-secret', key: 'hmac' }, maxOutboxBytes: 8 * 1024 * 1024 },
    });
    assert.equal(flag('--events-batch-size'), '100');
    assert.equal(flag('--events-batch-interval'), '1s');
    assert.equal(flag('--events-max-bytes'), String(8 * 1024 * 1024));
    const secretFile = flag('--events-secret-file')!;
    const outbox = flag('--events-dir')!;
    const mountOf = (file: string) =>
      container.volumeMounts?.find((m) => file === `${m.mountPath}/${file.split('/').at(-1)}`);
    const secretVolume = pod.volumes?.find((v) => v.name === mountOf(secretFile)?.name);
    assert.equal(secretVolume?.secret?.secretName, 'hook-secret');
    assert.deepEqual(secretVolume?.secret?.items, [{ key: 'hmac', path: secretFile.split('/').at(-1) }]);
    assert.equal(mountOf(secretFile)?.readOnly, true);
    const outboxMount = container.volumeMounts?.find((m) => m.mountPath === outbox);
    const outboxVolume = pod.volumes?.find((v) => v.name === outboxMount?.name);
    assert.ok(outboxVolume?.emptyDir, 'the outbox is an emptyDir');
    assert.equal(outboxMount?.readOnly, undefined, 'the outbox is writable');
    // 8 MiB, an eighth more for the segment being written, 1 MiB of files.
    assert.equal(outboxVolume?.emptyDir?.sizeLimit, '10Mi');
    assert.equal(container.resources?.limits?.['ephemeral-storage'], '74Mi');
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(pod.terminationGracePeriodSeconds, 30, 'longer than the 20 s the tracker flushes for');
    // A stopping tracker hands unsent events to the pool's relays: their Service, port and secret.
    assert.equal(flag('--handoff-service'), 'transactional-headless.mail.svc');
    assert.equal(flag('--handoff-port'), '2526');
    const handoffSecret = flag('--handoff-secret-file')!;
    const handoffVolume = pod.volumes?.find((v) => v.name === mountOf(handoffSecret)?.name);
    assert.equal(handoffVolume?.secret?.secretName, 'transactional-handoff');
    assert.deepEqual(handoffVolume?.secret?.items, [{ key: 'secret', path: 'secret' }]);
    assert.equal(mountOf(handoffSecret)?.readOnly, true);
  });
});

describe('tracker Deployment with spec.sharedState', () => {
  const cases: [string, RelayPoolSpec['sharedState'] | undefined, string[], string[]][] = [
    ['none: no store flags', undefined, [], []],
    [
      'a store without password',
      { url: 'redis://valkey.mail:6379' },
      [
        '--shared-state-url',
        'redis://valkey.mail:6379',
        '--shared-state-key-prefix',
        'mailfleet:mail/transactional:',
      ],
      [],
    ],
    [
      'a store with a password Secret: mounted on its own',
      { url: 'rediss://valkey.mail:6380', passwordSecretRef: { name: 'valkey', key: 'pw' } },
      [
        ...[
          '--shared-state-url',
          'rediss://valkey.mail:6380',
          '--shared-state-key-prefix',
          'mailfleet:mail/transactional:',
        ],
        ...['--shared-state-password-file', '/etc/mailfleet-shared-state/password'],
      ],
      ['shared-state-password'],
    ],
  ];
  for (const [name, sharedState, flags, volumes] of cases)
    test(name, () => {
      const { pod, container, args } = render(sharedState ? { sharedState } : {});
      const from = args.indexOf('--shared-state-url');
      assert.deepEqual(from < 0 ? [] : args.slice(from), flags);
      assert.deepEqual(
        pod.volumes?.filter((v) => v.name.startsWith('shared-state')).map((v) => v.name),
        volumes,
      );
      const secret = pod.volumes?.find((v) => v.name === 'shared-state-password')?.secret;
      if (volumes.length) {
        assert.deepEqual(secret?.items, [{ key: 'pw', path: 'password' }]);
        assert.equal(secret?.secretName, 'valkey');
        assert.ok(
          container.volumeMounts?.some((m) => m.mountPath === '/etc/mailfleet-shared-state' && m.readOnly),
        );
      }
    });
});
