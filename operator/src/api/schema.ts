// The mailfleet.dev/v1alpha1 API, declared once. crds/*.yaml, types.generated.ts and docs/api.md
// are generated from these schemas by scripts/gen-api.ts; a unit test fails when they are stale.
import { arr, bool, int, intOrString, map, num, obj, opaque, str } from './openapi.ts';
import type { CelRule, Schema } from './openapi.ts';
// Where the API and the relay config mean the same thing, the relay's default is the API's.
import { DEFAULTS as RELAY } from '../../../contract/defaults.ts';
import { HANDOFF_PORT, HTTP_PORT, RETURN_PATH_PORT, SUBMISSION_PORT } from '../../../contract/layout.ts';
import { EVENT_TYPES } from '../../../contract/config.ts';
import {
  addressPattern,
  cidrPattern,
  domainMatchPattern,
  domainPattern,
  durationPattern,
  hostPattern,
  objectNamePattern,
  tlsNamePattern,
  quantityPattern,
  selectorPattern,
} from './patterns.ts';

export const group = 'mailfleet.dev';
export const version = 'v1alpha1';

const objectName = (description: string) =>
  str(description, { pattern: objectNamePattern, maxLength: 253, minLength: 1 });
const duration = (description: string, def?: string) =>
  str(description, { pattern: durationPattern, maxLength: 32, ...(def ? { default: def } : {}) });
const cidrList = (description: string) =>
  arr(
    description,
    str('A CIDR, for example 10.0.0.0/8 or fd00::/8.', {
      pattern: cidrPattern,
      maxLength: 64,
      'x-kubernetes-validations': [
        { rule: 'isCIDR(self)', message: 'must be a valid CIDR such as 10.0.0.0/8' },
      ],
    }),
    { maxItems: 256, 'x-kubernetes-list-type': 'set' },
  );
const poolRef = obj(
  'The RelayPool (in the same namespace) that this resource belongs to.',
  { name: objectName('Name of the RelayPool.') },
  { required: ['name'], tsType: 'PoolReference' },
);
const secretRef = (description: string, keyDescription?: string) =>
  obj(
    description,
    {
      name: objectName('Name of the Secret in the same namespace.'),
      ...(keyDescription ? { key: str(keyDescription, { maxLength: 253 }) } : {}),
    },
    { required: ['name'] },
  );

