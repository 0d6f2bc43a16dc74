// Generated from operator/src/api/schema.ts by `npm run gen:api`. Do not edit.
/** A Secret of type kubernetes.io/dockerconfigjson. */
export interface ImagePullSecret {
  /** Name of the Secret in the same namespace. */
  name: string;
}

/** Compute resources of each relay container (as in a Pod spec). Setting resources replaces the whole default (so a larger memory request never meets the default limit). No ephemeral-storage limit by default: past it the kubelet evicts the pod, and an emptyDir spool goes with it. Defaults and sizing: docs/operator.md#sizing-relays. */
export interface ResourceRequirements {
  /** What the scheduler reserves per relay (and what the HPA CPU target is a percentage of). */
  requests?: Record<string, number | string>;
  /** Maximum resources. */
  limits?: Record<string, number | string>;
}

/** Where relay pods may run. By default pods spread across nodes and zones. */
export interface Scheduling {
  /** Node labels a relay node must have. */
  nodeSelector?: Record<string, string>;
  /** Taints the relay pods tolerate (as in a Pod spec). */
  tolerations?: Array<Record<string, unknown>>;
  /** Pod affinity and anti-affinity (as in a Pod spec). */
  affinity?: Record<string, unknown>;
  /** Replaces the default spread over kubernetes.io/hostname and topology.kubernetes.io/zone. */
  topologySpreadConstraints?: Array<Record<string, unknown>>;
  /** Priority class of the relay pods. */
  priorityClassName?: string;
}

/** The smtp listener: relay for allowed networks (and authenticated users); STARTTLS offered when tls is set. */
export interface Listener {
  /** Whether the smtp listener runs. Default: true. */
  enabled?: boolean;
  /** Container and Service port of the smtp listener. Default: 25. */
  port?: number;
}

/** Which SMTP listeners run, and on which ports. */
export interface Listeners {
  /** The smtp listener: relay for allowed networks (and authenticated users); STARTTLS offered when tls is set. Default: {}. */
  smtp?: Listener;
  /** The submission listener: message submission; STARTTLS required before AUTH, AUTH required before MAIL. Default: {}. */
  submission?: Listener;
  /** The smtps listener: implicit TLS; AUTH required. Default: {}. */
  smtps?: Listener;
}

/** A cert-manager issuer: the operator creates a cert-manager.io/v1 Certificate for the pool's names and mounts the Secret cert-manager fills. Needs cert-manager's CRDs. */
export interface IssuerReference {
  /** Name of the Issuer or ClusterIssuer. */
  name: string;
  /** Issuer (same namespace) or ClusterIssuer. Default: "Issuer". */
  kind?: string;
  /** API group of the issuer. Default: "cert-manager.io". */
  group?: string;
}

/** TLS for the listeners (STARTTLS on smtp and submission, implicit TLS on smtps). The certificate comes from one of three places, in this order: secretName (your Secret), issuerRef (a cert-manager Certificate the operator creates), or else the operator itself (a per-pool CA and a serving certificate it renews). `tls: {}` is enough. */
export interface TLSSpec {
  /** A kubernetes.io/tls Secret you provide (tls.crt, tls.key), used as is. Rotations are picked up without restart. */
  secretName?: string;
  /** A cert-manager issuer: the operator creates a cert-manager.io/v1 Certificate for the pool's names and mounts the Secret cert-manager fills. Needs cert-manager's CRDs. */
  issuerRef?: IssuerReference;
  /** Extra names for the generated or cert-manager certificate, beside the pool's Service names (a LoadBalancer's public name, for example). Ignored with secretName. */
  dnsNames?: Array<string>;
  /** Lowest TLS version accepted. Default: "TLSv1.2". */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** SMTP AUTH (PLAIN, LOGIN), only ever offered over TLS. */
export interface AuthSpec {
  /** Required: every client authenticates. Optional: clients in allowedNetworks may relay without AUTH. Disabled: no AUTH; only allowedNetworks relay. Default: "Disabled". */
  mode?: 'Required' | 'Optional' | 'Disabled';
  /** A Secret whose keys are usernames and values passwords. Without it the operator generates one user and stores its password in the Secret <pool>-credentials. */
  credentialsSecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
  };
}

/** The upstream relay for mode Smarthost. */
export interface SmarthostSpec {
  /** Host name or IP of the smarthost. */
  host: string;
  /** Port of the smarthost. Default: 587. */
  port?: number;
  /** Implicit: TLS from the first byte (port 465). StartTLSRequired: fail unless STARTTLS succeeds. StartTLSOpportunistic: use STARTTLS when offered. Default: "StartTLSRequired". */
  tls?: 'Implicit' | 'StartTLSRequired' | 'StartTLSOpportunistic';
  /** A Secret with keys username and password for AUTH at the smarthost. */
  credentialsSecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
  };
}

/** The TLS policy of one recipient domain. */
export interface TLSDestinationPolicy {
  /** A recipient domain, or *.domain for its subdomains. */
  domain: string;
  /** The policy for this domain. */
  policy: 'DANEAndMTASTS' | 'DANE' | 'MTASTS' | 'Opportunistic' | 'Encrypt' | 'Verify';
}

/** TLS of Direct delivery. DANEAndMTASTS: DANE (RFC 7672) for the MX hosts with DNSSEC-validated TLSA records, MTASTS for the others (DANE takes precedence, RFC 8461 §2); without daneResolver the same as MTASTS. DANE: DANE where published, Opportunistic elsewhere; without daneResolver the same as Opportunistic. A DANE host gets mail only over STARTTLS whose certificate matches its TLSA records (DANE-EE, or DANE-TA with the MX host name); a failed or bogus lookup defers. MTASTS: what the recipient domain publishes with MTA-STS (RFC 8461): enforce = only the MX hosts its policy lists, each as Verify; testing = as Opportunistic, failures logged; no policy = Opportunistic. Opportunistic: STARTTLS when offered, any certificate, clear text otherwise. Encrypt: STARTTLS required, any certificate. Verify: STARTTLS required, the certificate must chain to a public CA and name the MX host. A host that does not meet the policy gets no mail: the next MX is tried, then the message is deferred. */
export interface TLSPolicySpec {
  /** Policy of recipient domains without an override. DANEAndMTASTS since DANE exists (it was MTASTS before: stored objects keep the value they were created with, and without daneResolver both behave alike). Default: "DANEAndMTASTS". */
  default?: 'DANEAndMTASTS' | 'DANE' | 'MTASTS' | 'Opportunistic' | 'Encrypt' | 'Verify';
  /** The DNSSEC-validating resolver DANE asks (ip or ip:port), one the relays can trust to validate: on their node or in their network (its AD bit is believed). Empty: no DANE. */
  daneResolver?: string;
  /** Policies per recipient domain (for example Verify to a partner). An exact domain wins over a *.domain entry. */
  destinations?: Array<TLSDestinationPolicy>;
}

/** TLS-RPT (RFC 8460): each relay counts the TLS results of its Direct delivery sessions per recipient domain and UTC day, and after the day sends the domains that publish _smtp._tls a gzip JSON report (POST to https: rua, a message through the pool itself to mailto: rua). With sharedState the counts are the pool’s and one relay sends the reports of each day; without it each relay counts (in memory) and reports its own. Absent: no reports. */
export interface TLSReportsSpec {
  /** organization-name of the reports. */
  organizationName: string;
  /** From address of mailed reports; its domain is the submitter. Make it a SendingDomain of the pool so the reports are DKIM-signed (RFC 8460 §5.3). */
  from: string;
  /** contact-info of the reports. Defaults to from. */
  contactInfo?: string;
}

