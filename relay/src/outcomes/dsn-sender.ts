// Queues a delivery status notification (RFC 3464) to the sender of a message whose recipients
// bounced or expired (failed), are still being retried (delayed) or went to a next hop without DSN
// (relayed). The report is built by ./dsn.ts (pure); this reads the original's headers from the
// spool, stores the report like any accepted message and queues it.
import { randomBytes } from 'node:crypto';
import type { RelayConfig } from '../config/types.ts';
import type { Logger } from '../../../contract/log.ts';
import type { QueuedMessage, QueuedRecipient } from '../scheduler/model.ts';
import type { Envelope } from '../spool/record.ts';
import type { Spool } from '../spool/store.ts';
import { buildDsn, dsnStatus, headerSection, shouldSendDsn } from './dsn.ts';
import type { DsnAction } from './dsn.ts';
import { failureNotified } from './dsn-params.ts';
import { durationMs } from '../config/duration.ts';

export interface DsnSenderDeps {
  /** The config in force (hostname, dsn.enabled). */
  config(): RelayConfig;
  spool: Pick<Spool, 'readBody' | 'newId' | 'write'>;
  /** Queues a stored message for delivery. */
  enqueue(envelope: Envelope, now: number): void;
  /** Counts a queued notification. */
  sent(): void;
  log: Logger;
}

/**
 * `reported`: the recipients of one report of `action`. Failed ones are filtered by their NOTIFY
 * here; delayed and relayed ones were chosen by the scheduler (dsn-params.ts).
 */
export async function sendDsn(
  deps: DsnSenderDeps,
  message: QueuedMessage,
  reported: QueuedRecipient[],
  action: DsnAction = 'failed',
): Promise<void> {
  const config = deps.config();
  if (!shouldSendDsn(message.envelope.from, config.dsn.enabled)) return;
  const params = message.envelope.dsn;
  // RFC 3461 §4.1: a recipient whose NOTIFY leaves FAILURE out is not reported.
  const recipients =
    action === 'failed' ? reported.filter((r) => failureNotified(params, r.index)) : reported;
  if (recipients.length === 0) return;
  try {
    const original = await deps.spool.readBody(message.envelope.id);
    const now = new Date();
    const id = deps.spool.newId(now.getTime());
    const body = buildDsn({
      action,
      reportingMta: config.hostname,
      queueId: message.envelope.id,
      originalSender: message.envelope.from,
      arrivalDate: new Date(message.envelope.receivedAt),
      recipients: recipients.map((r) => ({
        address: r.address,
        ...(params?.recipients?.[r.index]?.orcpt ? { orcpt: params.recipients[r.index]!.orcpt! } : {}),
        status: dsnStatus(action, r.reply ?? '', r.status === 'expired'),
        reply:
          r.status === 'expired'
            ? `delivery time expired; last reply: ${r.reply ?? 'none'}`
            : (r.reply ?? ''),
      })),
      originalHeaders: original ? headerSection(original) : '',
      // RFC 3461 §4.3: RET asks for the content in a *failed* DSN; the others quote the headers.
      ...(action === 'failed' && params?.ret === 'FULL' && original ? { fullOriginal: original } : {}),
      ...(params?.envid ? { envid: params.envid } : {}),
      // Expiry counts from the original arrival (kept across handoffs), as the scheduler's does.
      ...(action === 'delayed'
        ? {
            willRetryUntil: new Date(message.envelope.receivedAt + durationMs(config.retry.maxQueueLifetime)),
          }
        : {}),
      now,
      boundary: `mailfleet-${randomBytes(8).toString('hex')}`,
      messageId: `${id}.dsn@${config.hostname}`,
    });
    const envelope = await deps.spool.write(
      {
        id,
        from: '',
        recipients: [message.envelope.from],
        receivedAt: now.getTime(),
        client: { address: '127.0.0.1', helo: config.hostname },
      },
      body,
    );
    deps.sent();
    deps.enqueue(envelope, now.getTime());
  } catch (err) {
    deps.log('error', 'dsn not queued', { queueId: message.envelope.id, err: String(err) });
  }
}
