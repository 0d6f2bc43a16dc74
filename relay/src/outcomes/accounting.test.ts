import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountingLog, type AccountingRecord } from './accounting.ts';

const record = (queueId: string): AccountingRecord => ({
  time: '2026-11-30T10:00:00.000Z',
  queueId,
  sender: 'a@example.com',
  recipient: 'b@example.org',
  destination: 'example.org',
  host: 'mx.example.org[192.0.2.1]:25',
  outcome: 'delivered',
  reply: '250 2.0.0 Ok',
  category: '',
  attempts: 1,
  delay: 0.1,
});

const turn = () => new Promise((resolve) => setImmediate(resolve));
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as AccountingRecord).queueId);

test('the lines of one turn are on disk when the turn ends, in order, after earlier ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'accounting-'));
  const file = join(dir, 'sub', 'accounting.jsonl');
  const log = new AccountingLog(file, (err) => assert.fail(err));
  log.write(record('Q1'));
  log.write(record('Q2'));
  await turn();
  assert.deepEqual(lines(file), ['Q1', 'Q2']);
  log.write(record('Q3'));
  await turn();
  assert.deepEqual(lines(file), ['Q1', 'Q2', 'Q3']);
  await log.close();
  rmSync(dir, { recursive: true });
});

test('close writes the lines still waiting for the end of the turn', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'accounting-'));
  const file = join(dir, 'accounting.jsonl');
  const log = new AccountingLog(file, (err) => assert.fail(err));
  log.write(record('Q1'));
  await log.close();
  assert.deepEqual(lines(file), ['Q1']);
  log.write(record('Q2'));
  await turn();
  assert.deepEqual(lines(file), ['Q1'], 'nothing after close');
  rmSync(dir, { recursive: true });
});

test('a file that cannot be opened is reported, and writes are dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'accounting-'));
  const errors: Error[] = [];
  // A directory where the file should be: open fails with EISDIR.
  const log = new AccountingLog(dir, (err) => errors.push(err));
  log.write(record('Q1'));
  await turn();
  assert.equal(errors.length, 1);
  await log.close();
  rmSync(dir, { recursive: true });
});

test('an empty file name turns the log off', async () => {
  const log = new AccountingLog('', () => assert.fail('no error expected'));
  log.write(record('Q1'));
  await turn();
  await log.close();
});