/** How relays deliver mail onward. */
export interface DeliverySpec {
  /** Direct: look up each recipient domain's MX. Smarthost: send everything to one upstream. Default: "Direct". */
  mode?: 'Direct' | 'Smarthost';
  /** Host name used in EHLO/HELO. Defaults to the pod name. */
  ehloName?: string;
  /** The upstream relay for mode Smarthost. */
  smarthost?: SmarthostSpec;
  /** TLS of Direct delivery. DANEAndMTASTS: DANE (RFC 7672) for the MX hosts with DNSSEC-validated TLSA records, MTASTS for the others (DANE takes precedence, RFC 8461 §2); without daneResolver the same as MTASTS. DANE: DANE where published, Opportunistic elsewhere; without daneResolver the same as Opportunistic. A DANE host gets mail only over STARTTLS whose certificate matches its TLSA records (DANE-EE, or DANE-TA with the MX host name); a failed or bogus lookup defers. MTASTS: what the recipient domain publishes with MTA-STS (RFC 8461): enforce = only the MX hosts its policy lists, each as Verify; testing = as Opportunistic, failures logged; no policy = Opportunistic. Opportunistic: STARTTLS when offered, any certificate, clear text otherwise. Encrypt: STARTTLS required, any certificate. Verify: STARTTLS required, the certificate must chain to a public CA and name the MX host. A host that does not meet the policy gets no mail: the next MX is tried, then the message is deferred. Default: {}. */
  tlsPolicy?: TLSPolicySpec;
  /** TLS-RPT (RFC 8460): each relay counts the TLS results of its Direct delivery sessions per recipient domain and UTC day, and after the day sends the domains that publish _smtp._tls a gzip JSON report (POST to https: rua, a message through the pool itself to mailto: rua). With sharedState the counts are the pool’s and one relay sends the reports of each day; without it each relay counts (in memory) and reports its own. Absent: no reports. */
  tlsReports?: TLSReportsSpec;
  /** DNS servers (ip or ip:port) for MX lookups in Direct mode. Defaults to the pod's resolver. */
  resolvers?: Array<string>;
}

/** When to retry deferred mail and when to give up (bounce). */
export interface RetrySpec {
  /** Delay before the first retry; later retries back off exponentially with jitter. Default: "5m". */
  firstRetry?: string;
  /** Longest delay between two retries. Default: "1h". */
  maxBackoff?: string;
  /** How long a message may stay queued before it bounces as expired. Default: "5d". */
  maxQueueLifetime?: string;
  /** A recipient whose RFC 3461 NOTIFY lists DELAY and that is still being retried this long after its message arrived gets one "delayed" DSN (RFC 3464); without NOTIFY only failures are reported. 0s: never. Default: "4h". */
  delayWarningAfter?: string;
}

/** Limits every relay enforces on incoming SMTP sessions. */
export interface LimitsSpec {
  /** Largest accepted message (SIZE), as a quantity. Default: "25Mi". */
  maxMessageSize?: number | string;
  /** Recipients per message (RFC 5321 requires at least 100). Default: 100. */
  maxRecipients?: number;
  /** Concurrent SMTP sessions per relay. Default: 500. */
  maxConnections?: number;
  /** Concurrent SMTP sessions per client IP per relay. Default: 50. */
  maxConnectionsPerClient?: number;
}

/** Keep the spool on a PersistentVolume: the pool becomes a StatefulSet with one PVC per relay. Without it the spool is an emptyDir: a draining relay (scale-down, rollout, eviction) hands its queue to ready peers of the pool, and what no peer took before drainTimeout, or what a relay held when its node was lost, goes with the emptyDir. */
export interface PersistenceSpec {
  /** Size of each relay's volume. */
  size: number | string;
  /** Storage class of the volumes; the cluster default when empty. */
  storageClassName?: string;
}

/** The relays' spool. */
export interface QueueSpec {
  /** Keep the spool on a PersistentVolume: the pool becomes a StatefulSet with one PVC per relay. Without it the spool is an emptyDir: a draining relay (scale-down, rollout, eviction) hands its queue to ready peers of the pool, and what no peer took before drainTimeout, or what a relay held when its node was lost, goes with the emptyDir. */
  persistence?: PersistenceSpec;
  /** Most the emptyDir spool may hold (the emptyDir's sizeLimit): the kubelet evicts a relay whose emptyDir outgrows it, so the relay counts it as its quota and refuses new mail (452 4.3.1, not ready) while less than a tenth of it, at most 100 MiB, is left. Defaults to the relay's ephemeral-storage request (so the scheduler reserves what the spool may fill); none when neither is set. Not used with persistence. */
  sizeLimit?: number | string;
}

/** A Valkey/Redis store the pool's relays share state through: the suppression list (a hard bounce or complaint seen by one relay is refused by all) and the Pool-scoped RateLimits (rate and maxConnections enforced together, GCRA and connection leases in the store, instead of a fixed share per relay), delivery backoff, cached MTA-STS policies, TLS-RPT counts and the tracker's unique opens. Without it each relay keeps its own and enforces its share (condition SharedStateAvailable=False NotConfigured says so). The store down never stops mail: relays decide on their own copy and publish their changes when it answers again (docs/suppressions.md). */
export interface SharedStateSpec {
  /** redis://host:port or rediss://host:port (TLS) of the store. */
  url: string;
  /** A Secret in the pool's namespace holding the store's password, mounted into the relays. */
  passwordSecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
    /** Key of the password in the Secret (default: password). */
    key?: string;
  };
}

/** An HTTP webhook receiving the pool's delivery events (delivered, deferred, bounced, complained, suppressed) and, when a domain tracks, its tracker's opened and clicked events, as HMAC-signed JSON lines in batches, each event with an idempotency key, at least once from a durable outbox (each relay's spool volume; each tracker pod's emptyDir) (docs/events.md). The relays may reach the URL's port at any address (NetworkPolicy egress). */
export interface EventsSpec {
  /** http:// or https:// URL the batches are POSTed to. */
  url: string;
  /** A Secret in the pool's namespace holding the HMAC-SHA256 signing secret (at least 16 characters), mounted into the relays. */
  secretRef: {
    /** Name of the Secret in the same namespace. */
    name: string;
    /** Key of the secret in the Secret (default: secret). */
    key?: string;
  };
  /** Event types sent (default: all). */
  types?: Array<'delivered' | 'deferred' | 'bounced' | 'complained' | 'suppressed' | 'opened' | 'clicked'>;
  /** Most events in one POST. Default: 100. */
  batchSize?: number;
  /** How long the first event of a batch waits for others. Default: "1s". */
  batchInterval?: string;
  /** Bound of each relay's outbox on disk, in bytes; when the receiver is down long enough to fill it, the oldest events are dropped and counted (mailfleet_relay_events_dropped_total), mail never waits. Default: 268435456. */
  maxOutboxBytes?: number;
  /** The pool reports EventsDelivering=False (reason Behind) while a relay or a tracker pod holds an unacknowledged event older than this. Default: "15m". */
  maxLag?: string;
}

