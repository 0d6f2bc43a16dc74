import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLogger, withFields } from './log.ts';
import type { LogLevel } from './log.ts';

const capture = (minLevel?: LogLevel) => {
  const lines: string[] = [];
  return { lines, log: jsonLogger((line) => lines.push(line), minLevel) };
};

test('one JSON object per line: time, level, msg, then the fields, in that order', () => {
  const { lines, log } = capture();
  log('warn', 'relay not scraped', { pod: 'mail/transactional-0', code: 'ECONNREFUSED' });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]?.endsWith('}\n'));
  const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.deepEqual(Object.keys(entry), ['time', 'level', 'msg', 'pod', 'code']);
  assert.equal(entry.level, 'warn');
  assert.equal(entry.msg, 'relay not scraped');
  assert.ok(!Number.isNaN(Date.parse(String(entry.time))));
});

test('lines below the minimum level are dropped', () => {
  const cases: { min: LogLevel; written: LogLevel[] }[] = [
    { min: 'debug', written: ['debug', 'info', 'warn', 'error'] },
    { min: 'info', written: ['info', 'warn', 'error'] },
    { min: 'error', written: ['error'] },
  ];
  for (const c of cases) {
    const { lines, log } = capture(c.min);
    for (const level of ['debug', 'info', 'warn', 'error'] as const) log(level, level);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { level: string }).level),
      c.written,
      `min ${c.min}`,
    );
  }
});

test('withFields puts its fields on every line; a call can still set its own', () => {
  const { lines, log } = capture();
  const pool = withFields(log, { pool: 'transactional', namespace: 'mail' });
  pool('info', 'applied', { kind: 'Deployment' });
  pool('info', 'moved', { namespace: 'other' });
  const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    { pool: first?.pool, namespace: first?.namespace, kind: first?.kind },
    { pool: 'transactional', namespace: 'mail', kind: 'Deployment' },
  );
  assert.equal(second?.namespace, 'other');
});
