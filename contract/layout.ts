// Where the relay finds things in its pod, as the operator lays them out: the config volume, the
// spool volume, the ports, and the Secret keys that become files in the config volume. The relay
// config (./config.ts) carries the paths and ports the relay uses; these are the values the
// operator renders into it and the defaults the relay applies when a config leaves them out.

export const CONFIG_DIR = '/etc/mailfleet';
export const CONFIG_FILE = `${CONFIG_DIR}/relay.yaml`;
export const SPOOL_DIR = '/var/spool/mailfleet';

/** Standard SMTP ports: relay (RFC 5321), submission with STARTTLS (RFC 6409), implicit TLS (RFC 8314). */
export const SMTP_PORT = 25;
export const SUBMISSION_PORT = 587;
export const SMTPS_PORT = 465;
/** The management port: /metrics, /healthz, /readyz, the queue API and /drain. */
export const HTTP_PORT = 8080;
/** The relays' internal handoff port (relay config `handoff.port`); peers of one pool only. */
export const HANDOFF_PORT = 2526;

/** Key of the pool's handoff Secret, and where the relay finds it (relative to CONFIG_DIR). */
export const HANDOFF_SECRET_KEY = 'secret';
export const HANDOFF_SECRET_FILE = 'handoff/secret';
/**
 * Where the relay finds the handoff secret of the pool its queue goes to when its own pool is
 * deleted (RelayPool spec.deletionHandOffTo, relay config handoff.evacuateTo.secretFile).
 */
export const EVACUATION_SECRET_FILE = 'handoff-to/secret';
/** Where the relay finds the shared state store's password (spec.sharedState.passwordSecretRef). */
export const SHARED_STATE_PASSWORD_FILE = 'shared-state/password';
/**
 * The return-path listener (relay config `returnPath.listener.port`): bounces and complaints sent
 * to the pool's VERP addresses, through the pool's return-path Service on port 25.
 */
export const RETURN_PATH_PORT = 2527;
/** Key of the pool's VERP signing-key Secret, and where the relay finds it (relative to CONFIG_DIR). */
export const RETURN_PATH_KEY = 'key';
export const RETURN_PATH_KEY_FILE = 'returnpath/key';
/** Key of the pool's tracking Secret, and where the relay finds it (relative to CONFIG_DIR). */
export const TRACKING_KEY_KEY = 'key';
export const TRACKING_KEY_FILE = 'tracking/key';
/** The tracker's ports: tracked links and pixels (behind the user's Ingress), and /metrics. */
export const TRACKER_PORT = 8081;
export const TRACKER_HTTP_PORT = 8080;
/** A tracking key shorter than this is refused: HMAC-SHA256 with under 128 bits of key is guessable. */
export const MIN_TRACKING_KEY_BYTES = 16;

/** Where the admin tokens appear in the relay's config volume (relative to CONFIG_DIR); the
 * roles are contract/tokens.ts's ADMIN_TOKEN_ROLES. */
export const adminTokenFile = (role: string) => `admin-tokens/${role}`;

/** Keys of the relay Secret (flat: Secret keys cannot contain '/'), mounted as files of the same
 * names in the config volume. */
export const relaySecretKeys = {
  users: 'users',
  /** The key of the users checksum (an HMAC): kept out of the annotation the checksum is in. */
  usersChecksumKey: 'users.checksum-key',
  smarthost: 'smarthost.yaml',
  dkim: (domain: string, selector: string) => `dkim.${domain}.${selector}.pem`,
};
/** Where the relay finds the events webhook's signing secret (RelayPool spec.events.secretRef). */
export const EVENTS_SECRET_FILE = 'events/secret';

/**
 * Exit codes of `mailfleet relay --evacuate` (the absorb Job's container). The operator's Job
 * fails at once on the permanent ones (podFailurePolicy FailJob): a new pod on the same claim and
 * config would fail the same way. `MessagesLeft` (no peer took them in time) is retried.
 */
export const EVACUATE_EXIT = {
  Empty: 0,
  MessagesLeft: 1,
  NoHandoffTarget: 2,
  SpoolUnreadable: 3,
} as const;
