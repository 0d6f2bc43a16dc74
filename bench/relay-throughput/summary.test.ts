import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { alternation, median, pacedRate, perInFlightKiB, summarize, type Run } from './summary.ts';

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
