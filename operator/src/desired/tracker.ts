// The tracking endpoint of a pool whose domains track opens or clicks: `mailfleet tracker` from
// the operator's image, as a Deployment of its own (stateless: every link carries its signed
// target) and a ClusterIP Service that the user's Ingress or Gateway exposes over HTTPS at the
// domains' tracking host (docs/tracking.md). Pure.
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import type { DefaultedRelayPool, RelayPool } from '../api/types.ts';
import { TRACKER_HTTP_PORT, TRACKER_PORT, TRACKING_KEY_KEY } from '../../../contract/layout.ts';
import { FIELD_MANAGER, MANAGED_BY, POOL_LABEL, childMeta, names } from './meta.ts';
import { RELAY_UID } from './pod.ts';
import { trackerEvents } from './tracker-events.ts';
import { trackerSharedState } from './tracker-shared-state.ts';

const TRACKER_KEY_DIR = '/etc/mailfleet-tracker';

/** Not the relays' selector labels: the pool's relay Service and PDB must never pick a tracker pod. */
export function trackerSelector(pool: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'mailfleet-tracker', 'app.kubernetes.io/instance': pool };
}

export type TrackerOptions = {
  pool: DefaultedRelayPool;
  image: string;
  imagePullSecrets?: string[];
  /**
   * Scaled to 0: a pool deleted with Drain stops its tracker first, while its relays still run, so
   * each stopping tracker pod hands its unsent events to one of them (desired/deletion-events.ts).
   */
  stopped?: boolean;
};

const MiB = 1024 * 1024;

export function trackerDeployment(o: TrackerOptions): V1Deployment {
  const pool = o.pool.metadata.name ?? '';
  // spec.events with opened or clicked: the tracker sends them from an outbox of its own.
  const events = trackerEvents(o.pool);
  const shared = trackerSharedState(o.pool);
  const storageLimit = `${64 + Math.ceil((events?.outboxBytes ?? 0) / MiB)}Mi`;
  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(o.pool, names.tracker(pool), 'tracker'),
    spec: {
      // Two replicas: a link in a delivered message must resolve during a node drain or rollout.
      replicas: o.stopped ? 0 : 2,
      selector: { matchLabels: trackerSelector(pool) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...trackerSelector(pool), [POOL_LABEL]: pool, [MANAGED_BY]: FIELD_MANAGER } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // A stopping tracker sends its events outbox for up to 5 s, then hands the rest to a relay for
          // up to 15 s (relay tracker/main.ts).
          terminationGracePeriodSeconds: 30,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RELAY_UID,
            runAsGroup: RELAY_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'tracker',
              image: o.image,
              args: [
                'tracker',
                '--key-file',
                `${TRACKER_KEY_DIR}/${TRACKING_KEY_KEY}`,
                '--port',
                String(TRACKER_PORT),
                '--metrics-port',
                String(TRACKER_HTTP_PORT),
                ...(events?.args ?? []),
                ...(shared?.args ?? []),
              ],
              ports: [
                { name: 'tracking', containerPort: TRACKER_PORT, protocol: 'TCP' },
                { name: 'http', containerPort: TRACKER_HTTP_PORT, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/healthz', port: 'tracking' }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 6,
              },
              resources: {
                requests: { cpu: '50m', memory: '64Mi', 'ephemeral-storage': '16Mi' },
                limits: { cpu: '1', memory: '256Mi', 'ephemeral-storage': storageLimit },
              },
              securityContext: {
                runAsNonRoot: true,
                runAsUser: RELAY_UID,
                runAsGroup: RELAY_UID,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [
                { name: 'key', mountPath: TRACKER_KEY_DIR, readOnly: true },
                ...(events?.mounts ?? []),
                ...(shared?.mounts ?? []),
              ],
            },
          ],
          // The tracking key (and the events secret): never the relay Secret (DKIM keys, users).
          volumes: [
            {
              name: 'key',
              secret: {
                secretName: names.trackingKey(pool),
                items: [{ key: TRACKING_KEY_KEY, path: TRACKING_KEY_KEY }],
                defaultMode: 0o440,
              },
            },
            ...(events?.volumes ?? []),
            ...(shared?.volumes ?? []),
          ],
        },
      },
    },
  };
  if (o.imagePullSecrets?.length && deployment.spec?.template.spec)
    deployment.spec.template.spec.imagePullSecrets = o.imagePullSecrets.map((name) => ({ name }));
  return deployment;
}

export function trackerService(pool: RelayPool): V1Service {
  const name = pool.metadata.name ?? '';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(pool, names.tracker(name), 'tracker'),
    spec: {
      type: 'ClusterIP',
      selector: trackerSelector(name),
      ports: [
        { name: 'tracking', port: 80, targetPort: 'tracking', protocol: 'TCP' },
        { name: 'http', port: TRACKER_HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
      ],
    },
  };
}
