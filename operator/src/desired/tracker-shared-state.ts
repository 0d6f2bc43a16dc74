// spec.sharedState in the pool's tracker: the `--shared-state-*` flags of `mailfleet tracker` (the
// relays' store and key prefix), and the password Secret mounted on its own, so the tracker pods
// decide unique opens together (relay tracker/unique.ts). Pure.
import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import { sharedStateConfig } from './shared-state.ts';

const PASSWORD_DIR = '/etc/mailfleet-shared-state';

type TrackerSharedState = { args: string[]; volumes: V1Volume[]; mounts: V1VolumeMount[] };

/** The tracker's shared store, or undefined without spec.sharedState. */
export function trackerSharedState(pool: DefaultedRelayPool): TrackerSharedState | undefined {
  const config = sharedStateConfig(pool);
  const ref = pool.spec.sharedState?.passwordSecretRef;
  if (!config) return undefined;
  return {
    args: [
      ...['--shared-state-url', config.url],
      ...['--shared-state-key-prefix', config.keyPrefix],
      ...(ref ? ['--shared-state-password-file', `${PASSWORD_DIR}/password`] : []),
    ],
    volumes: ref
      ? [
          {
            name: 'shared-state-password',
            secret: {
              secretName: ref.name,
              items: [{ key: ref.key ?? 'password', path: 'password' }],
              defaultMode: 0o440,
            },
          },
        ]
      : [],
    mounts: ref ? [{ name: 'shared-state-password', mountPath: PASSWORD_DIR, readOnly: true }] : [],
  };
}
