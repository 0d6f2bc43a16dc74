// The accounting log: one JSON line per recipient outcome, like PowerMTA's accounting file.
// The line is built by a pure function; the writer only appends.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';

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
}

export function accountingLine(record: AccountingRecord): string {
  return `${JSON.stringify(record)}\n`;
}

export class AccountingLog {
  /** undefined when accounting is off (accounting.file is empty). */
  private stream: WriteStream | undefined;

  constructor(file: string, onError: (err: Error) => void) {
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    this.stream = createWriteStream(file, { flags: 'a' });
    this.stream.on('error', onError);
  }

  write(record: AccountingRecord): void {
    this.stream?.write(accountingLine(record));
  }

  close(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    return new Promise((resolve) => (stream ? stream.end(resolve) : resolve()));
  }
}
