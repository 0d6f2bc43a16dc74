import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { tlsReportRoutes } from './routes.ts';
import { SendRefused, type SentReport } from './reporter.ts';

const SENT: SentReport = {
  domain: 'example.net',
  day: '2026-12-04',
  rua: ['mailto:t@example.net'],
  ok: true,
  detail: 'queued',
};

const CASES: {
  name: string;
  query: string;
  configured?: boolean;
  refuse?: string;
  status: number;
  asked?: (string | undefined)[];
}[] = [
  { name: 'no day: every finished day', query: '', status: 200, asked: [undefined] },
  { name: 'a day', query: '?day=2026-12-04', status: 200, asked: ['2026-12-04'] },
  { name: 'a malformed day', query: '?day=yesterday', status: 400, asked: [] },
  { name: 'a date that does not exist', query: '?day=2026-02-30', status: 400, asked: [] },
  { name: 'reports not configured', query: '', configured: false, status: 409, asked: [] },
  { name: 'a day the reporter refuses', query: '?day=2099-01-01', refuse: 'not begun', status: 409 },
];

for (const c of CASES)
  test(`POST /api/tlsrpt/send: ${c.name} -> ${c.status}`, async () => {
    const asked: (string | undefined)[] = [];
    const [route] = tlsReportRoutes({
      configured: () => c.configured ?? true,
      sendNow: async (day) => {
        asked.push(day);
        if (c.refuse) throw new SendRefused(c.refuse);
        return [SENT];
      },
    });
    const url = new URL(`http://localhost/api/tlsrpt/send${c.query}`);
    const reply = await route!.handler([], url, {} as IncomingMessage);
    assert.equal(reply.status, c.status);
    if (c.asked) assert.deepEqual(asked, c.asked);
    if (c.status === 200) assert.deepEqual(reply.body, { reports: [SENT] });
    if (c.refuse) assert.deepEqual(reply.body, { error: c.refuse });
  });
