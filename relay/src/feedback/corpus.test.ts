// Every sample of the feedback corpus (test/fixtures/feedback, sources in SOURCES.md) read end to
// end: MIME through postal-mime, then the DSN/ARF parsers and the outcome decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readReport } from './report.ts';
import { feedbackOf, type FeedbackKind } from './outcome.ts';

const CORPUS = join(import.meta.dirname, '../../../test/fixtures/feedback');
const token = { sendingDomain: 'example.com', queueId: 'MIQX3K2A0001', recipient: 'nobody@example.org' };

// file, kind, category, enhanced status (undefined: none), source
const cases: [string, FeedbackKind, string, string | undefined, string][] = [
  ['postfix-3.7-user-unknown.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'dsn'],
  ['postfix-3.7-mailbox-full.eml', 'soft-bounce', 'mailbox-full', '5.2.2', 'dsn'],
  ['sisimai/rfc3464-01.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'dsn'],
  ['sisimai/rfc3464-03.eml', 'hard-bounce', 'policy', '5.0.0', 'dsn'],
  ['sisimai/lhost-postfix-02.eml', 'hard-bounce', 'bad-mailbox', '5.2.1', 'dsn'],
  ['sisimai/lhost-postfix-03.eml', 'hard-bounce', 'bad-mailbox', '5.0.0', 'dsn'],
  ['sisimai/lhost-postfix-05.eml', 'soft-bounce', 'transient', '4.1.1', 'dsn'],
  ['sisimai/lhost-sendmail-01.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'dsn'],
  ['sisimai/lhost-exchange2007-01.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'dsn'],
  ['sisimai/lhost-exim-01.eml', 'hard-bounce', 'policy', '5.7.0', 'bounce-text'],
  ['sisimai/lhost-exim-02.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'bounce-text'],
  ['sisimai/lhost-exim-05.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'bounce-text'],
  ['sisimai/lhost-qmail-01.eml', 'hard-bounce', 'bad-mailbox', '5.5.0', 'bounce-text'],
  ['sisimai/lhost-qmail-02.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'bounce-text'],
  ['sisimai/lhost-gmail-01.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'bounce-text'],
  ['sisimai/lhost-gmail-03.eml', 'hard-bounce', 'policy', '5.7.0', 'bounce-text'],
  ['sisimai/lhost-yahoo-01.eml', 'hard-bounce', 'bad-mailbox', '5.1.1', 'bounce-text'],
  ['sisimai/lhost-office365-01.eml', 'hard-bounce', 'bad-domain', '5.1.10', 'bounce-text'],
  ['sisimai/arf-01.eml', 'complaint', 'abuse', undefined, 'arf'],
  ['sisimai/arf-02.eml', 'complaint', 'abuse', undefined, 'arf'],
  ['sisimai/arf-11.eml', 'complaint', 'abuse', undefined, 'arf'],
  ['sisimai/arf-16.eml', 'complaint', 'abuse', undefined, 'arf'],
  ['sisimai/arf-20.eml', 'complaint', 'auth-failure', undefined, 'arf'],
  ['handmade/delayed.eml', 'delayed', 'other', '4.4.1', 'dsn'],
  ['handmade/out-of-office.eml', 'unrecognised', 'other', undefined, 'other'],
  ['handmade/truncated.eml', 'unrecognised', 'other', undefined, 'other'],
  ['handmade/no-fields.eml', 'unrecognised', 'other', undefined, 'other'],
  ['handmade/broken-mime.eml', 'unrecognised', 'other', undefined, 'other'],
];

for (const [file, kind, category, status, source] of cases) {
  test(`${file}: ${kind} (${category})`, async () => {
    const feedback = feedbackOf(token, await readReport(readFileSync(join(CORPUS, file))));
    assert.equal(feedback.kind, kind);
    assert.equal(feedback.category, category);
    assert.equal(feedback.status, status);
    assert.equal(feedback.source, source);
    assert.equal(feedback.recipient, token.recipient, 'the VERP address says whom it is about');
  });
}

test('the returned original message id is kept (Postfix attaches the message)', async () => {
  const report = await readReport(readFileSync(join(CORPUS, 'postfix-3.7-user-unknown.eml')));
  assert.equal(feedbackOf(token, report).messageId, '<orig-1@example.com>');
});
