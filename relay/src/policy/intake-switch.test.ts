import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AcceptsInFlight,
  intakeChange,
  intakeReportedOpen,
  intakeSwitchPolicy,
  type IntakeStage,
} from './intake-switch.ts';

test('the intake switch at each stage of a session', () => {
  const cases: [string, boolean, IntakeStage, 'ok' | [number, string]][] = [
    ['open: a new session is let in', true, 'connect', 'ok'],
    ['open: MAIL FROM is let through', true, 'mail', 'ok'],
    ['open: a message ending DATA is accepted', true, 'data', 'ok'],
    ['closed: a new session gets 421 4.3.2 and closes', false, 'connect', [421, '4.3.2']],
    ['closed: MAIL FROM in an open session gets 421 4.3.2', false, 'mail', [421, '4.3.2']],
    ['closed: a message ending DATA gets 451 4.3.2, not queued', false, 'data', [451, '4.3.2']],
  ];
  for (const [name, open, stage, want] of cases) {
    const result = intakeSwitchPolicy({ open, stage });
    if (want === 'ok') assert.deepEqual(result, { ok: true }, name);
    else {
      assert.ok(!('ok' in result), name);
      assert.deepEqual([result.code, result.enhanced], want, name);
      assert.match(result.message, /intake closed/i, name);
    }
  }
});

test('the intake gauge reads 0 only once closed with nothing being spooled', () => {
  const cases: [string, boolean, number, boolean][] = [
    ['open, idle', true, 0, true],
    ['open, messages being spooled', true, 3, true],
    ['closed while a message received before is still being spooled', false, 1, true],
    ['closed, nothing in flight', false, 0, false],
  ];
  for (const [name, open, acceptsInFlight, want] of cases)
    assert.equal(intakeReportedOpen({ open, acceptsInFlight }), want, name);
});

test('a reload logs a flip of the switch, and only a flip', () => {
  assert.equal(intakeChange(true, false), 'intake closed');
  assert.equal(intakeChange(false, true), 'intake opened');
  assert.equal(intakeChange(true, true), undefined);
  assert.equal(intakeChange(false, false), undefined);
});

test('accepts are counted from their start until they settle, failed ones too', async () => {
  const inFlight = new AcceptsInFlight();
  let finish!: (id: string) => void;
  let fail!: (e: Error) => void;
  const stored = inFlight.track(new Promise<string>((resolve) => (finish = resolve)));
  const refused = inFlight.track(new Promise<string>((_, reject) => (fail = reject)));
  assert.equal(inFlight.count, 2);
  finish('Q1');
  assert.equal(await stored, 'Q1');
  assert.equal(inFlight.count, 1);
  fail(new Error('fsync failed'));
  await assert.rejects(refused, /fsync failed/);
  assert.equal(inFlight.count, 0);
});
