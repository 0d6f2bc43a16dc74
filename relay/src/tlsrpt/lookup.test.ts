import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordDecision, type RecordDecision, type RecordLookup } from './lookup.ts';

const T0 = Date.parse('2026-12-05T00:10:00Z');
const MIN = 60_000;
const RUA = 'https://reports.example/tlsrpt';

const CASES: { name: string; lookup: RecordLookup; attempts?: number; now?: number; want: RecordDecision }[] =
  [
    {
      name: 'a record: the report is sent',
      lookup: { txt: [[`v=TLSRPTv1; rua=${RUA}`]] },
      want: { action: 'send', record: { rua: [RUA] } },
    },
    {
      name: 'TXT records but none for TLS-RPT: dropped, no record',
      lookup: { txt: [['v=spf1 -all']] },
      want: { action: 'drop', reason: 'no-record' },
    },
    {
      name: 'two TLS-RPT records: dropped, no record (RFC 8460 §3)',
      lookup: { txt: [['v=TLSRPTv1; rua=mailto:a@b.example'], ['v=TLSRPTv1; rua=mailto:c@d.example']] },
      want: { action: 'drop', reason: 'no-record' },
    },
    {
      name: 'no such name (NXDOMAIN): dropped, no record',
      lookup: { error: 'ENOTFOUND' },
      want: { action: 'drop', reason: 'no-record' },
    },
    {
      name: 'the name without TXT data: dropped, no record',
      lookup: { error: 'ENODATA' },
      want: { action: 'drop', reason: 'no-record' },
    },
    {
      name: 'SERVFAIL: kept, looked up again in 5 minutes',
      lookup: { error: 'ESERVFAIL' },
      want: { action: 'retry', error: 'ESERVFAIL', at: T0 + 5 * MIN },
    },
    {
      name: 'REFUSED: kept, looked up again in 5 minutes',
      lookup: { error: 'EREFUSED' },
      want: { action: 'retry', error: 'EREFUSED', at: T0 + 5 * MIN },
    },
    {
      name: 'a timeout: kept',
      lookup: { error: 'ETIMEOUT' },
      want: { action: 'retry', error: 'ETIMEOUT', at: T0 + 5 * MIN },
    },
    {
      name: 'the resolver unreachable: kept',
      lookup: { error: 'ECONNREFUSED' },
      want: { action: 'retry', error: 'ECONNREFUSED', at: T0 + 5 * MIN },
    },
    {
      name: 'the third failure: 20 minutes later, as a third failed POST',
      lookup: { error: 'ESERVFAIL' },
      attempts: 3,
      now: T0 + 15 * MIN,
      want: { action: 'retry', error: 'ESERVFAIL', at: T0 + 35 * MIN },
    },
    {
      name: 'still failing a day after the first lookup: given up, as a POST would be',
      lookup: { error: 'ETIMEOUT' },
      attempts: 13,
      now: T0 + 23 * 3600_000,
      want: { action: 'give-up', error: 'ETIMEOUT' },
    },
  ];

for (const c of CASES)
  test(`recordDecision: ${c.name}`, () => {
    assert.deepEqual(
      recordDecision(c.lookup, { attempts: c.attempts ?? 1, firstAt: T0 }, c.now ?? T0),
      c.want,
    );
  });