const conditionSchema = obj(
  'A condition in the standard Kubernetes shape (metav1.Condition).',
  {
    type: str('Type of the condition in CamelCase, for example Ready.', { maxLength: 316 }),
    status: str('Status of the condition.', { enum: ['True', 'False', 'Unknown'] }),
    reason: str('A CamelCase reason for the last transition.', { maxLength: 1024 }),
    message: str('A human-readable explanation of the last transition.', { maxLength: 32768 }),
    lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
    observedGeneration: int('The .metadata.generation the condition was set for.', {
      minimum: 0,
    }),
  },
  { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'], tsType: 'Condition' },
);
conditionSchema.properties!.observedGeneration!.format = 'int64';

const conditions = arr(
  'Conditions of the resource: Ready, Progressing, Degraded and kind-specific ones.',
  conditionSchema,
  {
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
    maxItems: 16,
  },
);
const observedGeneration = int('The .metadata.generation that the status describes.', { minimum: 0 });
observedGeneration.format = 'int64';

const tlsPolicyMode = (description: string, def?: string) =>
  str(description, {
    enum: ['DANEAndMTASTS', 'DANE', 'MTASTS', 'Opportunistic', 'Encrypt', 'Verify'],
    ...(def ? { default: def } : {}),
  });
const tlsPolicy = obj(
  'TLS of Direct delivery. DANEAndMTASTS: DANE (RFC 7672) for the MX hosts with DNSSEC-validated TLSA records, MTASTS for the others (DANE takes precedence, RFC 8461 §2); without daneResolver the same as MTASTS. DANE: DANE where published, Opportunistic elsewhere; without daneResolver the same as Opportunistic. A DANE host gets mail only over STARTTLS whose certificate matches its TLSA records (DANE-EE, or DANE-TA with the MX host name); a failed or bogus lookup defers. MTASTS: what the recipient domain publishes with MTA-STS (RFC 8461): enforce = only the MX hosts its policy lists, each as Verify; testing = as Opportunistic, failures logged; no policy = Opportunistic. Opportunistic: STARTTLS when offered, any certificate, clear text otherwise. Encrypt: STARTTLS required, any certificate. Verify: STARTTLS required, the certificate must chain to a public CA and name the MX host. A host that does not meet the policy gets no mail: the next MX is tried, then the message is deferred.',
  {
    default: tlsPolicyMode(
      'Policy of recipient domains without an override. DANEAndMTASTS since DANE exists (it was MTASTS before: stored objects keep the value they were created with, and without daneResolver both behave alike).',
      'DANEAndMTASTS',
    ),
    daneResolver: str(
      'The DNSSEC-validating resolver DANE asks (ip or ip:port), one the relays can trust to validate: on their node or in their network (its AD bit is believed). Empty: no DANE.',
      { maxLength: 64, pattern: '^$|^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+)(:[0-9]{1,5})?$|^[0-9a-fA-F:]+$' },
    ),
    destinations: arr(
      'Policies per recipient domain (for example Verify to a partner). An exact domain wins over a *.domain entry.',
      obj(
        'The TLS policy of one recipient domain.',
        {
          domain: str('A recipient domain, or *.domain for its subdomains.', {
            pattern: domainMatchPattern,
            maxLength: 253,
          }),
          policy: tlsPolicyMode('The policy for this domain.'),
        },
        { required: ['domain', 'policy'], tsType: 'TLSDestinationPolicy' },
      ),
      { maxItems: 256, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['domain'] },
    ),
  },
  { default: {}, tsType: 'TLSPolicySpec' },
);

const listener = (name: string, port: number, enabled: boolean, meaning: string) =>
  obj(
    `The ${name} listener: ${meaning}`,
    {
      enabled: bool(`Whether the ${name} listener runs.`, { default: enabled }),
      port: int(`Container and Service port of the ${name} listener.`, {
        default: port,
        minimum: 1,
        maximum: 65535,
        // The relay binds these itself: a listener on one of them never starts (found by
        // lifecycle-rounds, a rollout to smtp port 2526 that never became Ready).
        'x-kubernetes-validations': [
          {
            rule: `self != ${HTTP_PORT} && self != ${HANDOFF_PORT} && self != ${RETURN_PATH_PORT}`,
            message: `ports ${HTTP_PORT} (management), ${HANDOFF_PORT} (handoff) and ${RETURN_PATH_PORT} (return path) are the relay's own`,
          },
        ],
      }),
    },
    { default: {}, tsType: 'Listener' },
  );

const relayPoolSpec = obj(
  'Desired state of a fleet of SMTP relays.',
  {
    replicas: int(
      'Number of relay pods. Scaled by `kubectl scale` and by an HPA through the scale subresource.',
      {
        default: 2,
        minimum: 0,
        maximum: 1000,
      },
    ),
    image: str('Relay container image. Defaults to the image the operator runs with.', { maxLength: 512 }),
    imagePullSecrets: arr(
      "Secrets in the pool's namespace for pulling the relay image from a private registry (the pod's imagePullSecrets). Defaults to the operator's --image-pull-secrets (the chart's relays.imagePullSecrets, else its imagePullSecrets); an empty list sets none.",
      obj(
        'A Secret of type kubernetes.io/dockerconfigjson.',
        { name: objectName('Name of the Secret in the same namespace.') },
        { required: ['name'], tsType: 'ImagePullSecret' },
      ),
      { maxItems: 16, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
    ),
    resources: obj(
      'Compute resources of each relay container (as in a Pod spec). Setting resources replaces the whole default (so a larger memory request never meets the default limit). No ephemeral-storage limit by default: past it the kubelet evicts the pod, and an emptyDir spool goes with it. Defaults and sizing: docs/operator.md#sizing-relays.',
      {
        requests: map(
          'What the scheduler reserves per relay (and what the HPA CPU target is a percentage of).',
          intOrString('A quantity.'),
        ),
        limits: map('Maximum resources.', intOrString('A quantity.')),
      },
      {
        default: {
          requests: { cpu: '250m', memory: '256Mi', 'ephemeral-storage': '1Gi' },
          limits: { memory: '512Mi' },
        },
        tsType: 'ResourceRequirements',
      },
    ),
    scheduling: obj(
      'Where relay pods may run. By default pods spread across nodes and zones.',
      {
        nodeSelector: map('Node labels a relay node must have.', str('Label value.')),
        tolerations: arr('Taints the relay pods tolerate (as in a Pod spec).', opaque('A toleration.'), {
          maxItems: 64,
        }),
        affinity: opaque('Pod affinity and anti-affinity (as in a Pod spec).'),
        topologySpreadConstraints: arr(
          'Replaces the default spread over kubernetes.io/hostname and topology.kubernetes.io/zone.',
          opaque('A topology spread constraint.'),
          { maxItems: 16 },
        ),
        priorityClassName: str('Priority class of the relay pods.', { maxLength: 253 }),
      },
      { tsType: 'Scheduling' },
    ),
    listeners: obj(
      'Which SMTP listeners run, and on which ports.',
      {
        smtp: listener(
          'smtp',
          RELAY.listeners.smtp.port,
          RELAY.listeners.smtp.enabled,
          'relay for allowed networks (and authenticated users); STARTTLS offered when tls is set.',
        ),
        submission: listener(
          'submission',
          RELAY.listeners.submission.port,
          RELAY.listeners.submission.enabled,
          'message submission; STARTTLS required before AUTH, AUTH required before MAIL.',
        ),
        smtps: listener(
          'smtps',
          RELAY.listeners.smtps.port,
          RELAY.listeners.smtps.enabled,
          'implicit TLS; AUTH required.',
        ),
      },
      { default: {}, tsType: 'Listeners' },
    ),
    tls: obj(
      'TLS for the listeners (STARTTLS on smtp and submission, implicit TLS on smtps). The certificate comes from one of three places, in this order: secretName (your Secret), issuerRef (a cert-manager Certificate the operator creates), or else the operator itself (a per-pool CA and a serving certificate it renews). `tls: {}` is enough.',
      {
        secretName: objectName(
          'A kubernetes.io/tls Secret you provide (tls.crt, tls.key), used as is. Rotations are picked up without restart.',
        ),
        issuerRef: obj(
          "A cert-manager issuer: the operator creates a cert-manager.io/v1 Certificate for the pool's names and mounts the Secret cert-manager fills. Needs cert-manager's CRDs.",
          {
            name: objectName('Name of the Issuer or ClusterIssuer.'),
            kind: str('Issuer (same namespace) or ClusterIssuer.', {
              maxLength: 63,
              default: 'Issuer',
            }),
            group: str('API group of the issuer.', { maxLength: 253, default: 'cert-manager.io' }),
          },
          { required: ['name'], tsType: 'IssuerReference' },
        ),
        dnsNames: arr(
          "Extra names for the generated or cert-manager certificate, beside the pool's Service names (a LoadBalancer's public name, for example). Ignored with secretName.",
          str('A DNS name, optionally starting with *.', {
            pattern: tlsNamePattern,
            maxLength: 253,
          }),
          { maxItems: 64, 'x-kubernetes-list-type': 'set' },
        ),
        minVersion: str('Lowest TLS version accepted.', { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' }),
      },
      {
        tsType: 'TLSSpec',
        'x-kubernetes-validations': [
          {
            rule: '!(has(self.secretName) && has(self.issuerRef))',
            message: 'set tls.secretName (your own Secret) or tls.issuerRef (cert-manager), not both',
          },
          {
            rule: '!has(self.secretName) || !has(self.dnsNames)',
            message:
              'tls.dnsNames apply to generated and cert-manager certificates; a tls.secretName Secret carries its own names',
          },
        ],
      },
    ),
    auth: obj(
      'SMTP AUTH (PLAIN, LOGIN), only ever offered over TLS.',
      {
        mode: str(
          'Required: every client authenticates. Optional: clients in allowedNetworks may relay without AUTH. Disabled: no AUTH; only allowedNetworks relay.',
          {
            enum: ['Required', 'Optional', 'Disabled'],
            default: 'Disabled',
          },
        ),
        credentialsSecretRef: secretRef(
          'A Secret whose keys are usernames and values passwords. Without it the operator generates one user and stores its password in the Secret <pool>-credentials.',
        ),
      },
      { default: {}, tsType: 'AuthSpec' },
    ),
    allowedNetworks: cidrList(
      'Client networks that may relay without AUTH (for example the cluster pod CIDR). Nothing else may relay unauthenticated: the fleet is never an open relay.',
    ),
    delivery: obj(
      'How relays deliver mail onward.',
      {
        mode: str("Direct: look up each recipient domain's MX. Smarthost: send everything to one upstream.", {
          enum: ['Direct', 'Smarthost'],
          default: 'Direct',
        }),
        ehloName: str('Host name used in EHLO/HELO. Defaults to the pod name.', {
          pattern: hostPattern,
          maxLength: 253,
        }),
        smarthost: obj(
          'The upstream relay for mode Smarthost.',
          {
            host: str('Host name or IP of the smarthost.', { pattern: hostPattern, maxLength: 253 }),
            port: int('Port of the smarthost.', { default: SUBMISSION_PORT, minimum: 1, maximum: 65535 }),
            tls: str(
              'Implicit: TLS from the first byte (port 465). StartTLSRequired: fail unless STARTTLS succeeds. StartTLSOpportunistic: use STARTTLS when offered.',
              {
                enum: ['Implicit', 'StartTLSRequired', 'StartTLSOpportunistic'],
                default: 'StartTLSRequired',
              },
            ),
            credentialsSecretRef: secretRef(
              'A Secret with keys username and password for AUTH at the smarthost.',
            ),
          },
          { required: ['host'], tsType: 'SmarthostSpec' },
        ),
        tlsPolicy: tlsPolicy,
        tlsReports: obj(
          'TLS-RPT (RFC 8460): each relay counts the TLS results of its Direct delivery sessions per recipient domain and UTC day, and after the day sends the domains that publish _smtp._tls a gzip JSON report (POST to https: rua, a message through the pool itself to mailto: rua). With sharedState the counts are the pool’s and one relay sends the reports of each day; without it each relay counts (in memory) and reports its own. Absent: no reports.',
          {
            organizationName: str('organization-name of the reports.', { minLength: 1, maxLength: 256 }),
            from: str(
              'From address of mailed reports; its domain is the submitter. Make it a SendingDomain of the pool so the reports are DKIM-signed (RFC 8460 §5.3).',
              { pattern: addressPattern, maxLength: 254 },
            ),
            contactInfo: str('contact-info of the reports. Defaults to from.', { maxLength: 256 }),
          },
          { required: ['organizationName', 'from'], tsType: 'TLSReportsSpec' },
        ),
        resolvers: arr(
          "DNS servers (ip or ip:port) for MX lookups in Direct mode. Defaults to the pod's resolver.",
          str('A resolver address.', { maxLength: 64 }),
          { maxItems: 8 },
        ),
      },
      {
        default: {},
        tsType: 'DeliverySpec',
        'x-kubernetes-validations': [
          {
            rule: "!has(self.mode) || self.mode != 'Smarthost' || has(self.smarthost)",
            message: 'delivery.smarthost.host is required when delivery.mode is Smarthost',
            reason: 'FieldValueRequired',
          },
        ],
      },
    ),
    retry: obj(
      'When to retry deferred mail and when to give up (bounce).',
      {
        firstRetry: duration(
          'Delay before the first retry; later retries back off exponentially with jitter.',
          RELAY.retry.firstRetry,
        ),
        maxBackoff: duration('Longest delay between two retries.', RELAY.retry.maxBackoff),
        maxQueueLifetime: duration(
          'How long a message may stay queued before it bounces as expired.',
          RELAY.retry.maxQueueLifetime,
        ),
        delayWarningAfter: duration(
          'A recipient whose RFC 3461 NOTIFY lists DELAY and that is still being retried this long after its message arrived gets one "delayed" DSN (RFC 3464); without NOTIFY only failures are reported. 0s: never.',
          RELAY.retry.delayWarningAfter,
        ),
      },
      { default: {}, tsType: 'RetrySpec' },
    ),
    limits: obj(
      'Limits every relay enforces on incoming SMTP sessions.',
      {
        maxMessageSize: intOrString('Largest accepted message (SIZE), as a quantity.', {
          default: `${RELAY.limits.maxMessageSize / 2 ** 20}Mi`,
          pattern: quantityPattern,
        }),
        maxRecipients: int('Recipients per message (RFC 5321 requires at least 100).', {
          default: RELAY.limits.maxRecipients,
          minimum: 1,
          maximum: 10000,
        }),
        maxConnections: int('Concurrent SMTP sessions per relay.', {
          default: RELAY.limits.maxConnections,
          minimum: 1,
          maximum: 100000,
        }),
        maxConnectionsPerClient: int('Concurrent SMTP sessions per client IP per relay.', {
          default: RELAY.limits.maxConnectionsPerClient,
          minimum: 1,
          maximum: 100000,
        }),
      },
      { default: {}, tsType: 'LimitsSpec' },
    ),
    queue: obj(
      "The relays' spool.",
      {
        persistence: obj(
          'Keep the spool on a PersistentVolume: the pool becomes a StatefulSet with one PVC per relay. Without it the spool is an emptyDir: a draining relay (scale-down, rollout, eviction) hands its queue to ready peers of the pool, and what no peer took before drainTimeout, or what a relay held when its node was lost, goes with the emptyDir.',
          {
            size: intOrString("Size of each relay's volume.", { pattern: quantityPattern }),
            storageClassName: str('Storage class of the volumes; the cluster default when empty.', {
              maxLength: 253,
            }),
          },
          { required: ['size'], tsType: 'PersistenceSpec' },
        ),
        sizeLimit: intOrString(
          "Most the emptyDir spool may hold (the emptyDir's sizeLimit): the kubelet evicts a relay whose emptyDir outgrows it, so the relay counts it as its quota and refuses new mail (452 4.3.1, not ready) while less than a tenth of it, at most 100 MiB, is left. Defaults to the relay's ephemeral-storage request (so the scheduler reserves what the spool may fill); none when neither is set. Not used with persistence.",
          { pattern: quantityPattern },
        ),
      },
      { tsType: 'QueueSpec' },
    ),
    sharedState: obj(
      "A Valkey/Redis store the pool's relays share state through: the suppression list (a hard bounce or complaint seen by one relay is refused by all) and the Pool-scoped RateLimits (rate and maxConnections enforced together, GCRA and connection leases in the store, instead of a fixed share per relay), delivery backoff, cached MTA-STS policies, TLS-RPT counts and the tracker's unique opens. Without it each relay keeps its own and enforces its share (condition SharedStateAvailable=False NotConfigured says so). The store down never stops mail: relays decide on their own copy and publish their changes when it answers again (docs/suppressions.md).",
      {
        url: str('redis://host:port or rediss://host:port (TLS) of the store.', {
          pattern:
            '^rediss?://([^@/\\s]+@)?(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$',
          maxLength: 512,
        }),
        passwordSecretRef: secretRef(
          "A Secret in the pool's namespace holding the store's password, mounted into the relays.",
          'Key of the password in the Secret (default: password).',
        ),
      },
      { required: ['url'], tsType: 'SharedStateSpec' },
    ),
    events: obj(
      "An HTTP webhook receiving the pool's delivery events (delivered, deferred, bounced, complained, suppressed) and, when a domain tracks, its tracker's opened and clicked events, as HMAC-signed JSON lines in batches, each event with an idempotency key, at least once from a durable outbox (each relay's spool volume; each tracker pod's emptyDir) (docs/events.md). The relays may reach the URL's port at any address (NetworkPolicy egress).",
      {
        url: str('http:// or https:// URL the batches are POSTed to.', {
          pattern: '^https?://[^/\\s?#]+(/[^\\s]*)?$',
          maxLength: 2048,
        }),
        secretRef: secretRef(
          "A Secret in the pool's namespace holding the HMAC-SHA256 signing secret (at least 16 characters), mounted into the relays.",
          'Key of the secret in the Secret (default: secret).',
        ),
        types: arr('Event types sent (default: all).', str('An event type.', { enum: [...EVENT_TYPES] }), {
          maxItems: EVENT_TYPES.length,
          'x-kubernetes-list-type': 'set',
        }),
        batchSize: int('Most events in one POST.', {
          minimum: 1,
          maximum: 10000,
          default: RELAY.events.batchSize,
        }),
        batchInterval: duration(
          'How long the first event of a batch waits for others.',
          RELAY.events.batchInterval,
        ),
        maxOutboxBytes: int(
          "Bound of each relay's outbox on disk, in bytes; when the receiver is down long enough to fill it, the oldest events are dropped and counted (mailfleet_relay_events_dropped_total), mail never waits.",
          { minimum: 65536, default: RELAY.events.maxBytes },
        ),
        maxLag: duration(
          'The pool reports EventsDelivering=False (reason Behind) while a relay or a tracker pod holds an unacknowledged event older than this.',
          '15m',
        ),
      },
      { required: ['url', 'secretRef'], tsType: 'EventsSpec' },
    ),
    drainTimeout: duration(
      'How long a stopping relay may take to finish sessions and flush or hand off its queue.',
      RELAY.drainTimeout,
    ),
    deletionPolicy: str(
      'What deleting the pool does with mail its relays still hold. Drain: a finalizer (mailfleet.dev/drain) keeps the pool and its relays, delivering, until every relay reports an empty queue (each message is delivered or, after retry.maxQueueLifetime, bounced to its sender) and, with spec.events, the tracker (scaled to 0 at the deletion) is gone and the events outbox of every relay reads empty (waited for at most retry.maxQueueLifetime after the deletion); status reports the counts meanwhile. Discard: the relays are deleted at once with what they hold. Setting Discard on a pool being deleted ends its drain. docs/operator.md#deleting-a-pool.',
      { enum: ['Drain', 'Discard'], default: 'Drain' },
    ),
    deletionHandOffTo: objectName(
      "With deletionPolicy Drain: a RelayPool of the same namespace that receives the queue when this pool is deleted. Its relays stop delivering and hand every queued message (and whatever joins the queue later) to that pool's relays through their handoff port, signed with that pool's handoff Secret; the finalizer goes once their queues are empty. While the named pool does not exist, is being deleted itself or has no ready relay, the relays deliver themselves and status says HandOffTargetMissing. The relays mount the named pool's <pool>-handoff Secret from when this is set, so setting or changing it rolls the relays once (a lossless rollout); at deletion only the relay config changes. docs/operator.md#deleting-a-pool.",
    ),
    returnPath: obj(
      "The return-path listener, for the pool's SendingDomains with spec.returnPath: bounces and complaints come back through the Service <pool>-return-path (port 25).",
      {
        host: str(
          'Public host name that resolves to the external address of the Service <pool>-return-path: the MX every return-path domain of the pool publishes (SendingDomain status.returnPathMX). Defaults to delivery.ehloName; with neither, the domains report ReturnPathReady=False.',
          { pattern: domainPattern, maxLength: 253 },
        ),
      },
      { tsType: 'ReturnPathListenerSpec' },
    ),
    service: obj(
      'The Service in front of the relays.',
      {
        type: str('Service type.', { enum: ['ClusterIP', 'LoadBalancer', 'NodePort'], default: 'ClusterIP' }),
        annotations: map(
          'Annotations for the Service (for example load-balancer settings).',
          str('Annotation value.'),
        ),
        loadBalancerSourceRanges: cidrList('Client CIDRs allowed through a LoadBalancer.'),
      },
      { default: {}, tsType: 'ServiceSpec' },
    ),
    autoscaling: obj(
      'A HorizontalPodAutoscaler for the pool.',
      {
        minReplicas: int('Lower bound of replicas.', { minimum: 1, maximum: 1000, default: 2 }),
        maxReplicas: int('Upper bound of replicas.', { minimum: 1, maximum: 1000 }),
        targetCPUUtilizationPercentage: int('Average CPU utilization the HPA aims at.', {
          minimum: 1,
          maximum: 100,
          default: 70,
        }),
      },
      {
        required: ['maxReplicas'],
        tsType: 'AutoscalingSpec',
        'x-kubernetes-validations': [
          {
            rule: '!has(self.minReplicas) || self.minReplicas <= self.maxReplicas',
            message: 'autoscaling.minReplicas must not be greater than autoscaling.maxReplicas',
          },
        ],
      },
    ),
    monitoring: obj(
      'Prometheus integration.',
      {
        serviceMonitor: bool('Create a ServiceMonitor when the monitoring.coreos.com CRDs exist.', {
          default: false,
        }),
        labels: map(
          'Extra labels for the ServiceMonitor (to match a Prometheus selector).',
          str('Label value.'),
        ),
        interval: duration('Scrape interval.', '30s'),
      },
      { default: {}, tsType: 'MonitoringSpec' },
    ),
    networkPolicy: obj(
      'A NetworkPolicy admitting only the listeners (from client networks), the management port (from the operator and monitoring), handoff between the relays of the pool, and only DNS and SMTP egress.',
      {
        enabled: bool('Create the NetworkPolicy.', { default: true }),
        metricsFrom: cidrList(
          "Networks allowed to reach the management port 8080 besides the pods of the operator's namespace, the operator's --monitoring-namespaces and managementNamespaces: a Prometheus outside the cluster, the API server's addresses for `mailfleet queue` through the pod proxy.",
        ),
        managementNamespaces: arr(
          "Namespaces whose pods may reach the management port 8080 (for example where Prometheus runs), in addition to the operator's own and its --monitoring-namespaces.",
          str('A namespace name.', { maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
          { maxItems: 64 },
        ),
        clientsFrom: cidrList(
          'Networks allowed to reach the SMTP listeners. Default: allowedNetworks when auth.mode is Disabled (nobody else can relay); anywhere otherwise (authenticated clients may come from anywhere).',
        ),
      },
      { default: {}, tsType: 'NetworkPolicySpec' },
    ),
  },
  {
    tsType: 'RelayPoolSpec',
    'x-kubernetes-validations': [
      {
        rule: '!has(self.listeners) || has(self.tls) || !((has(self.listeners.submission) && has(self.listeners.submission.enabled) && self.listeners.submission.enabled) || (has(self.listeners.smtps) && has(self.listeners.smtps.enabled) && self.listeners.smtps.enabled))',
        message:
          'the submission and smtps listeners need tls (tls: {} for a certificate the operator generates)',
        reason: 'FieldValueRequired',
      },
      {
        rule: "!has(self.auth) || !has(self.auth.mode) || self.auth.mode == 'Disabled' || has(self.tls)",
        message:
          'auth is only ever offered over TLS: set tls (tls: {} for a certificate the operator generates) or auth.mode: Disabled',
        reason: 'FieldValueRequired',
      },
      {
        // The HPA scales on CPU utilization, a share of the request: without one it never scales.
        rule: "!has(self.autoscaling) || !has(self.resources) || (has(self.resources.requests) && 'cpu' in self.resources.requests)",
        message:
          'autoscaling scales on CPU utilization, which needs resources.requests.cpu (resources replaces the whole default, which has cpu: 250m)',
        reason: 'FieldValueRequired',
      },
      {
        rule: "!has(self.deletionHandOffTo) || !has(self.deletionPolicy) || self.deletionPolicy == 'Drain'",
        message:
          'deletionHandOffTo needs deletionPolicy Drain (Discard deletes the relays with what they hold: nothing is handed off)',
        reason: 'FieldValueForbidden',
      },
    ],
  },
);

const endpoint = obj(
  'Where applications reach the pool.',
  {
    host: str('The Service DNS name.'),
    ports: arr(
      'The enabled listener ports.',
      obj(
        'A listener port.',
        { name: str('Listener name.'), port: int('Port.') },
        { tsType: 'EndpointPort' },
      ),
      { maxItems: 8 },
    ),
  },
  { tsType: 'Endpoint' },
);

const relayPoolStatus = obj(
  'Observed state of the pool.',
  {
    observedGeneration,
    conditions,
    replicas: int('Relay pods that exist.', { minimum: 0 }),
    readyReplicas: int('Relay pods that are ready.', { minimum: 0 }),
    selector: str('Label selector of the relay pods (for the scale subresource).'),
    domains: int('SendingDomains bound to this pool.', { minimum: 0 }),
    endpoint,
    adminTokensSecret: str(
      "The Secret holding the bearer tokens of the relays' management API (keys read and admin); edit or delete it to rotate them.",
    ),
    queuedJobs: int(
      'While the pool is being deleted with deletionPolicy Drain: delivery jobs (message x destination) the relays reported queued at their last scrape.',
      { minimum: 0 },
    ),
    absorbFailures: arr(
      'StatefulSet pools: retained spool claims whose absorb Job failed, since each was last absorbed (docs/operator.md, "Retained queue claims"). The failed Jobs are deleted to be remade: this is their count.',
      obj(
        'Failed absorb Jobs of one claim.',
        {
          claim: str('The PersistentVolumeClaim.'),
          failures: int('Absorb Jobs of this claim that failed.', { minimum: 0 }),
          lastFailedJob: str('uid of the last failed Job counted.'),
          lastFailureTime: str('When that Job failed.', { format: 'date-time' }),
        },
        { required: ['claim', 'failures', 'lastFailedJob', 'lastFailureTime'] },
      ),
      { maxItems: 1000 },
    ),
    tls: obj(
      'The certificate the relays serve.',
      {
        source: str('Where it comes from.', { enum: ['Secret', 'CertManager', 'Generated'] }),
        secretName: str('The Secret mounted into the relays.'),
        dnsNames: arr('The names the certificate is valid for (its subjectAltName).', str('A DNS name.'), {
          maxItems: 128,
        }),
        notAfter: str('When the certificate expires.', { format: 'date-time' }),
        renewalTime: str('When the operator replaces it (generated certificates only).', {
          format: 'date-time',
        }),
        caConfigMap: str(
          'ConfigMap with ca.crt, the CA that signed a generated certificate, for clients in the cluster to trust.',
        ),
      },
      { tsType: 'TLSStatus' },
    ),
  },
  { tsType: 'RelayPoolStatus' },
);

const dnsRecord = (description: string) =>
  obj(
    description,
    { name: str('Record name.'), type: str('Record type.'), value: str('Record value.') },
    { tsType: 'DNSRecord' },
  );

const sendingDomainSpec = obj(
  'A domain that a RelayPool may send for.',
  {
    domain: str('The sending domain (MAIL FROM and From: domain), for example mail.example.com. Immutable.', {
      pattern: domainPattern,
      maxLength: 253,
      'x-kubernetes-validations': [
        { rule: 'self == oldSelf', message: 'domain is immutable; create a new SendingDomain instead' },
      ],
    }),
    poolRef,
    dkim: obj(
      "DKIM signing of the domain's mail.",
      {
        selector: str(
          'DKIM selector; the public key is published at <selector>._domainkey.<domain>. A new selector means a new key.',
          {
            pattern: selectorPattern,
            maxLength: 63,
            default: 'mailfleet',
          },
        ),
        algorithm: str('Signing algorithm: rsa-sha256 (2048-bit key) or ed25519-sha256.', {
          enum: ['rsa-sha256', 'ed25519-sha256'],
          default: 'rsa-sha256',
        }),
        keySecretRef: secretRef(
          'A Secret holding the PEM private key. Without it the operator generates a key and never silently replaces it.',
          'Key in the Secret holding the PEM private key (default dkim.key).',
        ),
      },
      { default: {}, tsType: 'DKIMSpec' },
    ),
    returnPath: str('Domain used for the envelope sender (bounces), when it differs from domain.', {
      pattern: domainPattern,
      maxLength: 253,
    }),
    bouncePolicy: obj(
      "What the operator does when the domain's bounce rate, measured across the whole pool, is too high.",
      {
        maxBounceRate: num('Highest acceptable share of bounced recipients (0.05 = 5%).', {
          minimum: 0,
          maximum: 1,
          default: 0.05,
        }),
        maxComplaintRate: num(
          'Highest acceptable share of recipients who reported the mail as spam through a feedback loop (ARF reports at the return-path listener; 0.003 = 0.3%, the Gmail/Yahoo bulk-sender threshold). Needs spec.returnPath.',
          { minimum: 0, maximum: 1, default: 0.003 },
        ),
        window: duration('Window over which the bounce rate is measured.', '1h'),
        minMessages: int('Fewest recipients in the window before the rate is judged.', {
          minimum: 1,
          maximum: 10000000,
          default: 100,
        }),
        action: str("Suspend: the relays keep the domain's mail queued until resumed. Alert: only report.", {
          enum: ['Suspend', 'Alert'],
          default: 'Alert',
        }),
      },
      { default: {}, tsType: 'BouncePolicySpec' },
    ),
    tracking: obj(
      "Open and click tracking of the domain's HTML mail; off unless set. The relays rewrite each HTML part before DKIM signing: links become signed redirects through the tracking host, and a 1x1 pixel is added. Tracking records readers' behaviour: tell your recipients (privacy policy) and mind the consent rules that apply to them; see docs/tracking.md.",
      {
        opens: bool('Add an open pixel to HTML parts.', { default: false }),
        clicks: bool('Rewrite links of HTML parts into tracked redirects.', { default: false }),
        host: str(
          "Host name of the tracking endpoint (the pool's tracker, exposed over HTTPS by your Ingress or Gateway), for example t.example.com.",
          { pattern: hostPattern, maxLength: 253 },
        ),
      },
      {
        tsType: 'TrackingSpec',
        'x-kubernetes-validations': [
          {
            rule: '!(self.opens || self.clicks) || has(self.host)',
            message: 'host is required when opens or clicks is on',
          },
        ],
      },
    ),
    suspend: bool(
      "Hold this domain's outgoing mail in the queue (accepted, not delivered). Set false to resume after an automatic suspension.",
      { default: false },
    ),
  },
  { required: ['domain', 'poolRef'], tsType: 'SendingDomainSpec' },
);

const sendingDomainStatus = obj(
  'Observed state of the domain.',
  {
    observedGeneration,
    conditions,
    dkim: obj(
      'The DKIM key in use and the DNS record to publish for it.',
      {
        selector: str('Selector in use.'),
        algorithm: str('Algorithm in use.'),
        secretName: str('Secret holding the private key.'),
        dnsRecord: dnsRecord('The TXT record to publish.'),
        pendingSelector: str(
          'A new selector (spec.dkim.selector) whose record is not verified yet: the relays keep signing with the selector in use until it is.',
        ),
        pendingDnsRecord: dnsRecord('The TXT record of the pending selector, to publish before the switch.'),
      },
      { tsType: 'DKIMStatus' },
    ),
    spf: dnsRecord('A recommended SPF record.'),
    returnPathMX: dnsRecord(
      "The MX record to publish for spec.returnPath: bounces and complaints go to the pool's return-path Service (port 25), whose external address the named host (the RelayPool's spec.returnPath.host, else delivery.ehloName) must resolve to. Absent, with ReturnPathReady=False, when the pool names neither.",
    ),
    dmarc: dnsRecord('A recommended DMARC record.'),
    bounceRate: str('Last measured bounce rate over the policy window, as a decimal string.'),
    bounceRateMessages: int('Recipients the last measurement covered.', { minimum: 0 }),
    asyncBounces: int(
      'Of the bounces in bounceRate, those that came back after delivery (through the return path).',
      {
        minimum: 0,
      },
    ),
    complaintRate: str(
      'Last measured complaint (feedback-loop spam report) rate over the policy window, as a decimal string.',
    ),
    suspendedAt: str('When the domain was suspended automatically.', { format: 'date-time' }),
    rates: obj(
      "The domain's last hour, from its pool's relays and tracker as the operator last scraped them (docs/tracking.md#rates). A rate is absent while its denominator is 0.",
      {
        window: str('The window the counts cover (1h).'),
        delivered: int('Recipients delivered.', { minimum: 0 }),
        bounced: int(
          'Recipients bounced: refused for good (5xx) at delivery, or bounced after delivery (return path).',
          { minimum: 0 },
        ),
        opens: int(
          'Messages opened by human readers: the first open of each message counts, later ones only in totalOpens (across the tracker pods through spec.sharedState, else per tracker pod, docs/tracking.md#rates; machine reads excluded).',
          { minimum: 0 },
        ),
        totalOpens: int('Open pixels fetched by human readers, every fetch (machine reads excluded).', {
          minimum: 0,
        }),
        clicks: int('Tracked links followed by human readers (machine reads excluded).', { minimum: 0 }),
        openRate: str('opens / delivered, as a decimal string (a message opened twice counts once).'),
        clickThroughRate: str('clicks / delivered, as a decimal string.'),
        bounceRate: str('bounced / (delivered + bounced at delivery), at most 1, as a decimal string.'),
      },
      { tsType: 'SendingDomainRates' },
    ),
  },
  { tsType: 'SendingDomainStatus' },
);

const rateLimitSpec = obj(
  "Sending and connection limits for part of a pool's traffic.",
  {
    poolRef,
    match: obj(
      "Which messages the limit applies to. Every listed criterion must match; an empty match applies to all the pool's mail.",
      {
        senderDomains: arr(
          'Sender (MAIL FROM) domains.',
          str('A domain or *.domain.', { pattern: domainMatchPattern, maxLength: 253 }),
          { maxItems: 1000 },
        ),
        senderAddresses: arr(
          'Sender addresses.',
          str('An address.', { pattern: addressPattern, maxLength: 320 }),
          { maxItems: 1000 },
        ),
        recipientDomains: arr(
          'Recipient domains (destinations).',
          str('A domain or *.domain.', { pattern: domainMatchPattern, maxLength: 253 }),
          { maxItems: 1000 },
        ),
        recipientMXHosts: arr(
          'MX rollup: destinations whose MX hosts match one of these (for example *.google.com) share this limit.',
          str('An MX host or *.host.', { pattern: domainMatchPattern, maxLength: 253 }),
          { maxItems: 1000 },
        ),
      },
      { default: {}, tsType: 'RateLimitMatch' },
    ),
    rate: obj(
      'Messages admitted per period (a token bucket).',
      {
        messages: int('Messages per period.', { minimum: 1, maximum: 100000000 }),
        per: str('The period.', { enum: ['Second', 'Minute', 'Hour', 'Day'] }),
      },
      { required: ['messages', 'per'], tsType: 'Rate' },
    ),
    burst: int(
      'Messages that may go at once before the rate applies (bucket size). Defaults to the per-second rate, at least 1.',
      { minimum: 1, maximum: 1000000 },
    ),
    maxConnections: int(
      'Concurrent outbound connections per destination (open connections, idle ones included).',
      {
        minimum: 1,
        maximum: 10000,
      },
    ),
    maxMessagesPerConnection: int('Messages sent over one outbound connection before it is closed.', {
      minimum: 1,
      maximum: 100000,
    }),
    scope: str(
      "PerRelay: each relay applies the numbers. Pool: the numbers are for the whole pool; with the pool's spec.sharedState the relays enforce the rate (Defer and Reject alike) and maxConnections (each open connection a lease) together in the store, otherwise, and while the store does not answer, each relay enforces its share of ready replicas.",
      {
        enum: ['PerRelay', 'Pool'],
        default: 'PerRelay',
      },
    ),
    onExceed: str(
      'Defer: keep the message queued until the limit admits it. Reject: answer 451 4.7.0 at submission so the client retries.',
      {
        enum: ['Defer', 'Reject'],
        default: 'Defer',
      },
    ),
  },
  {
    required: ['poolRef'],
    tsType: 'RateLimitSpec',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.rate) || has(self.maxConnections) || has(self.maxMessagesPerConnection)',
        message: 'set at least one of rate, maxConnections or maxMessagesPerConnection',
      },
      {
        rule: "!has(self.onExceed) || self.onExceed != 'Reject' || has(self.rate)",
        message: 'onExceed: Reject needs a rate',
      },
      {
        rule: "!has(self.onExceed) || self.onExceed != 'Reject' || !has(self.match) || !has(self.match.recipientMXHosts) || size(self.match.recipientMXHosts) == 0",
        message:
          'onExceed: Reject cannot match recipientMXHosts: MX hosts are known only at delivery, after the message was accepted',
      },
    ],
  },
);

const rateLimitStatus = obj(
  'Observed state of the limit.',
  {
    observedGeneration,
    conditions,
    effectiveRate: str('The rate each relay enforces (its share for scope Pool), for example 3.33/s.'),
    sharedBy: int('Ready relays sharing a Pool-scoped limit.', { minimum: 0 }),
  },
  { tsType: 'RateLimitStatus' },
);

export type PrinterColumn = {
  name: string;
  type: string;
  jsonPath: string;
  description: string;
  priority?: number;
};

export type Kind = {
  kind: string;
  plural: string;
  singular: string;
  shortName: string;
  description: string;
  spec: Schema;
  status: Schema;
  columns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
  /** CEL rules on the whole object, for those that compare the spec with metadata.name. */
  validations?: CelRule[];
};

const ready = (d: string): PrinterColumn => ({
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: d,
});
const age: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const kinds: Kind[] = [
  {
    kind: 'RelayPool',
    plural: 'relaypools',
    singular: 'relaypool',
    shortName: 'rp',
    description:
      'RelayPool is a fleet of SMTP relays: listeners, TLS, auth, who may relay, delivery and queue persistence.',
    spec: relayPoolSpec,
    status: relayPoolStatus,
    validations: [
      {
        rule: '!has(self.spec.deletionHandOffTo) || self.spec.deletionHandOffTo != self.metadata.name',
        message: 'deletionHandOffTo names another pool: a pool cannot hand its queue to itself',
        fieldPath: '.spec.deletionHandOffTo',
        reason: 'FieldValueInvalid',
      },
    ],
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
    columns: [
      ready('Whether the pool is ready.'),
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', description: 'Desired relays.' },
      { name: 'Available', type: 'integer', jsonPath: '.status.readyReplicas', description: 'Ready relays.' },
      {
        name: 'Domains',
        type: 'integer',
        jsonPath: '.status.domains',
        description: 'Bound sending domains.',
      },
      { name: 'Delivery', type: 'string', jsonPath: '.spec.delivery.mode', description: 'Delivery mode.' },
      {
        name: 'Endpoint',
        type: 'string',
        jsonPath: '.status.endpoint.host',
        description: 'Service DNS name.',
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: 'SendingDomain',
    plural: 'sendingdomains',
    singular: 'sendingdomain',
    shortName: 'sd',
    description:
      'SendingDomain is a domain that a RelayPool may send for, with its DKIM key and bounce policy.',
    spec: sendingDomainSpec,
    status: sendingDomainStatus,
    columns: [
      { name: 'Domain', type: 'string', jsonPath: '.spec.domain', description: 'The sending domain.' },
      { name: 'Pool', type: 'string', jsonPath: '.spec.poolRef.name', description: 'The RelayPool.' },
      ready(
        "Whether the domain is in its pool's relay config; the pool's Ready tells whether its relays are up.",
      ),
      {
        name: 'DKIM',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="DKIMKeyReady")].status',
        description: 'DKIM key ready.',
      },
      {
        name: 'DNS',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="DNSVerified")].status',
        description: 'DNS records verified.',
        priority: 1,
      },
      {
        name: 'Suspended',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Suspended")].status',
        description: 'Sending suspended.',
      },
      {
        name: 'Bounce-Rate',
        type: 'string',
        jsonPath: '.status.bounceRate',
        description: 'Last measured bounce rate.',
        priority: 1,
      },
      {
        name: 'Open-Rate',
        type: 'string',
        jsonPath: '.status.rates.openRate',
        description: 'Human opens per delivered recipient, last hour.',
        priority: 1,
      },
      {
        name: 'Click-Rate',
        type: 'string',
        jsonPath: '.status.rates.clickThroughRate',
        description: 'Human clicks per delivered recipient, last hour.',
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: 'RateLimit',
    plural: 'ratelimits',
    singular: 'ratelimit',
    shortName: 'rl',
    description: "RateLimit limits the sending rate and connections of part of a RelayPool's traffic.",
    spec: rateLimitSpec,
    status: rateLimitStatus,
    columns: [
      { name: 'Pool', type: 'string', jsonPath: '.spec.poolRef.name', description: 'The RelayPool.' },
      { name: 'Rate', type: 'integer', jsonPath: '.spec.rate.messages', description: 'Messages per period.' },
      { name: 'Per', type: 'string', jsonPath: '.spec.rate.per', description: 'Period.' },
      { name: 'Scope', type: 'string', jsonPath: '.spec.scope', description: 'PerRelay or Pool.' },
      {
        name: 'Effective',
        type: 'string',
        jsonPath: '.status.effectiveRate',
        description: 'Rate each relay enforces.',
      },
      ready('Whether the limit is applied.'),
      age,
    ],
  },
];