/** The return-path listener, for the pool's SendingDomains with spec.returnPath: bounces and complaints come back through the Service <pool>-return-path (port 25). */
export interface ReturnPathListenerSpec {
  /** Public host name that resolves to the external address of the Service <pool>-return-path: the MX every return-path domain of the pool publishes (SendingDomain status.returnPathMX). Defaults to delivery.ehloName; with neither, the domains report ReturnPathReady=False. */
  host?: string;
}

/** The Service in front of the relays. */
export interface ServiceSpec {
  /** Service type. Default: "ClusterIP". */
  type?: 'ClusterIP' | 'LoadBalancer' | 'NodePort';
  /** Annotations for the Service (for example load-balancer settings). */
  annotations?: Record<string, string>;
  /** Client CIDRs allowed through a LoadBalancer. */
  loadBalancerSourceRanges?: Array<string>;
}

/** A HorizontalPodAutoscaler for the pool. */
export interface AutoscalingSpec {
  /** Lower bound of replicas. Default: 2. */
  minReplicas?: number;
  /** Upper bound of replicas. */
  maxReplicas: number;
  /** Average CPU utilization the HPA aims at. Default: 70. */
  targetCPUUtilizationPercentage?: number;
}

/** Prometheus integration. */
export interface MonitoringSpec {
  /** Create a ServiceMonitor when the monitoring.coreos.com CRDs exist. Default: false. */
  serviceMonitor?: boolean;
  /** Extra labels for the ServiceMonitor (to match a Prometheus selector). */
  labels?: Record<string, string>;
  /** Scrape interval. Default: "30s". */
  interval?: string;
}

/** A NetworkPolicy admitting only the listeners (from client networks), the management port (from the operator and monitoring), handoff between the relays of the pool, and only DNS and SMTP egress. */
export interface NetworkPolicySpec {
  /** Create the NetworkPolicy. Default: true. */
  enabled?: boolean;
  /** Networks allowed to reach the management port 8080 besides the pods of the operator's namespace, the operator's --monitoring-namespaces and managementNamespaces: a Prometheus outside the cluster, the API server's addresses for `mailfleet queue` through the pod proxy. */
  metricsFrom?: Array<string>;
  /** Namespaces whose pods may reach the management port 8080 (for example where Prometheus runs), in addition to the operator's own and its --monitoring-namespaces. */
  managementNamespaces?: Array<string>;
  /** Networks allowed to reach the SMTP listeners. Default: allowedNetworks when auth.mode is Disabled (nobody else can relay); anywhere otherwise (authenticated clients may come from anywhere). */
  clientsFrom?: Array<string>;
}

/** Desired state of a fleet of SMTP relays. */
export interface RelayPoolSpec {
  /** Number of relay pods. Scaled by `kubectl scale` and by an HPA through the scale subresource. Default: 2. */
  replicas?: number;
  /** Relay container image. Defaults to the image the operator runs with. */
  image?: string;
  /** Secrets in the pool's namespace for pulling the relay image from a private registry (the pod's imagePullSecrets). Defaults to the operator's --image-pull-secrets (the chart's relays.imagePullSecrets, else its imagePullSecrets); an empty list sets none. */
  imagePullSecrets?: Array<ImagePullSecret>;
  /** Compute resources of each relay container (as in a Pod spec). Setting resources replaces the whole default (so a larger memory request never meets the default limit). No ephemeral-storage limit by default: past it the kubelet evicts the pod, and an emptyDir spool goes with it. Defaults and sizing: docs/operator.md#sizing-relays. Default: {"requests":{"cpu":"250m","memory":"256Mi","ephemeral-storage":"1Gi"},"limits":{"memory":"512Mi"}}. */
  resources?: ResourceRequirements;
  /** Where relay pods may run. By default pods spread across nodes and zones. */
  scheduling?: Scheduling;
  /** Which SMTP listeners run, and on which ports. Default: {}. */
  listeners?: Listeners;
  /** TLS for the listeners (STARTTLS on smtp and submission, implicit TLS on smtps). The certificate comes from one of three places, in this order: secretName (your Secret), issuerRef (a cert-manager Certificate the operator creates), or else the operator itself (a per-pool CA and a serving certificate it renews). `tls: {}` is enough. */
  tls?: TLSSpec;
  /** SMTP AUTH (PLAIN, LOGIN), only ever offered over TLS. Default: {}. */
  auth?: AuthSpec;
  /** Client networks that may relay without AUTH (for example the cluster pod CIDR). Nothing else may relay unauthenticated: the fleet is never an open relay. */
  allowedNetworks?: Array<string>;
  /** How relays deliver mail onward. Default: {}. */
  delivery?: DeliverySpec;
  /** When to retry deferred mail and when to give up (bounce). Default: {}. */
  retry?: RetrySpec;
  /** Limits every relay enforces on incoming SMTP sessions. Default: {}. */
  limits?: LimitsSpec;
  /** The relays' spool. */
  queue?: QueueSpec;
  /** A Valkey/Redis store the pool's relays share state through: the suppression list (a hard bounce or complaint seen by one relay is refused by all) and the Pool-scoped RateLimits (rate and maxConnections enforced together, GCRA and connection leases in the store, instead of a fixed share per relay), delivery backoff, cached MTA-STS policies, TLS-RPT counts and the tracker's unique opens. Without it each relay keeps its own and enforces its share (condition SharedStateAvailable=False NotConfigured says so). The store down never stops mail: relays decide on their own copy and publish their changes when it answers again (docs/suppressions.md). */
  sharedState?: SharedStateSpec;
  /** An HTTP webhook receiving the pool's delivery events (delivered, deferred, bounced, complained, suppressed) and, when a domain tracks, its tracker's opened and clicked events, as HMAC-signed JSON lines in batches, each event with an idempotency key, at least once from a durable outbox (each relay's spool volume; each tracker pod's emptyDir) (docs/events.md). The relays may reach the URL's port at any address (NetworkPolicy egress). */
  events?: EventsSpec;
  /** How long a stopping relay may take to finish sessions and flush or hand off its queue. Default: "60s". */
  drainTimeout?: string;
  /** What deleting the pool does with mail its relays still hold. Drain: a finalizer (mailfleet.dev/drain) keeps the pool and its relays, delivering, until every relay reports an empty queue (each message is delivered or, after retry.maxQueueLifetime, bounced to its sender) and, with spec.events, the tracker (scaled to 0 at the deletion) is gone and the events outbox of every relay reads empty (waited for at most retry.maxQueueLifetime after the deletion); status reports the counts meanwhile. Discard: the relays are deleted at once with what they hold. Setting Discard on a pool being deleted ends its drain. docs/operator.md#deleting-a-pool. Default: "Drain". */
  deletionPolicy?: 'Drain' | 'Discard';
  /** With deletionPolicy Drain: a RelayPool of the same namespace that receives the queue when this pool is deleted. Its relays stop delivering and hand every queued message (and whatever joins the queue later) to that pool's relays through their handoff port, signed with that pool's handoff Secret; the finalizer goes once their queues are empty. While the named pool does not exist, is being deleted itself or has no ready relay, the relays deliver themselves and status says HandOffTargetMissing. The relays mount the named pool's <pool>-handoff Secret from when this is set, so setting or changing it rolls the relays once (a lossless rollout); at deletion only the relay config changes. docs/operator.md#deleting-a-pool. */
  deletionHandOffTo?: string;
  /** The return-path listener, for the pool's SendingDomains with spec.returnPath: bounces and complaints come back through the Service <pool>-return-path (port 25). */
  returnPath?: ReturnPathListenerSpec;
  /** The Service in front of the relays. Default: {}. */
  service?: ServiceSpec;
  /** A HorizontalPodAutoscaler for the pool. */
  autoscaling?: AutoscalingSpec;
  /** Prometheus integration. Default: {}. */
  monitoring?: MonitoringSpec;
  /** A NetworkPolicy admitting only the listeners (from client networks), the management port (from the operator and monitoring), handoff between the relays of the pool, and only DNS and SMTP egress. Default: {}. */
  networkPolicy?: NetworkPolicySpec;
}

