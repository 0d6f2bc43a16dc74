// The relay pod template shared by the Deployment and the StatefulSet: hardened (non-root,
// read-only root, no capabilities, RuntimeDefault seccomp), probed on /healthz and /readyz,
// spread across nodes and zones, with every file the relay reads in one projected volume.
import type { V1Container, V1PodTemplateSpec, V1Volume } from '@kubernetes/client-node';
import { sharedStatePasswordSource } from './shared-state.ts';
import { eventsSecretSource } from './events.ts';
import { evacuationSecretSource } from './handoff-to.ts';
import type { DefaultedRelayPool } from '../api/types.ts';
import { durationMs } from '../../../contract/duration.ts';
import {
  ADMIN_TOKEN_ROLES,
  CONFIG_CHECKSUM,
  CONFIG_DIR,
  CONFIG_FILE,
  FIELD_MANAGER,
  HANDOFF_PORT,
  RETURN_PATH_KEY,
  RETURN_PATH_KEY_FILE,
  RETURN_PATH_PORT,
  HANDOFF_SECRET_FILE,
  HANDOFF_SECRET_KEY,
  HTTP_PORT,
  MANAGED_BY,
  POOL_LABEL,
  SPOOL_DIR,
  TERMINATION_MARGIN_SECONDS,
  TRACKING_KEY_FILE,
  TRACKING_KEY_KEY,
  adminTokenFile,
  names,
  selectorLabels,
} from './meta.ts';
import { spoolQuota, startupWindowSeconds } from './spool.ts';
import { tlsSecretName } from './tls.ts';

export type PodOptions = {
  /** The pool with schema defaults applied. */
  pool: DefaultedRelayPool;
  /** Image of the relay (spec.image or the operator's own). */
  image: string;
  /** Names of the pull secrets (spec.imagePullSecrets or the operator's default); absent: none. */
  imagePullSecrets?: string[];
  /** restartChecksum() of the rendered config. */
  checksum: string;
  /** Whether the spool volume comes from a PVC template (StatefulSet) instead of an emptyDir. */
  persistentSpool: boolean;
  /** Shards of the relay Secret (secret.ts relaySecrets; default 1). */
  relaySecretShards?: number;
  /** A domain of the pool tracks opens or clicks: the tracking key is mounted. */
  tracking?: boolean;
  /** A domain of the pool has a return path: the VERP key is mounted, the listener port opened. */
  returnPath?: boolean;
};

export const RELAY_UID = 10001;
/** Seconds between two startup probes; the window is spool.ts startupWindowSeconds. */
const STARTUP_PERIOD_SECONDS = 5;
export const SPOOL_VOLUME = 'spool';

export function listenerPorts(pool: DefaultedRelayPool): { name: string; port: number }[] {
  const l = pool.spec.listeners;
  const ports: { name: string; port: number }[] = [];
  if (l.smtp.enabled) ports.push({ name: 'smtp', port: l.smtp.port });
  if (l.submission.enabled) ports.push({ name: 'submission', port: l.submission.port });
  if (l.smtps.enabled) ports.push({ name: 'smtps', port: l.smtps.port });
  return ports;
}

