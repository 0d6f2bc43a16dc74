// The accounting log: one JSON line per recipient outcome, like PowerMTA's accounting file.
// The line is built by a pure function; the writer only appends.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeAllSync } from '../spool/fs-ops.ts';

export interface AccountingRecord {
  time: string;
  queueId: string;
  sender: string;
  recipient: string;
  destination: string;
  host: string;
  outcome: 'delivered' | 'deferred' | 'bounced' | 'expired' | 'handedoff';
  reply: string;
  category: string;
  attempts: number;
  /** Seconds from acceptance to this outcome. */
  delay: number;
  /** Direct delivery: the recipient domain's TLS policy, and `success` or the RFC 8460 failure. */
  tlsPolicy?: string;
  tlsResult?: string;
}

/** A bounce or complaint that came back to a return-path address (feedback/recorder.ts). */
export interface FeedbackRecord {
  time: string;
  queueId: string;
  sendingDomain: string;
  recipient: string;
  outcome: 'feedback';
  kind: string;
  category: string;
  status?: string;
  reason: string;
  messageId?: string;
  source: string;
}

function accountingLine(record: AccountingRecord | FeedbackRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/**
 * Appends the lines of one turn of the event loop in one write. Outcomes come one at a time, a
 * few per turn under load; a write stream sent each to the thread pool. The write is synchronous,
 * like the spool's small writes: an append to the page cache takes microseconds, and the lines
 * are on disk (for the process, not the machine) as soon as the turn that made them ends, no
 * later than the stream had them there. After a failed write, like the stream it replaces, the
 * log reports the error once and writes nothing more until it is replaced (a restart, or a reload
 * that changes accounting.file).
 */
export class AccountingLog {
  private readonly onError: (err: Error) => void;
  /** undefined when accounting is off (accounting.file is empty) or after a failure. */
  private fd: number | undefined;
  /** Lines waiting for the end of this turn of the event loop. */
  private pending: string[] = [];
  private flushScheduled = false;

  constructor(file: string, onError: (err: Error) => void) {
    this.onError = onError;
    if (!file) return;
    try {
      mkdirSync(dirname(file), { recursive: true });
      this.fd = openSync(file, 'a');
    } catch (err) {
      onError(err as Error);
    }
  }

  write(record: AccountingRecord | FeedbackRecord): void {
    if (this.fd === undefined) return;
    this.pending.push(accountingLine(record));
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  close(): Promise<void> {
    this.flush();
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
    return Promise.resolve();
  }

  private flush(): void {
    this.flushScheduled = false;
    const lines = this.pending;
    if (lines.length === 0 || this.fd === undefined) return;
    this.pending = [];
    try {
      writeAllSync(this.fd, Buffer.from(lines.join('')));
    } catch (err) {
      closeQuietly(this.fd);
      this.fd = undefined;
      this.onError(err as Error);
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing left to lose: every line was written or reported
  }
}
