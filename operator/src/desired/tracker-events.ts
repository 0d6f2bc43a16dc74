// spec.events in the pool's tracker: the `--events-*` flags of `mailfleet tracker`, the signing
// Secret mounted on its own, an emptyDir for the outbox and the pool's handoff Secret (a stopping
// tracker hands unsent events to a relay), when the pool's events include opened
// or clicked (the only types the tracker makes). Pure.
import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { DefaultedRelayPool } from '../api/types.ts';
import type { EventType } from '../../../contract/config.ts';
import { HANDOFF_PORT, HANDOFF_SECRET_KEY, names } from './meta.ts';

/** The event types the tracker makes; the relays make the others. */
const TRACKER_TYPES: readonly EventType[] = ['opened', 'clicked'];
const SECRET_DIR = '/etc/mailfleet-events';
const OUTBOX_DIR = '/var/lib/mailfleet-tracker/events';
const HANDOFF_DIR = '/etc/mailfleet-handoff';
const MiB = 1024 * 1024;

export type TrackerEvents = {
  args: string[];
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  /** Bytes the outbox may take on the pod's ephemeral storage (the emptyDir's sizeLimit). */
  outboxBytes: number;
};

/** The tracker's events, or undefined: no spec.events, or none of its types is opened/clicked. */
export function trackerEvents(pool: DefaultedRelayPool): TrackerEvents | undefined {
  const e = pool.spec.events;
  if (!e) return undefined;
  const types = TRACKER_TYPES.filter((t) => !e.types?.length || (e.types as string[]).includes(t));
  if (types.length === 0) return undefined;
  const key = e.secretRef.key ?? 'secret';
  // The outbox drops its oldest segment (an eighth) when it reaches maxOutboxBytes, so it never
  // holds more than that plus the segment being written: a margin of an eighth, and 1 MiB of files.
  const outboxBytes = e.maxOutboxBytes + Math.ceil(e.maxOutboxBytes / 8) + MiB;
  return {
    args: [
      ...['--events-url', e.url],
      ...['--events-secret-file', `${SECRET_DIR}/secret`],
      ...['--events-dir', OUTBOX_DIR],
      ...['--events-types', types.join(',')],
      ...['--events-batch-size', String(e.batchSize)],
      ...['--events-batch-interval', e.batchInterval],
      ...['--events-max-bytes', String(e.maxOutboxBytes)],
      // A stopping tracker whose receiver is down hands its unsent events to a relay of the pool
      // (the relays' handoff port and secret), which sends them from its outbox.
      ...[
        '--handoff-service',
        `${names.headless(pool.metadata.name ?? '')}.${pool.metadata.namespace ?? ''}.svc`,
      ],
      ...['--handoff-port', String(HANDOFF_PORT)],
      ...['--handoff-secret-file', `${HANDOFF_DIR}/secret`],
    ],
    volumes: [
      {
        name: 'events-secret',
        secret: { secretName: e.secretRef.name, items: [{ key, path: 'secret' }], defaultMode: 0o440 },
      },
      // An emptyDir: it outlives a crashed or killed tracker container (the kubelet restarts the
      // container on the same directory), not the pod (docs/events.md, "Events from the tracker").
      { name: 'events-outbox', emptyDir: { sizeLimit: `${Math.ceil(outboxBytes / MiB)}Mi` } },
      {
        name: 'handoff-secret',
        secret: {
          secretName: names.handoffSecret(pool.metadata.name ?? ''),
          items: [{ key: HANDOFF_SECRET_KEY, path: 'secret' }],
          defaultMode: 0o440,
        },
      },
    ],
    mounts: [
      { name: 'events-secret', mountPath: SECRET_DIR, readOnly: true },
      { name: 'events-outbox', mountPath: OUTBOX_DIR },
      { name: 'handoff-secret', mountPath: HANDOFF_DIR, readOnly: true },
    ],
    outboxBytes,
  };
}
