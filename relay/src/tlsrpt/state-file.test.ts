import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeState, encodeState, stateFile, type TlsReportState } from './state-file.ts';
import { TlsTally, type TlsAttempt } from './tally.ts';

const attempt = (over: Partial<TlsAttempt> = {}): TlsAttempt => ({
  domain: 'example.net',
  policy: 'mta-sts',
  result: 'success',
  mx: 'mx.example.net',
  address: '192.0.2.1',
  sendingIp: '192.0.2.200',
  policyString: ['version: STSv1'],
  mxHost: ['mx.example.net'],
  ...over,
});
const NOON = Date.parse('2026-12-04T12:00:00Z');

function state(): TlsReportState {
  const tally = new TlsTally();
  tally.record(attempt(), NOON);
  tally.record(attempt(), NOON);
  tally.record(attempt({ result: 'certificate-expired' }), NOON);
  tally.take('2026-12-03', NOON - 86400_000);
  tally.record(attempt(), NOON - 86400_000);
  return {
    tally: tally.snapshot(),
    retries: [
      {
        url: 'https://r.example/x',
        domain: 'example.net',
        day: '2026-12-03',
        body: 'H4sI',
        attempts: 2,
        firstAt: 1,
        nextAt: 2,
      },
    ],
    lookups: [
      {
        domain: 'example.org',
        day: '2026-12-03',
        start: 10,
        end: 20,
        counts: [['["example.org"]', 3]],
        attempts: 1,
        firstAt: 3,
        nextAt: 4,
      },
    ],
  };
}

test('a state survives encode and decode unchanged', () => {
  assert.deepEqual(decodeState(encodeState(state())), state());
});

test('a state file written before lookups were kept decodes with none', () => {
  const { lookups: _, ...older } = state();
  assert.deepEqual(decodeState(JSON.stringify({ version: 1, ...older })), { ...older, lookups: [] });
});

const BAD: { name: string; text: string }[] = [
  { name: 'not JSON', text: '{' },
  { name: 'another version', text: JSON.stringify({ ...JSON.parse(encodeState(state())), version: 2 }) },
  {
    name: 'a count that is not a positive integer',
    text: encodeState({ ...state(), tally: { days: { d: { k: -1 } }, reportedUntil: {} } }),
  },
  { name: 'no tally', text: JSON.stringify({ version: 1, retries: [] }) },
];
for (const c of BAD)
  test(`decodeState refuses ${c.name}`, () => {
    assert.equal(decodeState(c.text), undefined);
  });

test('a tally restored from its snapshot reports the same counts and periods', () => {
  const restored = new TlsTally();
  restored.restore(state().tally);
  assert.deepEqual(restored.finishedDays(NOON + 86400_000), ['2026-12-03', '2026-12-04']);
  // The 3rd was reported up to noon: its next report starts at the second after.
  assert.deepEqual(restored.period('2026-12-03', NOON + 86400_000), {
    start: NOON - 86400_000 + 1000,
    end: Date.parse('2026-12-03T23:59:59Z'),
  });
  assert.deepEqual(
    restored.take('2026-12-04').map(([a, n]) => [a.result, n]),
    [
      ['success', 2],
      ['certificate-expired', 1],
    ],
  );
});

test('the file is written whole and read back; a missing file is no state, a bad one an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tlsrpt-state-'));
  try {
    const store = stateFile(join(dir, 'tlsrpt.json'));
    assert.equal(await store.load(), undefined);
    await store.save(state());
    assert.deepEqual(await store.load(), state());
    assert.equal(JSON.parse(await readFile(join(dir, 'tlsrpt.json'), 'utf8')).version, 1);
    await writeFile(join(dir, 'tlsrpt.json'), 'garbage');
    await assert.rejects(store.load(), /not a TLS-RPT state file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