/** A condition in the standard Kubernetes shape (metav1.Condition). */
export interface Condition {
  /** Type of the condition in CamelCase, for example Ready. */
  type: string;
  /** Status of the condition. */
  status: 'True' | 'False' | 'Unknown';
  /** A CamelCase reason for the last transition. */
  reason: string;
  /** A human-readable explanation of the last transition. */
  message: string;
  /** When the status last changed. */
  lastTransitionTime: string;
  /** The .metadata.generation the condition was set for. */
  observedGeneration?: number;
}

/** A listener port. */
export interface EndpointPort {
  /** Listener name. */
  name?: string;
  /** Port. */
  port?: number;
}

/** Where applications reach the pool. */
export interface Endpoint {
  /** The Service DNS name. */
  host?: string;
  /** The enabled listener ports. */
  ports?: Array<EndpointPort>;
}

/** The certificate the relays serve. */
export interface TLSStatus {
  /** Where it comes from. */
  source?: 'Secret' | 'CertManager' | 'Generated';
  /** The Secret mounted into the relays. */
  secretName?: string;
  /** The names the certificate is valid for (its subjectAltName). */
  dnsNames?: Array<string>;
  /** When the certificate expires. */
  notAfter?: string;
  /** When the operator replaces it (generated certificates only). */
  renewalTime?: string;
  /** ConfigMap with ca.crt, the CA that signed a generated certificate, for clients in the cluster to trust. */
  caConfigMap?: string;
}

/** Observed state of the pool. */
export interface RelayPoolStatus {
  /** The .metadata.generation that the status describes. */
  observedGeneration?: number;
  /** Conditions of the resource: Ready, Progressing, Degraded and kind-specific ones. */
  conditions?: Array<Condition>;
  /** Relay pods that exist. */
  replicas?: number;
  /** Relay pods that are ready. */
  readyReplicas?: number;
  /** Label selector of the relay pods (for the scale subresource). */
  selector?: string;
  /** SendingDomains bound to this pool. */
  domains?: number;
  /** Where applications reach the pool. */
  endpoint?: Endpoint;
  /** The Secret holding the bearer tokens of the relays' management API (keys read and admin); edit or delete it to rotate them. */
  adminTokensSecret?: string;
  /** While the pool is being deleted with deletionPolicy Drain: delivery jobs (message x destination) the relays reported queued at their last scrape. */
  queuedJobs?: number;
  /** StatefulSet pools: retained spool claims whose absorb Job failed, since each was last absorbed (docs/operator.md, "Retained queue claims"). The failed Jobs are deleted to be remade: this is their count. */
  absorbFailures?: Array<{
    /** The PersistentVolumeClaim. */
    claim: string;
    /** Absorb Jobs of this claim that failed. */
    failures: number;
    /** uid of the last failed Job counted. */
    lastFailedJob: string;
    /** When that Job failed. */
    lastFailureTime: string;
  }>;
  /** The certificate the relays serve. */
  tls?: TLSStatus;
}

/** The RelayPool (in the same namespace) that this resource belongs to. */
export interface PoolReference {
  /** Name of the RelayPool. */
  name: string;
}

/** DKIM signing of the domain's mail. */
export interface DKIMSpec {
  /** DKIM selector; the public key is published at <selector>._domainkey.<domain>. A new selector means a new key. Default: "mailfleet". */
  selector?: string;
  /** Signing algorithm: rsa-sha256 (2048-bit key) or ed25519-sha256. Default: "rsa-sha256". */
  algorithm?: 'rsa-sha256' | 'ed25519-sha256';
  /** A Secret holding the PEM private key. Without it the operator generates a key and never silently replaces it. */
  keySecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
    /** Key in the Secret holding the PEM private key (default dkim.key). */
    key?: string;
  };
}

/** What the operator does when the domain's bounce rate, measured across the whole pool, is too high. */
export interface BouncePolicySpec {
  /** Highest acceptable share of bounced recipients (0.05 = 5%). Default: 0.05. */
  maxBounceRate?: number;
  /** Highest acceptable share of recipients who reported the mail as spam through a feedback loop (ARF reports at the return-path listener; 0.003 = 0.3%, the Gmail/Yahoo bulk-sender threshold). Needs spec.returnPath. Default: 0.003. */
  maxComplaintRate?: number;
  /** Window over which the bounce rate is measured. Default: "1h". */
  window?: string;
  /** Fewest recipients in the window before the rate is judged. Default: 100. */
  minMessages?: number;
  /** Suspend: the relays keep the domain's mail queued until resumed. Alert: only report. Default: "Alert". */
  action?: 'Suspend' | 'Alert';
}

/** Open and click tracking of the domain's HTML mail; off unless set. The relays rewrite each HTML part before DKIM signing: links become signed redirects through the tracking host, and a 1x1 pixel is added. Tracking records readers' behaviour: tell your recipients (privacy policy) and mind the consent rules that apply to them; see docs/tracking.md. */
export interface TrackingSpec {
  /** Add an open pixel to HTML parts. Default: false. */
  opens?: boolean;
  /** Rewrite links of HTML parts into tracked redirects. Default: false. */
  clicks?: boolean;
  /** Host name of the tracking endpoint (the pool's tracker, exposed over HTTPS by your Ingress or Gateway), for example t.example.com. */
  host?: string;
}

/** A domain that a RelayPool may send for. */
export interface SendingDomainSpec {
  /** The sending domain (MAIL FROM and From: domain), for example mail.example.com. Immutable. */
  domain: string;
  /** The RelayPool (in the same namespace) that this resource belongs to. */
  poolRef: PoolReference;
  /** DKIM signing of the domain's mail. Default: {}. */
  dkim?: DKIMSpec;
  /** Domain used for the envelope sender (bounces), when it differs from domain. */
  returnPath?: string;
  /** What the operator does when the domain's bounce rate, measured across the whole pool, is too high. Default: {}. */
  bouncePolicy?: BouncePolicySpec;
  /** Open and click tracking of the domain's HTML mail; off unless set. The relays rewrite each HTML part before DKIM signing: links become signed redirects through the tracking host, and a 1x1 pixel is added. Tracking records readers' behaviour: tell your recipients (privacy policy) and mind the consent rules that apply to them; see docs/tracking.md. */
  tracking?: TrackingSpec;
  /** Hold this domain's outgoing mail in the queue (accepted, not delivered). Set false to resume after an automatic suspension. Default: false. */
  suspend?: boolean;
}

