import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTlsRptRecord } from './record.ts';

const CASES: { name: string; txt: string[][]; rua?: string[] }[] = [
  {
    name: 'a mailto and an https rua',
    txt: [['v=TLSRPTv1; rua=mailto:tls@example.com,https://reports.example.com/tlsrpt']],
    rua: ['mailto:tls@example.com', 'https://reports.example.com/tlsrpt'],
  },
  {
    name: 'a record split in several strings',
    txt: [['v=TLSRPTv1;rua=mailto:', 'tls@example.com']],
    rua: ['mailto:tls@example.com'],
  },
  {
    name: 'other TXT records beside it are ignored',
    txt: [['v=spf1 -all'], ['v=TLSRPTv1; rua=mailto:a@b.example']],
    rua: ['mailto:a@b.example'],
  },
  {
    name: 'two TLSRPT records: no reports (§3)',
    txt: [['v=TLSRPTv1; rua=mailto:a@b.example'], ['v=TLSRPTv1; rua=mailto:c@d.example']],
  },
  { name: 'no version first: not a record', txt: [['rua=mailto:a@b.example; v=TLSRPTv1']] },
  { name: 'only unsupported schemes: no reports', txt: [['v=TLSRPTv1; rua=http://insecure.example/x']] },
  { name: 'no record', txt: [] },
];

for (const c of CASES)
  test(`parseTlsRptRecord: ${c.name}`, () => {
    assert.deepEqual(parseTlsRptRecord(c.txt), c.rua ? { rua: c.rua } : undefined);
  });
