// The relay config's defaults: what the relay assumes for every field its config file leaves out
// (relay/src/config/validate.ts applies them). Said once, here, for both programs.
import {
  HANDOFF_PORT,
  HTTP_PORT,
  RETURN_PATH_PORT,
  SMTP_PORT,
  SMTPS_PORT,
  SPOOL_DIR,
  SUBMISSION_PORT,
} from './layout.ts';

const MiB = 1024 * 1024;

/** What validateConfig() fills in for every field a config file leaves out. */
export const DEFAULTS = {
  // Rewriting parses the whole message: one with large attachments is sent as it is. 1 MiB of
  // HTML is ten times what Gmail shows before clipping a message.
  tracking: { maxMessageBytes: 10 * MiB, maxHtmlBytes: 1 * MiB },
  // 256 MiB is about a million events: a day of a busy pool's outcomes while the receiver is down.
  events: { batchSize: 100, batchInterval: '1s', maxBytes: 256 * MiB, timeout: '10s', maxBackoff: '1m' },
  listeners: {
    smtp: { enabled: true, host: '0.0.0.0', port: SMTP_PORT },
    submission: { enabled: false, host: '0.0.0.0', port: SUBMISSION_PORT },
    smtps: { enabled: false, host: '0.0.0.0', port: SMTPS_PORT },
  },
  // delayWarningAfter: sendmail's Timeout.queuewarn (4h).
  retry: { firstRetry: '5m', maxBackoff: '1h', maxQueueLifetime: '5d', delayWarningAfter: '4h' },
  limits: {
    maxMessageSize: 25 * MiB,
    maxRecipients: 100,
    maxConnections: 500,
    maxConnectionsPerClient: 50,
    maxLineLength: 4096,
    // Postfix's smtpd_timeout.
    idleTimeout: '5m',
    minDataRate: 500,
    dataRateWindow: '30s',
  },
  // AUTH failures per client (security/anvil.ts): five in ten minutes lock it out for fifteen.
  authThrottle: { maxFailures: 5, window: '10m', lockout: '15m', baseDelay: '1s', maxDelay: '16s' },
  spool: { dir: SPOOL_DIR, minFreeBytes: 100 * MiB, maxBytes: 0 },
  // Ten wrong tokens at once, then one every 6 s: an operator's typo passes, a guesser gets ~14400 a day.
  http: { host: '0.0.0.0', port: HTTP_PORT, authThrottle: { burst: 10, refill: '6s' } },
  drainTimeout: '60s',
  intake: { open: true },
  handoff: { host: '0.0.0.0', port: HANDOFF_PORT },
  returnPathListener: { enabled: true, host: '0.0.0.0', port: RETURN_PATH_PORT },
  adaptiveBackoff: {
    throttlePatterns: [
      'try (again )?later',
      'rate limit',
      'too many (messages|connections|recipients)',
      'throttl',
      'temporarily deferred',
    ],
    decrease: 0.5,
    increase: 1.5,
    minFactor: 1 / 64,
    successesPerStep: 20,
    hold: '30s',
  },
} as const;