/** The TXT record to publish. */
export interface DNSRecord {
  /** Record name. */
  name?: string;
  /** Record type. */
  type?: string;
  /** Record value. */
  value?: string;
}

/** The DKIM key in use and the DNS record to publish for it. */
export interface DKIMStatus {
  /** Selector in use. */
  selector?: string;
  /** Algorithm in use. */
  algorithm?: string;
  /** Secret holding the private key. */
  secretName?: string;
  /** The TXT record to publish. */
  dnsRecord?: DNSRecord;
  /** A new selector (spec.dkim.selector) whose record is not verified yet: the relays keep signing with the selector in use until it is. */
  pendingSelector?: string;
  /** The TXT record of the pending selector, to publish before the switch. */
  pendingDnsRecord?: DNSRecord;
}

/** The domain's last hour, from its pool's relays and tracker as the operator last scraped them (docs/tracking.md#rates). A rate is absent while its denominator is 0. */
export interface SendingDomainRates {
  /** The window the counts cover (1h). */
  window?: string;
  /** Recipients delivered. */
  delivered?: number;
  /** Recipients bounced: refused for good (5xx) at delivery, or bounced after delivery (return path). */
  bounced?: number;
  /** Messages opened by human readers: the first open of each message counts, later ones only in totalOpens (across the tracker pods through spec.sharedState, else per tracker pod, docs/tracking.md#rates; machine reads excluded). */
  opens?: number;
  /** Open pixels fetched by human readers, every fetch (machine reads excluded). */
  totalOpens?: number;
  /** Tracked links followed by human readers (machine reads excluded). */
  clicks?: number;
  /** opens / delivered, as a decimal string (a message opened twice counts once). */
  openRate?: string;
  /** clicks / delivered, as a decimal string. */
  clickThroughRate?: string;
  /** bounced / (delivered + bounced at delivery), at most 1, as a decimal string. */
  bounceRate?: string;
}

/** Observed state of the domain. */
export interface SendingDomainStatus {
  /** The .metadata.generation that the status describes. */
  observedGeneration?: number;
  /** Conditions of the resource: Ready, Progressing, Degraded and kind-specific ones. */
  conditions?: Array<Condition>;
  /** The DKIM key in use and the DNS record to publish for it. */
  dkim?: DKIMStatus;
  /** A recommended SPF record. */
  spf?: DNSRecord;
  /** The MX record to publish for spec.returnPath: bounces and complaints go to the pool's return-path Service (port 25), whose external address the named host (the RelayPool's spec.returnPath.host, else delivery.ehloName) must resolve to. Absent, with ReturnPathReady=False, when the pool names neither. */
  returnPathMX?: DNSRecord;
  /** A recommended DMARC record. */
  dmarc?: DNSRecord;
  /** Last measured bounce rate over the policy window, as a decimal string. */
  bounceRate?: string;
  /** Recipients the last measurement covered. */
  bounceRateMessages?: number;
  /** Of the bounces in bounceRate, those that came back after delivery (through the return path). */
  asyncBounces?: number;
  /** Last measured complaint (feedback-loop spam report) rate over the policy window, as a decimal string. */
  complaintRate?: string;
  /** When the domain was suspended automatically. */
  suspendedAt?: string;
  /** The domain's last hour, from its pool's relays and tracker as the operator last scraped them (docs/tracking.md#rates). A rate is absent while its denominator is 0. */
  rates?: SendingDomainRates;
}

/** Which messages the limit applies to. Every listed criterion must match; an empty match applies to all the pool's mail. */
export interface RateLimitMatch {
  /** Sender (MAIL FROM) domains. */
  senderDomains?: Array<string>;
  /** Sender addresses. */
  senderAddresses?: Array<string>;
  /** Recipient domains (destinations). */
  recipientDomains?: Array<string>;
  /** MX rollup: destinations whose MX hosts match one of these (for example *.google.com) share this limit. */
  recipientMXHosts?: Array<string>;
}

/** Messages admitted per period (a token bucket). */
export interface Rate {
  /** Messages per period. */
  messages: number;
  /** The period. */
  per: 'Second' | 'Minute' | 'Hour' | 'Day';
}

/** Sending and connection limits for part of a pool's traffic. */
export interface RateLimitSpec {
  /** The RelayPool (in the same namespace) that this resource belongs to. */
  poolRef: PoolReference;
  /** Which messages the limit applies to. Every listed criterion must match; an empty match applies to all the pool's mail. Default: {}. */
  match?: RateLimitMatch;
  /** Messages admitted per period (a token bucket). */
  rate?: Rate;
  /** Messages that may go at once before the rate applies (bucket size). Defaults to the per-second rate, at least 1. */
  burst?: number;
  /** Concurrent outbound connections per destination (open connections, idle ones included). */
  maxConnections?: number;
  /** Messages sent over one outbound connection before it is closed. */
  maxMessagesPerConnection?: number;
  /** PerRelay: each relay applies the numbers. Pool: the numbers are for the whole pool; with the pool's spec.sharedState the relays enforce the rate (Defer and Reject alike) and maxConnections (each open connection a lease) together in the store, otherwise, and while the store does not answer, each relay enforces its share of ready replicas. Default: "PerRelay". */
  scope?: 'PerRelay' | 'Pool';
  /** Defer: keep the message queued until the limit admits it. Reject: answer 451 4.7.0 at submission so the client retries. Default: "Defer". */
  onExceed?: 'Defer' | 'Reject';
}

/** Observed state of the limit. */
export interface RateLimitStatus {
  /** The .metadata.generation that the status describes. */
  observedGeneration?: number;
  /** Conditions of the resource: Ready, Progressing, Degraded and kind-specific ones. */
  conditions?: Array<Condition>;
  /** The rate each relay enforces (its share for scope Pool), for example 3.33/s. */
  effectiveRate?: string;
  /** Ready relays sharing a Pool-scoped limit. */
  sharedBy?: number;
}

/** The smtp listener: relay for allowed networks (and authenticated users); STARTTLS offered when tls is set. (schema defaults applied) */
export interface DefaultedListener {
  /** Whether the smtp listener runs. Default: true. */
  enabled: boolean;
  /** Container and Service port of the smtp listener. Default: 25. */
  port: number;
}

/** Which SMTP listeners run, and on which ports. (schema defaults applied) */
export interface DefaultedListeners {
  /** The smtp listener: relay for allowed networks (and authenticated users); STARTTLS offered when tls is set. Default: {}. */
  smtp: DefaultedListener;
  /** The submission listener: message submission; STARTTLS required before AUTH, AUTH required before MAIL. Default: {}. */
  submission: DefaultedListener;
  /** The smtps listener: implicit TLS; AUTH required. Default: {}. */
  smtps: DefaultedListener;
}

/** A cert-manager issuer: the operator creates a cert-manager.io/v1 Certificate for the pool's names and mounts the Secret cert-manager fills. Needs cert-manager's CRDs. (schema defaults applied) */
export interface DefaultedIssuerReference {
  /** Name of the Issuer or ClusterIssuer. */
  name: string;
  /** Issuer (same namespace) or ClusterIssuer. Default: "Issuer". */
  kind: string;
  /** API group of the issuer. Default: "cert-manager.io". */
  group: string;
}

