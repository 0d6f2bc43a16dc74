// Turning what nodemailer reports for one SMTP transaction into one result per recipient. Pure.
import { classifyReply, type BounceCategory, type Outcome } from './classify.ts';

export interface RecipientResult {
  recipient: string;
  outcome: Outcome;
  category?: BounceCategory;
  /** SMTP reply (or error text when there was no reply). */
  reply: string;
  code?: number;
}

interface SmtpFailure {
  message?: string;
  code?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  command?: string;
  rejectedErrors?: SmtpFailure[];
}

interface SmtpSuccess {
  response?: string;
  rejectedErrors?: SmtpFailure[];
}

export function resultsFromSuccess(recipients: readonly string[], info: SmtpSuccess): RecipientResult[] {
  const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
  const reply = info.response ?? '250 OK';
  return recipients.map((recipient) => {
    const refusal = rejected.get(recipient);
    return refusal ? fromFailure(recipient, refusal) : result(recipient, codeOf(reply) ?? 250, reply);
  });
}

export function resultsFromError(recipients: readonly string[], error: SmtpFailure): RecipientResult[] {
  const rejected = new Map((error.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
  return recipients.map((recipient) => fromFailure(recipient, rejected.get(recipient) ?? error));
}

/** Same reply for every recipient (routing failures, handoff). */
export function resultsFromReply(recipients: readonly string[], reply: string): RecipientResult[] {
  return recipients.map((recipient) => result(recipient, codeOf(reply), reply));
}

/** True when no SMTP transaction happened (connect, greeting, TLS): the next MX may do better. */
export function isConnectionFailure(error: SmtpFailure): boolean {
  if (error.command === 'CONN') return true;
  if (error.responseCode !== undefined) return false;
  return ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'ETLSPOLICY', 'EPROTOCOL'].includes(
    error.code ?? '',
  );
}

function fromFailure(recipient: string, e: SmtpFailure): RecipientResult {
  const reply = e.response ?? `${e.code ?? 'ERROR'} ${e.message ?? 'delivery failed'}`;
  return result(recipient, e.responseCode, reply);
}

function result(recipient: string, code: number | undefined, reply: string): RecipientResult {
  const c = classifyReply(code === undefined ? { text: reply } : { code, text: reply });
  const r: RecipientResult = { recipient, outcome: c.outcome, reply: reply.slice(0, 512) };
  if (c.category) r.category = c.category;
  if (code !== undefined) r.code = code;
  return r;
}

function codeOf(reply: string): number | undefined {
  const m = /^([2-5]\d\d)\b/.exec(reply);
  return m ? Number(m[1]) : undefined;
}
