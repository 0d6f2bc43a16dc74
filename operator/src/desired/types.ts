// What a reconcile reads (Observed) and what it decides (Desired). Plain data: the controller
// fills Observed from informer caches, desiredState() turns it into Desired, apply writes it.
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { RateLimit, RelayPool, SendingDomain } from '../api/types.ts';
import type { BounceMeasurement } from './bounce.ts';
import type { TxtAnswers } from './dns.ts';
import type { RelayQueue } from './deletion.ts';
import type { HandOffTarget } from './handoff-to.ts';
import type { DomainCounts } from './rates.ts';
import type { TrackerReading } from './scraped.ts';

export type KubeObject = KubernetesObject & { [field: string]: unknown };
export type OwnKind = 'RelayPool' | 'SendingDomain' | 'RateLimit';

export type Observed = {
  namespace: string;
  poolName: string;
  pool?: RelayPool;
  /** SendingDomains and RateLimits of the namespace whose poolRef names this pool. */
  domains: SendingDomain[];
  rateLimits: RateLimit[];
  /** Secrets the pool and its domains reference or own, by name (absent: not found). */
  secrets: Map<string, V1Secret>;
  /** Objects labelled as this pool's children. */
  children: KubeObject[];
  /** The pool's relay PVCs (a StatefulSet's spool claims), which the StatefulSet controller owns. */
  claims?: KubeObject[];
  /** Names of the pool's pods (terminating ones too): a claim is absorbed only once its relay is gone. */
  pods?: string[];
  serviceMonitorCRD: boolean;
  /** Bounce measurements per SendingDomain name, over each domain's policy window. */
  bounce: Map<string, BounceMeasurement>;
  /** The last hour's counts per SendingDomain name (status.rates); absent: not scraped. */
  rates?: Map<string, DomainCounts>;
  /** TXT answers per SendingDomain name; absent when DNS verification is off. */
  dns: Map<string, TxtAnswers>;
  settings: {
    image: string;
    /** Pull secrets of relay pods whose pool names none (--image-pull-secrets). */
    imagePullSecrets?: string[];
    spfInclude?: string;
    tls?: TlsSettings;
    /**
     * Namespaces whose pods the relays' NetworkPolicy admits to the management port: the operator's
     * own and the monitoring namespaces (operator flags, the same for every pool).
     */
    managementNamespaces?: string[];
  };
  /** Whether cert-manager's Certificate CRD (cert-manager.io/v1) is served. */
  certManagerCRD?: boolean;
  /** Certificates issued for this pass because tlsRequest() asked for them (desired/tls.ts). */
  issued?: IssuedTls;
  now: Date;
  /** Writes of this reconcile that did not happen (the second decision reports them). */
  writeProblems?: WriteProblem[];
  /** No rollout slot was free: a changed pod template waits, the current workload stays (rollout.ts). */
  rolloutQueued?: boolean;
  /** Every relay pod of the pool and its last queue reading; absent: the operator does not scrape. */
  relayQueues?: RelayQueue[];
  /** The pool spec.deletionHandOffTo names; absent when it names none. */
  handOffTarget?: HandOffTarget;
  /** Pools of the namespace whose spec.deletionHandOffTo names this pool. */
  handOffSources?: RelayPool[];
  /** Every pod of the pool's tracker Deployment and its last events reading; absent: not scraped. */
  trackers?: TrackerReading[];
};

/** Operator-wide settings of generated certificates (flags); defaults in desired/tls.ts. */
export type TlsSettings = { validityMs?: number; caValidityMs?: number; clusterDomain?: string };

export type PemPair = { cert: string; key: string };

export type CertificateRequest = {
  commonName: string;
  /** Subject alternative names (serving certificates only). */
  dnsNames: string[];
  notBefore: Date;
  notAfter: Date;
};

/** X.509 issuing: asynchronous (key generation off the event loop), so it runs before desiredState. */
export type CertificateIssuer = {
  ca(request: CertificateRequest): Promise<PemPair>;
  serving(request: CertificateRequest, ca: PemPair): Promise<PemPair>;
};

export type IssuedTls = { ca?: PemPair; serving?: PemPair };

/** Randomness and slow crypto, injected so desiredState stays a function of its inputs. */
export type Generators = {
  password(): string;
  hashPassword(password: string): string;
  /** A new private key (PEM); undefined: none this pass (generation is bounded per pass). */
  dkimKey(algorithm: 'rsa-sha256' | 'ed25519-sha256'): string | undefined;
};

/** A write of this reconcile that did not happen, and why (reported in the pool's status). */
export type WriteProblem = {
  /** "Kind/name". */
  object: string;
  reason: 'NotOwned' | 'ApplyFailed';
  message: string;
};

export type ObjectRef = { apiVersion: string; kind: string; namespace: string; name: string; uid?: string };

export type StatusWrite = { kind: OwnKind; name: string; status: Record<string, unknown> };

export type EventSpec = {
  regarding: ObjectRef;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
};

export type Desired = {
  /** Server-side applied; written only when the observed object differs. */
  apply: KubeObject[];
  /** Created when absent, never updated (generated credentials and keys). */
  create: KubeObject[];
  /** Children to keep although neither applied nor created now ("Kind/name"). */
  keep: string[];
  /** Whether children no longer desired are deleted (false while the pool is blocked). */
  prune: boolean;
  statuses: StatusWrite[];
  events: EventSpec[];
  /** spec.suspend: true (and the autosuspension annotation) for SendingDomains the autopilot suspends. */
  suspend: { name: string; message: string }[];
  /** SendingDomains whose automatic suspension the user lifted: their annotation is removed. */
  resume: string[];
  /**
   * The pool's relays: `wanted`, its pod template differs from its workload's (a rollout slot is
   * needed); `inProgress`, the workload has not rolled out its template yet (the slot is kept).
   */
  rollout?: { wanted: boolean; inProgress: boolean };
  /** The pool's drain finalizer to add or remove (deletion.ts); absent: unchanged. */
  finalizer?: { add: string } | { remove: string };
  /** Reconcile the pool again after this long (a generated certificate's renewal time). */
  requeueAfterMs?: number;
  /** Spool claims of removed relays (desired/claims.ts), for metrics. */
  retainedClaims?: string[];
  /** Failed absorb Jobs per retained claim that has any (status.absorbFailures), for metrics. */
  absorbFailures?: Record<string, number>;
  /** The certificate the relays serve, for metrics; issued: why one was issued this pass. */
  certificate?: { notAfter: Date; issued?: RenewReason };
};

/** Why a generated serving certificate is (re)issued. */
export type RenewReason = 'Missing' | 'Invalid' | 'Expiring' | 'NamesChanged' | 'IssuerChanged';