/** TLS for the listeners (STARTTLS on smtp and submission, implicit TLS on smtps). The certificate comes from one of three places, in this order: secretName (your Secret), issuerRef (a cert-manager Certificate the operator creates), or else the operator itself (a per-pool CA and a serving certificate it renews). `tls: {}` is enough. (schema defaults applied) */
export interface DefaultedTLSSpec {
  /** A kubernetes.io/tls Secret you provide (tls.crt, tls.key), used as is. Rotations are picked up without restart. */
  secretName?: string;
  /** A cert-manager issuer: the operator creates a cert-manager.io/v1 Certificate for the pool's names and mounts the Secret cert-manager fills. Needs cert-manager's CRDs. */
  issuerRef?: DefaultedIssuerReference;
  /** Extra names for the generated or cert-manager certificate, beside the pool's Service names (a LoadBalancer's public name, for example). Ignored with secretName. */
  dnsNames?: Array<string>;
  /** Lowest TLS version accepted. Default: "TLSv1.2". */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** SMTP AUTH (PLAIN, LOGIN), only ever offered over TLS. (schema defaults applied) */
export interface DefaultedAuthSpec {
  /** Required: every client authenticates. Optional: clients in allowedNetworks may relay without AUTH. Disabled: no AUTH; only allowedNetworks relay. Default: "Disabled". */
  mode: 'Required' | 'Optional' | 'Disabled';
  /** A Secret whose keys are usernames and values passwords. Without it the operator generates one user and stores its password in the Secret <pool>-credentials. */
  credentialsSecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
  };
}

/** The upstream relay for mode Smarthost. (schema defaults applied) */
export interface DefaultedSmarthostSpec {
  /** Host name or IP of the smarthost. */
  host: string;
  /** Port of the smarthost. Default: 587. */
  port: number;
  /** Implicit: TLS from the first byte (port 465). StartTLSRequired: fail unless STARTTLS succeeds. StartTLSOpportunistic: use STARTTLS when offered. Default: "StartTLSRequired". */
  tls: 'Implicit' | 'StartTLSRequired' | 'StartTLSOpportunistic';
  /** A Secret with keys username and password for AUTH at the smarthost. */
  credentialsSecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
  };
}

/** TLS of Direct delivery. DANEAndMTASTS: DANE (RFC 7672) for the MX hosts with DNSSEC-validated TLSA records, MTASTS for the others (DANE takes precedence, RFC 8461 §2); without daneResolver the same as MTASTS. DANE: DANE where published, Opportunistic elsewhere; without daneResolver the same as Opportunistic. A DANE host gets mail only over STARTTLS whose certificate matches its TLSA records (DANE-EE, or DANE-TA with the MX host name); a failed or bogus lookup defers. MTASTS: what the recipient domain publishes with MTA-STS (RFC 8461): enforce = only the MX hosts its policy lists, each as Verify; testing = as Opportunistic, failures logged; no policy = Opportunistic. Opportunistic: STARTTLS when offered, any certificate, clear text otherwise. Encrypt: STARTTLS required, any certificate. Verify: STARTTLS required, the certificate must chain to a public CA and name the MX host. A host that does not meet the policy gets no mail: the next MX is tried, then the message is deferred. (schema defaults applied) */
export interface DefaultedTLSPolicySpec {
  /** Policy of recipient domains without an override. DANEAndMTASTS since DANE exists (it was MTASTS before: stored objects keep the value they were created with, and without daneResolver both behave alike). Default: "DANEAndMTASTS". */
  default: 'DANEAndMTASTS' | 'DANE' | 'MTASTS' | 'Opportunistic' | 'Encrypt' | 'Verify';
  /** The DNSSEC-validating resolver DANE asks (ip or ip:port), one the relays can trust to validate: on their node or in their network (its AD bit is believed). Empty: no DANE. */
  daneResolver?: string;
  /** Policies per recipient domain (for example Verify to a partner). An exact domain wins over a *.domain entry. */
  destinations?: Array<TLSDestinationPolicy>;
}

/** How relays deliver mail onward. (schema defaults applied) */
export interface DefaultedDeliverySpec {
  /** Direct: look up each recipient domain's MX. Smarthost: send everything to one upstream. Default: "Direct". */
  mode: 'Direct' | 'Smarthost';
  /** Host name used in EHLO/HELO. Defaults to the pod name. */
  ehloName?: string;
  /** The upstream relay for mode Smarthost. */
  smarthost?: DefaultedSmarthostSpec;
  /** TLS of Direct delivery. DANEAndMTASTS: DANE (RFC 7672) for the MX hosts with DNSSEC-validated TLSA records, MTASTS for the others (DANE takes precedence, RFC 8461 §2); without daneResolver the same as MTASTS. DANE: DANE where published, Opportunistic elsewhere; without daneResolver the same as Opportunistic. A DANE host gets mail only over STARTTLS whose certificate matches its TLSA records (DANE-EE, or DANE-TA with the MX host name); a failed or bogus lookup defers. MTASTS: what the recipient domain publishes with MTA-STS (RFC 8461): enforce = only the MX hosts its policy lists, each as Verify; testing = as Opportunistic, failures logged; no policy = Opportunistic. Opportunistic: STARTTLS when offered, any certificate, clear text otherwise. Encrypt: STARTTLS required, any certificate. Verify: STARTTLS required, the certificate must chain to a public CA and name the MX host. A host that does not meet the policy gets no mail: the next MX is tried, then the message is deferred. Default: {}. */
  tlsPolicy: DefaultedTLSPolicySpec;
  /** TLS-RPT (RFC 8460): each relay counts the TLS results of its Direct delivery sessions per recipient domain and UTC day, and after the day sends the domains that publish _smtp._tls a gzip JSON report (POST to https: rua, a message through the pool itself to mailto: rua). With sharedState the counts are the pool’s and one relay sends the reports of each day; without it each relay counts (in memory) and reports its own. Absent: no reports. */
  tlsReports?: TLSReportsSpec;
  /** DNS servers (ip or ip:port) for MX lookups in Direct mode. Defaults to the pod's resolver. */
  resolvers?: Array<string>;
}

/** When to retry deferred mail and when to give up (bounce). (schema defaults applied) */
export interface DefaultedRetrySpec {
  /** Delay before the first retry; later retries back off exponentially with jitter. Default: "5m". */
  firstRetry: string;
  /** Longest delay between two retries. Default: "1h". */
  maxBackoff: string;
  /** How long a message may stay queued before it bounces as expired. Default: "5d". */
  maxQueueLifetime: string;
  /** A recipient whose RFC 3461 NOTIFY lists DELAY and that is still being retried this long after its message arrived gets one "delayed" DSN (RFC 3464); without NOTIFY only failures are reported. 0s: never. Default: "4h". */
  delayWarningAfter: string;
}

/** Limits every relay enforces on incoming SMTP sessions. (schema defaults applied) */
export interface DefaultedLimitsSpec {
  /** Largest accepted message (SIZE), as a quantity. Default: "25Mi". */
  maxMessageSize: number | string;
  /** Recipients per message (RFC 5321 requires at least 100). Default: 100. */
  maxRecipients: number;
  /** Concurrent SMTP sessions per relay. Default: 500. */
  maxConnections: number;
  /** Concurrent SMTP sessions per client IP per relay. Default: 50. */
  maxConnectionsPerClient: number;
}

