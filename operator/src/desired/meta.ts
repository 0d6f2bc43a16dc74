// Names, labels, owner references and in-pod paths shared by every builder. Pure.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import type { RelayPool, SendingDomain } from '../api/types.ts';

export const FIELD_MANAGER = 'mailfleet-operator';
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const POOL_LABEL = 'mailfleet.dev/pool';
export const DOMAIN_LABEL = 'mailfleet.dev/sending-domain';
const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const CONFIG_CHECKSUM = 'mailfleet.dev/restart-checksum';
export const SOURCE_CHECKSUM = 'mailfleet.dev/source-checksum';
/** Label selector of everything the operator owns (its informers watch only this). */
export const OWNED_SELECTOR = `${MANAGED_BY}=${FIELD_MANAGER}`;
/** Its complement (objects without the label match too): Secrets users may reference. */
export const NOT_OWNED_SELECTOR = `${MANAGED_BY} notin (${FIELD_MANAGER})`;

export {
  CONFIG_DIR,
  CONFIG_FILE,
  EVACUATION_SECRET_FILE,
  HANDOFF_PORT,
  HANDOFF_SECRET_FILE,
  HANDOFF_SECRET_KEY,
  HTTP_PORT,
  SPOOL_DIR,
  RETURN_PATH_KEY,
  RETURN_PATH_KEY_FILE,
  RETURN_PATH_PORT,
  TRACKING_KEY_FILE,
  TRACKING_KEY_KEY,
  adminTokenFile,
  relaySecretKeys,
} from '../../../contract/layout.ts';
export { ADMIN_TOKEN_ROLES } from '../../../contract/tokens.ts';
/** Seconds a pod gets beyond drainTimeout before SIGKILL: the relay's own close after the drain. */
export const TERMINATION_MARGIN_SECONDS = 30;

export const names = {
  config: (pool: string) => `${pool}-config`,
  /** Operator-derived files the relay reads: hashed users, DKIM keys, smarthost credentials. */
  relaySecret: (pool: string) => `${pool}-relay`,
  /** Shard `index` of the relay Secret: 0 is `<pool>-relay`, then `<pool>-relay-1`, ... */
  relaySecretShard: (pool: string, index: number) =>
    index === 0 ? `${pool}-relay` : `${pool}-relay-${index}`,
  /** Generated SMTP credentials in plain form, for applications to mount. */
  credentials: (pool: string) => `${pool}-credentials`,
  /** Generated bearer tokens of the relays' management API (keys `read`, `admin`). */
  adminTokens: (pool: string) => `${pool}-admin-tokens`,
  workload: (pool: string) => pool,
  service: (pool: string) => pool,
  headless: (pool: string) => `${pool}-headless`,
  /** The pool's shared handoff secret: generated once, never rewritten. */
  handoffSecret: (pool: string) => `${pool}-handoff`,
  /** The key tracked links are signed with: generated once, never rewritten (links outlive a rollout). */
  trackingKey: (pool: string) => `${pool}-tracking`,
  /** The tracking endpoint's Deployment and Service (tracker.ts), when a domain of the pool tracks. */
  tracker: (pool: string) => `${pool}-tracker`,
  /** The pool's VERP signing key: generated once, never rewritten. */
  returnPathKey: (pool: string) => `${pool}-return-path`,
  /** Port 25 of the return-path domains' MX. */
  returnPathService: (pool: string) => `${pool}-return-path`,
  dkimKey: (domainObject: string, selector: string) => `${domainObject}-dkim-${selector}`,
  /** The pool's own CA (certificate and key), when the operator generates certificates. */
  tlsCA: (pool: string) => `${pool}-tls-ca`,
  /** The generated serving certificate the relays mount. */
  tlsServing: (pool: string) => `${pool}-tls-generated`,
  /** The public CA certificate (ca.crt) for clients to trust. */
  caBundle: (pool: string) => `${pool}-ca`,
  /** The cert-manager Certificate, and the Secret cert-manager fills for it. */
  certificate: (pool: string) => `${pool}-tls`,
  certManagerSecret: (pool: string) => `${pool}-tls-cert-manager`,
};

export const INSTANCE_LABEL = 'app.kubernetes.io/instance';
export const RELAY_NAME_SELECTOR = 'app.kubernetes.io/name=mailfleet-relay';

export function selectorLabels(pool: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'mailfleet-relay', [INSTANCE_LABEL]: pool };
}

function poolLabels(pool: string, component: string): Record<string, string> {
  return {
    ...selectorLabels(pool),
    [POOL_LABEL]: pool,
    [COMPONENT_LABEL]: component,
    [MANAGED_BY]: FIELD_MANAGER,
  };
}

function ownerReference(owner: RelayPool | SendingDomain): V1OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function childMeta(
  pool: RelayPool,
  name: string,
  component: string,
  extra: { annotations?: Record<string, string>; labels?: Record<string, string> } = {},
): V1ObjectMeta {
  const meta: V1ObjectMeta = {
    name,
    namespace: pool.metadata.namespace ?? '',
    labels: { ...poolLabels(pool.metadata.name ?? '', component), ...extra.labels },
    ownerReferences: [ownerReference(pool)],
  };
  if (extra.annotations && Object.keys(extra.annotations).length > 0) meta.annotations = extra.annotations;
  return meta;
}

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** A Kubernetes quantity ("25Mi", "10M", 1048576) in bytes; undefined when unreadable. */
export function quantityBytes(quantity: number | string | undefined): number | undefined {
  if (typeof quantity === 'number') return quantity;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity ?? '');
  if (!match) return undefined;
  const unit = match[2] ?? '';
  const factor = BINARY[unit] ?? DECIMAL[unit] ?? 1;
  return Math.round(Number(match[1]) * factor);
}
