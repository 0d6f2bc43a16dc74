import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  alternation,
  estimateSeconds,
  median,
  pacedRate,
  perInFlightKiB,
  summarize,
  sweepOrder,
  type Run,
} from './summary.ts';

const run = (workload: string, server: Run['server'], round: number, rate: number, cpu = 1): Run => ({
  workload,
  server,
  round,
  messagesPerSecond: rate,
  cpuMsPerMessage: cpu,
});

describe('relay benchmark summary', () => {
  test('runs alternate mailfleet, Postfix, mailfleet, ... for the rounds asked', () => {
    assert.deepEqual(
      alternation(3).map((a) => `${a.server}${a.round}`),
      ['mailfleet0', 'postfix0', 'mailfleet1', 'postfix1', 'mailfleet2', 'postfix2'],
    );
  });

  test('sweeps pass over every workload in turn, the server that goes first swapped each sweep', () => {
    assert.deepEqual(
      sweepOrder(['2 KB', '1 MB'], 3, 1).map((r) => `${r.workload} ${r.server}${r.round}`),
      [
        '2 KB mailfleet0',
        '2 KB postfix0',
        '1 MB mailfleet0',
        '1 MB postfix0',
        '2 KB postfix1',
        '2 KB mailfleet1',
        '1 MB postfix1',
        '1 MB mailfleet1',
        '2 KB mailfleet2',
        '2 KB postfix2',
        '1 MB mailfleet2',
        '1 MB postfix2',
      ],
    );
    // Rounds within a sweep are numbered on from the sweeps before.
    assert.deepEqual(
      sweepOrder(['10 KB'], 2, 2).map((r) => `${r.sweep}:${r.server}${r.round}`),
      [
        '0:mailfleet0',
        '0:postfix0',
        '0:mailfleet1',
        '0:postfix1',
        '1:postfix2',
        '1:mailfleet2',
        '1:postfix3',
        '1:mailfleet3',
      ],
    );
  });

  test('the duration estimate adds runs, pauses, warm-ups and extras per server', () => {
    const w = { count: 1000, rates: { mailfleet: 500, postfix: 250 }, warmUp: 500, perRun: 4, extras: 10 };
    // runs: (2 + 4) + (4 + 4) = 14 per sweep and round; warm-up 1 + 2; extras 2 x 10
    assert.equal(estimateSeconds([w], 3, 1), 14 * 3 + 3 + 20);
    assert.equal(estimateSeconds([w, { ...w, extras: 0 }], 1, 2), 14 * 2 + 3 + 20 + (14 * 2 + 3));
  });

  const medians: { name: string; values: number[]; median: number }[] = [
    { name: 'odd count: the middle value', values: [5, 1, 3], median: 3 },
    { name: 'even count: the mean of the middle two', values: [4, 1, 3, 10], median: 3.5 },
    { name: 'one value: itself', values: [7], median: 7 },
  ];
  for (const c of medians) test(`median, ${c.name}`, () => assert.equal(median(c.values), c.median));

  test('the ratio is of the medians, and an outlier run does not move it', () => {
    const [row] = summarize([
      run('100 KB', 'mailfleet', 0, 900, 1.2),
      run('100 KB', 'postfix', 0, 600, 2.4),
      run('100 KB', 'mailfleet', 1, 100, 1.4),
      run('100 KB', 'postfix', 1, 500, 2.6),
      run('100 KB', 'mailfleet', 2, 1000, 1.3),
      run('100 KB', 'postfix', 2, 700, 2.5),
    ]);
    assert.equal(row!.workload, '100 KB');
    assert.equal(row!.runs, 3);
    assert.equal(row!.mailfleet.messagesPerSecond, 900);
    assert.equal(row!.postfix.messagesPerSecond, 600);
    assert.equal(row!.ratio, 1.5);
    assert.deepEqual(row!.mailfleet.rates, [900, 100, 1000]);
    assert.equal(row!.mailfleet.cpuMsPerMessage, 1.3);
    assert.equal(row!.postfix.cpuMsPerMessage, 2.5);
  });

  test('workloads keep the order they were first run in, each with its own extras', () => {
    const rows = summarize(
      [
        run('2 KB', 'mailfleet', 0, 2),
        run('2 KB', 'postfix', 0, 1),
        run('1 MB', 'postfix', 0, 4),
        run('1 MB', 'mailfleet', 0, 2),
      ],
      [
        {
          workload: '1 MB',
          server: 'mailfleet',
          inFlightKiB: 1030,
          pacedTarget: 1.6,
          pacedAchieved: 1.6,
          acceptP50Ms: 10,
          acceptP99Ms: 40,
          rssMiB: 300,
        },
      ],
    );
    assert.deepEqual(
      rows.map((r) => [r.workload, r.ratio]),
      [
        ['2 KB', 2],
        ['1 MB', 0.5],
      ],
    );
    assert.equal(rows[1]!.mailfleet.extra?.inFlightKiB, 1030);
    assert.equal(rows[1]!.postfix.extra, undefined);
    assert.equal(rows[0]!.mailfleet.extra, undefined);
  });

  test('memory per in-flight message is the growth divided by the messages held, in KiB', () => {
    assert.equal(perInFlightKiB(100 * 1024 * 1024, 150 * 1024 * 1024, 50), 1024);
  });

  test('the latency run is paced at 80 % of the measured maximum', () => {
    assert.equal(pacedRate(1000), 800);
  });
});
