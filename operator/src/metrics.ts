// The operator's Prometheus metrics, built in main.ts and passed in (no global registry).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorCodes } from './errors.ts';

const DOMAIN_LABELS = ['namespace', 'pool', 'sending_domain'] as const;

export type OperatorMetrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailfleet_operator_' });
  const p = 'mailfleet_operator_';
  const metrics = {
    registry,
    reconciles: new Counter({
      name: `${p}reconciles_total`,
      help: 'Reconciles by result (success, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: `${p}reconcile_duration_seconds`,
      help: 'Duration of one pool reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    errors: new Counter({
      name: `${p}errors_total`,
      help: 'Reconcile errors by code.',
      labelNames: ['code'],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: `${p}queue_depth`,
      help: 'Pools waiting in the work queue.',
      registers: [registry],
    }),
    relayScrapes: new Counter({
      name: `${p}relay_scrapes_total`,
      help: "Scrapes of relay pods' /metrics by the bounce-rate autopilot, by result (success, error).",
      labelNames: ['result'],
      registers: [registry],
    }),
    watchRestarts: new Counter({
      name: `${p}watch_restarts_total`,
      help: 'Watches restarted, by resource and cause.',
      labelNames: ['resource', 'cause'],
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: `${p}api_requests_total`,
      help: 'Requests to the API server by verb (get, list, watch, create, apply, patch, update, delete), resource and status code.',
      labelNames: ['verb', 'resource', 'code'],
      registers: [registry],
    }),
    // Per SendingDomain, labelled as the relays label their series (docs/observability.md).
    domainBounceRate: new Gauge({
      name: `${p}sending_domain_bounce_rate`,
      help: 'Bounced / (delivered + bounced) recipients over the bouncePolicy window, across the pool.',
      labelNames: DOMAIN_LABELS,
      registers: [registry],
    }),
    domainMaxBounceRate: new Gauge({
      name: `${p}sending_domain_max_bounce_rate`,
      help: 'bouncePolicy.maxBounceRate of the SendingDomain.',
      labelNames: DOMAIN_LABELS,
      registers: [registry],
    }),
    domainComplaintRate: new Gauge({
      name: `${p}sending_domain_complaint_rate`,
      help: 'Complaints (feedback-loop reports at the return path) / recipients over the bouncePolicy window, across the pool. Only for domains with spec.returnPath.',
      labelNames: DOMAIN_LABELS,
      registers: [registry],
    }),
    domainMaxComplaintRate: new Gauge({
      name: `${p}sending_domain_max_complaint_rate`,
      help: 'bouncePolicy.maxComplaintRate of a SendingDomain with spec.returnPath.',
      labelNames: DOMAIN_LABELS,
      registers: [registry],
    }),
    domainSuspended: new Gauge({
      name: `${p}sending_domain_suspended`,
      help: '1 while the SendingDomain is suspended (by spec or by the bounce autopilot).',
      labelNames: DOMAIN_LABELS,
      registers: [registry],
    }),
    domainCondition: new Gauge({
      name: `${p}sending_domain_condition`,
      help: '1 per SendingDomain condition, labelled by its type and status.',
      labelNames: [...DOMAIN_LABELS, 'type', 'status'],
      registers: [registry],
    }),
    // The certificate each pool's relays serve (docs/operator.md, "TLS").
    tlsCertificateExpiry: new Gauge({
      name: `${p}tls_certificate_expiry_timestamp_seconds`,
      help: "notAfter of the certificate a pool's relays serve, as a Unix timestamp (any of the three sources).",
      labelNames: ['namespace', 'pool'],
      registers: [registry],
    }),
    tlsCertificatesIssued: new Counter({
      name: `${p}tls_certificates_issued_total`,
      help: 'Serving certificates the operator generated, by reason: Missing (first), Expiring (renewal), NamesChanged, IssuerChanged, Invalid.',
      labelNames: ['namespace', 'pool', 'reason'],
      registers: [registry],
    }),
    // StatefulSet pools (docs/operator.md, "Retained queue claims").
    retainedQueueClaims: new Gauge({
      name: `${p}retained_queue_claims`,
      help: '1 per spool PVC of a removed relay (ordinal >= replicas): it may hold mail if that relay stopped without handing off.',
      labelNames: ['namespace', 'pool', 'claim'],
      registers: [registry],
    }),
    absorbFailures: new Gauge({
      name: `${p}absorb_failures`,
      help: 'Per retained spool PVC: its absorb Jobs that failed since it was retained or last absorbed (0 while none did); the series goes with the claim.',
      labelNames: ['namespace', 'pool', 'claim'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: `${p}leader`,
      help: '1 while this process holds the leader Lease.',
      registers: [registry],
    }),
  };
  // Every error code and result exists from the start at 0, so "no errors" reads as 0, not "no data".
  for (const code of Object.keys(errorCodes)) metrics.errors.inc({ code }, 0);
  for (const result of ['success', 'error']) metrics.reconciles.inc({ result }, 0);
  return metrics;
}