export function podTemplate(o: PodOptions): V1PodTemplateSpec {
  const poolName = o.pool.metadata.name ?? '';
  const spec = o.pool.spec;
  const drainSeconds = Math.ceil(durationMs(spec.drainTimeout) / 1000);
  const configSources: NonNullable<V1Volume['projected']>['sources'] = [
    { configMap: { name: names.config(poolName) } },
    ...Array.from({ length: Math.max(1, o.relaySecretShards ?? 1) }, (_, i) => ({
      secret: { name: names.relaySecretShard(poolName, i) },
    })),
    {
      secret: {
        name: names.handoffSecret(poolName),
        items: [{ key: HANDOFF_SECRET_KEY, path: HANDOFF_SECRET_FILE }],
      },
    },
    // Projected Secret files follow edits of the Secret (no subPath), so a rotated token reaches
    // the relay's file watcher without a restart.
    {
      secret: {
        name: names.adminTokens(poolName),
        items: ADMIN_TOKEN_ROLES.map((role) => ({ key: role, path: adminTokenFile(role) })),
      },
    },
  ];
  const sharedStatePassword = sharedStatePasswordSource(o.pool);
  if (sharedStatePassword) configSources.push(sharedStatePassword);
  const eventsSecret = eventsSecretSource(o.pool);
  if (eventsSecret) configSources.push(eventsSecret);
  const evacuationSecret = evacuationSecretSource(o.pool);
  if (evacuationSecret) configSources.push(evacuationSecret);
  if (o.tracking) {
    configSources.push({
      secret: {
        name: names.trackingKey(poolName),
        items: [{ key: TRACKING_KEY_KEY, path: TRACKING_KEY_FILE }],
      },
    });
  }
  if (o.returnPath) {
    configSources.push({
      secret: {
        name: names.returnPathKey(poolName),
        items: [{ key: RETURN_PATH_KEY, path: RETURN_PATH_KEY_FILE }],
      },
    });
  }
  const tlsSecret = tlsSecretName(o.pool);
  if (tlsSecret) {
    configSources.push({
      secret: {
        name: tlsSecret,
        items: [
          { key: 'tls.crt', path: 'tls/tls.crt' },
          { key: 'tls.key', path: 'tls/tls.key' },
        ],
      },
    });
  }
  const volumes: V1Volume[] = [
    { name: 'config', projected: { sources: configSources, defaultMode: 0o440 } },
    { name: 'tmp', emptyDir: {} },
  ];
  if (!o.persistentSpool) {
    const quota = spoolQuota(o.pool);
    volumes.push({ name: SPOOL_VOLUME, emptyDir: quota ? { sizeLimit: quota.sizeLimit } : {} });
  }
  const container: V1Container = {
    name: 'relay',
    image: o.image,
    args: ['relay', '--config', CONFIG_FILE],
    ports: [
      ...listenerPorts(o.pool).map((p) => ({ name: p.name, containerPort: p.port, protocol: 'TCP' })),
      { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
      { name: 'handoff', containerPort: HANDOFF_PORT, protocol: 'TCP' },
      ...(o.returnPath ? [{ name: 'return-path', containerPort: RETURN_PATH_PORT, protocol: 'TCP' }] : []),
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ],
    readinessProbe: {
      httpGet: { path: '/readyz', port: 'http' },
      periodSeconds: 5,
      failureThreshold: 2,
    },
    // The relay serves HTTP only once its spool is recovered, which after a crash with a deep
    // queue takes a while: liveness (one minute of failures) waits until this probe has passed.
    startupProbe: {
      httpGet: { path: '/healthz', port: 'http' },
      periodSeconds: STARTUP_PERIOD_SECONDS,
      failureThreshold: Math.ceil(startupWindowSeconds(o.pool) / STARTUP_PERIOD_SECONDS),
    },
    livenessProbe: {
      httpGet: { path: '/healthz', port: 'http' },
      periodSeconds: 10,
      failureThreshold: 6,
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
      { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
      { name: SPOOL_VOLUME, mountPath: SPOOL_DIR },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  if (spec.resources) {
    // Defaults come from the schema; an empty map (limits: {}) is left out as the API server stores it.
    const text = (m: Record<string, number | string>) =>
      Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
    const { requests, limits } = spec.resources;
    container.resources = {};
    if (requests && Object.keys(requests).length) container.resources.requests = text(requests);
    if (limits && Object.keys(limits).length) container.resources.limits = text(limits);
  }
  const scheduling = spec.scheduling ?? {};
  const template: V1PodTemplateSpec = {
    metadata: {
      labels: { ...selectorLabels(poolName), [POOL_LABEL]: poolName, [MANAGED_BY]: FIELD_MANAGER },
      annotations: { [CONFIG_CHECKSUM]: o.checksum },
    },
    spec: {
      containers: [container],
      volumes,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // SIGTERM starts the drain (421 to new sessions, handoff to peers, all within drainTimeout);
      // the margin lets the relay close its spool before a SIGKILL could cut it short.
      terminationGracePeriodSeconds: drainSeconds + TERMINATION_MARGIN_SECONDS,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: RELAY_UID,
        runAsGroup: RELAY_UID,
        fsGroup: RELAY_UID,
        seccompProfile: { type: 'RuntimeDefault' },
        // Lets the non-root relay bind ports 25/465/587 without NET_BIND_SERVICE (a safe sysctl).
        sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      },
      topologySpreadConstraints: (scheduling.topologySpreadConstraints as never) ?? defaultSpread(poolName),
    },
  };
  const podSpec = template.spec;
  if (podSpec) {
    if (scheduling.nodeSelector) podSpec.nodeSelector = { ...scheduling.nodeSelector };
    if (scheduling.tolerations) podSpec.tolerations = structuredClone(scheduling.tolerations) as never;
    if (scheduling.affinity) podSpec.affinity = structuredClone(scheduling.affinity) as never;
    if (scheduling.priorityClassName) podSpec.priorityClassName = scheduling.priorityClassName;
    if (o.imagePullSecrets?.length) podSpec.imagePullSecrets = o.imagePullSecrets.map((name) => ({ name }));
  }
  return template;
}

function defaultSpread(pool: string): NonNullable<V1PodTemplateSpec['spec']>['topologySpreadConstraints'] {
  return ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((topologyKey) => ({
    topologyKey,
    maxSkew: 1,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: selectorLabels(pool) },
  }));
}
