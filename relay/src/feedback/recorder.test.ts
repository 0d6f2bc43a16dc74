// The recorder: a report is counted by sending domain, kind and category, and hard bounces and
// complaints (only those) reach the onFeedback listeners, the seam the suppression list uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RelayMetrics } from '../metrics/metrics.ts';
import { FeedbackRecorder } from './recorder.ts';
import type { Feedback } from './outcome.ts';

const CORPUS = join(import.meta.dirname, '../../../test/fixtures/feedback');
const token = { sendingDomain: 'example.com', queueId: 'MIQX3K2A0001', recipient: 'nobody@example.org' };

function recorder() {
  const metrics = new RelayMetrics(() => ({
    jobsByState: new Map(),
    oldestReceivedAt: undefined,
    spoolBytes: 0,
  }));
  metrics.setSendingDomains(['example.com']);
  const r = new FeedbackRecorder({
    metrics,
    accounting: () => undefined,
    log: () => undefined,
    now: () => 0,
  });
  const told: Feedback[] = [];
  r.onFeedback((f) => void told.push(f));
  return { r, metrics, told };
}

async function count(metrics: RelayMetrics, labels: Record<string, string>): Promise<number> {
  const values = (await metrics.feedbackReports.get()).values;
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

const cases: [string, string, string, boolean][] = [
  ['a hard bounce is counted and handed on', 'postfix-3.7-user-unknown.eml', 'hard-bounce', true],
  ['a complaint is counted and handed on', 'sisimai/arf-02.eml', 'complaint', true],
  ['a full mailbox is counted, not handed on', 'postfix-3.7-mailbox-full.eml', 'soft-bounce', false],
  ['a delay warning is counted, not handed on', 'handmade/delayed.eml', 'delayed', false],
  ['an auto-reply is counted, not handed on', 'handmade/out-of-office.eml', 'unrecognised', false],
];
for (const [name, file, kind, handedOn] of cases) {
  test(name, async () => {
    const { r, metrics, told } = recorder();
    await r.record(token, readFileSync(join(CORPUS, file)));
    assert.equal(await count(metrics, { sending_domain: 'example.com', kind }), 1);
    assert.equal(told.length, handedOn ? 1 : 0);
    if (handedOn) {
      assert.equal(told[0]!.recipient, 'nobody@example.org');
      assert.equal(told[0]!.sendingDomain, 'example.com');
      assert.equal(told[0]!.queueId, 'MIQX3K2A0001');
      assert.equal(told[0]!.kind, kind);
    }
  });
}

test('a listener that fails makes record() fail, so the report is answered 451 and comes again', async () => {
  const { r } = recorder();
  r.onFeedback(() => {
    throw new Error('store down');
  });
  await assert.rejects(
    r.record(token, readFileSync(join(CORPUS, 'postfix-3.7-user-unknown.eml'))),
    /store down/,
  );
});