/** An HTTP webhook receiving the pool's delivery events (delivered, deferred, bounced, complained, suppressed) and, when a domain tracks, its tracker's opened and clicked events, as HMAC-signed JSON lines in batches, each event with an idempotency key, at least once from a durable outbox (each relay's spool volume; each tracker pod's emptyDir) (docs/events.md). The relays may reach the URL's port at any address (NetworkPolicy egress). (schema defaults applied) */
export interface DefaultedEventsSpec {
  /** http:// or https:// URL the batches are POSTed to. */
  url: string;
  /** A Secret in the pool's namespace holding the HMAC-SHA256 signing secret (at least 16 characters), mounted into the relays. */
  secretRef: {
    /** Name of the Secret in the same namespace. */
    name: string;
    /** Key of the secret in the Secret (default: secret). */
    key?: string;
  };
  /** Event types sent (default: all). */
  types?: Array<'delivered' | 'deferred' | 'bounced' | 'complained' | 'suppressed' | 'opened' | 'clicked'>;
  /** Most events in one POST. Default: 100. */
  batchSize: number;
  /** How long the first event of a batch waits for others. Default: "1s". */
  batchInterval: string;
  /** Bound of each relay's outbox on disk, in bytes; when the receiver is down long enough to fill it, the oldest events are dropped and counted (mailfleet_relay_events_dropped_total), mail never waits. Default: 268435456. */
  maxOutboxBytes: number;
  /** The pool reports EventsDelivering=False (reason Behind) while a relay or a tracker pod holds an unacknowledged event older than this. Default: "15m". */
  maxLag: string;
}

/** The Service in front of the relays. (schema defaults applied) */
export interface DefaultedServiceSpec {
  /** Service type. Default: "ClusterIP". */
  type: 'ClusterIP' | 'LoadBalancer' | 'NodePort';
  /** Annotations for the Service (for example load-balancer settings). */
  annotations?: Record<string, string>;
  /** Client CIDRs allowed through a LoadBalancer. */
  loadBalancerSourceRanges?: Array<string>;
}

/** A HorizontalPodAutoscaler for the pool. (schema defaults applied) */
export interface DefaultedAutoscalingSpec {
  /** Lower bound of replicas. Default: 2. */
  minReplicas: number;
  /** Upper bound of replicas. */
  maxReplicas: number;
  /** Average CPU utilization the HPA aims at. Default: 70. */
  targetCPUUtilizationPercentage: number;
}

/** Prometheus integration. (schema defaults applied) */
export interface DefaultedMonitoringSpec {
  /** Create a ServiceMonitor when the monitoring.coreos.com CRDs exist. Default: false. */
  serviceMonitor: boolean;
  /** Extra labels for the ServiceMonitor (to match a Prometheus selector). */
  labels?: Record<string, string>;
  /** Scrape interval. Default: "30s". */
  interval: string;
}

/** A NetworkPolicy admitting only the listeners (from client networks), the management port (from the operator and monitoring), handoff between the relays of the pool, and only DNS and SMTP egress. (schema defaults applied) */
export interface DefaultedNetworkPolicySpec {
  /** Create the NetworkPolicy. Default: true. */
  enabled: boolean;
  /** Networks allowed to reach the management port 8080 besides the pods of the operator's namespace, the operator's --monitoring-namespaces and managementNamespaces: a Prometheus outside the cluster, the API server's addresses for `mailfleet queue` through the pod proxy. */
  metricsFrom?: Array<string>;
  /** Namespaces whose pods may reach the management port 8080 (for example where Prometheus runs), in addition to the operator's own and its --monitoring-namespaces. */
  managementNamespaces?: Array<string>;
  /** Networks allowed to reach the SMTP listeners. Default: allowedNetworks when auth.mode is Disabled (nobody else can relay); anywhere otherwise (authenticated clients may come from anywhere). */
  clientsFrom?: Array<string>;
}

/** Desired state of a fleet of SMTP relays. (schema defaults applied) */
export interface DefaultedRelayPoolSpec {
  /** Number of relay pods. Scaled by `kubectl scale` and by an HPA through the scale subresource. Default: 2. */
  replicas: number;
  /** Relay container image. Defaults to the image the operator runs with. */
  image?: string;
  /** Secrets in the pool's namespace for pulling the relay image from a private registry (the pod's imagePullSecrets). Defaults to the operator's --image-pull-secrets (the chart's relays.imagePullSecrets, else its imagePullSecrets); an empty list sets none. */
  imagePullSecrets?: Array<ImagePullSecret>;
  /** Compute resources of each relay container (as in a Pod spec). Setting resources replaces the whole default (so a larger memory request never meets the default limit). No ephemeral-storage limit by default: past it the kubelet evicts the pod, and an emptyDir spool goes with it. Defaults and sizing: docs/operator.md#sizing-relays. Default: {"requests":{"cpu":"250m","memory":"256Mi","ephemeral-storage":"1Gi"},"limits":{"memory":"512Mi"}}. */
  resources: ResourceRequirements;
  /** Where relay pods may run. By default pods spread across nodes and zones. */
  scheduling?: Scheduling;
  /** Which SMTP listeners run, and on which ports. Default: {}. */
  listeners: DefaultedListeners;
  /** TLS for the listeners (STARTTLS on smtp and submission, implicit TLS on smtps). The certificate comes from one of three places, in this order: secretName (your Secret), issuerRef (a cert-manager Certificate the operator creates), or else the operator itself (a per-pool CA and a serving certificate it renews). `tls: {}` is enough. */
  tls?: DefaultedTLSSpec;
  /** SMTP AUTH (PLAIN, LOGIN), only ever offered over TLS. Default: {}. */
  auth: DefaultedAuthSpec;
  /** Client networks that may relay without AUTH (for example the cluster pod CIDR). Nothing else may relay unauthenticated: the fleet is never an open relay. */
  allowedNetworks?: Array<string>;
  /** How relays deliver mail onward. Default: {}. */
  delivery: DefaultedDeliverySpec;
  /** When to retry deferred mail and when to give up (bounce). Default: {}. */
  retry: DefaultedRetrySpec;
  /** Limits every relay enforces on incoming SMTP sessions. Default: {}. */
  limits: DefaultedLimitsSpec;
  /** The relays' spool. */
  queue?: QueueSpec;
  /** A Valkey/Redis store the pool's relays share state through: the suppression list (a hard bounce or complaint seen by one relay is refused by all) and the Pool-scoped RateLimits (rate and maxConnections enforced together, GCRA and connection leases in the store, instead of a fixed share per relay), delivery backoff, cached MTA-STS policies, TLS-RPT counts and the tracker's unique opens. Without it each relay keeps its own and enforces its share (condition SharedStateAvailable=False NotConfigured says so). The store down never stops mail: relays decide on their own copy and publish their changes when it answers again (docs/suppressions.md). */
  sharedState?: SharedStateSpec;
  /** An HTTP webhook receiving the pool's delivery events (delivered, deferred, bounced, complained, suppressed) and, when a domain tracks, its tracker's opened and clicked events, as HMAC-signed JSON lines in batches, each event with an idempotency key, at least once from a durable outbox (each relay's spool volume; each tracker pod's emptyDir) (docs/events.md). The relays may reach the URL's port at any address (NetworkPolicy egress). */
  events?: DefaultedEventsSpec;
  /** How long a stopping relay may take to finish sessions and flush or hand off its queue. Default: "60s". */
  drainTimeout: string;
  /** What deleting the pool does with mail its relays still hold. Drain: a finalizer (mailfleet.dev/drain) keeps the pool and its relays, delivering, until every relay reports an empty queue (each message is delivered or, after retry.maxQueueLifetime, bounced to its sender) and, with spec.events, the tracker (scaled to 0 at the deletion) is gone and the events outbox of every relay reads empty (waited for at most retry.maxQueueLifetime after the deletion); status reports the counts meanwhile. Discard: the relays are deleted at once with what they hold. Setting Discard on a pool being deleted ends its drain. docs/operator.md#deleting-a-pool. Default: "Drain". */
  deletionPolicy: 'Drain' | 'Discard';
  /** With deletionPolicy Drain: a RelayPool of the same namespace that receives the queue when this pool is deleted. Its relays stop delivering and hand every queued message (and whatever joins the queue later) to that pool's relays through their handoff port, signed with that pool's handoff Secret; the finalizer goes once their queues are empty. While the named pool does not exist, is being deleted itself or has no ready relay, the relays deliver themselves and status says HandOffTargetMissing. The relays mount the named pool's <pool>-handoff Secret from when this is set, so setting or changing it rolls the relays once (a lossless rollout); at deletion only the relay config changes. docs/operator.md#deleting-a-pool. */
  deletionHandOffTo?: string;
  /** The return-path listener, for the pool's SendingDomains with spec.returnPath: bounces and complaints come back through the Service <pool>-return-path (port 25). */
  returnPath?: ReturnPathListenerSpec;
  /** The Service in front of the relays. Default: {}. */
  service: DefaultedServiceSpec;
  /** A HorizontalPodAutoscaler for the pool. */
  autoscaling?: DefaultedAutoscalingSpec;
  /** Prometheus integration. Default: {}. */
  monitoring: DefaultedMonitoringSpec;
  /** A NetworkPolicy admitting only the listeners (from client networks), the management port (from the operator and monitoring), handoff between the relays of the pool, and only DNS and SMTP egress. Default: {}. */
  networkPolicy: DefaultedNetworkPolicySpec;
}

/** DKIM signing of the domain's mail. (schema defaults applied) */
export interface DefaultedDKIMSpec {
  /** DKIM selector; the public key is published at <selector>._domainkey.<domain>. A new selector means a new key. Default: "mailfleet". */
  selector: string;
  /** Signing algorithm: rsa-sha256 (2048-bit key) or ed25519-sha256. Default: "rsa-sha256". */
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** A Secret holding the PEM private key. Without it the operator generates a key and never silently replaces it. */
  keySecretRef?: {
    /** Name of the Secret in the same namespace. */
    name: string;
    /** Key in the Secret holding the PEM private key (default dkim.key). */
    key?: string;
  };
}

/** What the operator does when the domain's bounce rate, measured across the whole pool, is too high. (schema defaults applied) */
export interface DefaultedBouncePolicySpec {
  /** Highest acceptable share of bounced recipients (0.05 = 5%). Default: 0.05. */
  maxBounceRate: number;
  /** Highest acceptable share of recipients who reported the mail as spam through a feedback loop (ARF reports at the return-path listener; 0.003 = 0.3%, the Gmail/Yahoo bulk-sender threshold). Needs spec.returnPath. Default: 0.003. */
  maxComplaintRate: number;
  /** Window over which the bounce rate is measured. Default: "1h". */
  window: string;
  /** Fewest recipients in the window before the rate is judged. Default: 100. */
  minMessages: number;
  /** Suspend: the relays keep the domain's mail queued until resumed. Alert: only report. Default: "Alert". */
  action: 'Suspend' | 'Alert';
}

/** Open and click tracking of the domain's HTML mail; off unless set. The relays rewrite each HTML part before DKIM signing: links become signed redirects through the tracking host, and a 1x1 pixel is added. Tracking records readers' behaviour: tell your recipients (privacy policy) and mind the consent rules that apply to them; see docs/tracking.md. (schema defaults applied) */
export interface DefaultedTrackingSpec {
  /** Add an open pixel to HTML parts. Default: false. */
  opens: boolean;
  /** Rewrite links of HTML parts into tracked redirects. Default: false. */
  clicks: boolean;
  /** Host name of the tracking endpoint (the pool's tracker, exposed over HTTPS by your Ingress or Gateway), for example t.example.com. */
  host?: string;
}

/** A domain that a RelayPool may send for. (schema defaults applied) */
export interface DefaultedSendingDomainSpec {
  /** The sending domain (MAIL FROM and From: domain), for example mail.example.com. Immutable. */
  domain: string;
  /** The RelayPool (in the same namespace) that this resource belongs to. */
  poolRef: PoolReference;
  /** DKIM signing of the domain's mail. Default: {}. */
  dkim: DefaultedDKIMSpec;
  /** Domain used for the envelope sender (bounces), when it differs from domain. */
  returnPath?: string;
  /** What the operator does when the domain's bounce rate, measured across the whole pool, is too high. Default: {}. */
  bouncePolicy: DefaultedBouncePolicySpec;
  /** Open and click tracking of the domain's HTML mail; off unless set. The relays rewrite each HTML part before DKIM signing: links become signed redirects through the tracking host, and a 1x1 pixel is added. Tracking records readers' behaviour: tell your recipients (privacy policy) and mind the consent rules that apply to them; see docs/tracking.md. */
  tracking?: DefaultedTrackingSpec;
  /** Hold this domain's outgoing mail in the queue (accepted, not delivered). Set false to resume after an automatic suspension. Default: false. */
  suspend: boolean;
}

/** Sending and connection limits for part of a pool's traffic. (schema defaults applied) */
export interface DefaultedRateLimitSpec {
  /** The RelayPool (in the same namespace) that this resource belongs to. */
  poolRef: PoolReference;
  /** Which messages the limit applies to. Every listed criterion must match; an empty match applies to all the pool's mail. Default: {}. */
  match: RateLimitMatch;
  /** Messages admitted per period (a token bucket). */
  rate?: Rate;
  /** Messages that may go at once before the rate applies (bucket size). Defaults to the per-second rate, at least 1. */
  burst?: number;
  /** Concurrent outbound connections per destination (open connections, idle ones included). */
  maxConnections?: number;
  /** Messages sent over one outbound connection before it is closed. */
  maxMessagesPerConnection?: number;
  /** PerRelay: each relay applies the numbers. Pool: the numbers are for the whole pool; with the pool's spec.sharedState the relays enforce the rate (Defer and Reject alike) and maxConnections (each open connection a lease) together in the store, otherwise, and while the store does not answer, each relay enforces its share of ready replicas. Default: "PerRelay". */
  scope: 'PerRelay' | 'Pool';
  /** Defer: keep the message queued until the limit admits it. Reject: answer 451 4.7.0 at submission so the client retries. Default: "Defer". */
  onExceed: 'Defer' | 'Reject';
}
