import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateConfig } from '../config/validate.ts';
import { Shaper } from '../shaping/shaper.ts';
import { admitRecipient, splitSubmission } from './submission-limits.ts';
import type { PoolDecision, PoolLimiter, PoolLimitRequest } from './rate-limits.ts';

/** A pool-wide reject limit (share 1 per hour, pool 3 per hour) and a per-relay one (2 per hour). */
function shaper(): Shaper {
  const result = validateConfig({
    rateLimits: [
      {
        name: 'pooled',
        match: { recipientDomains: ['pool.test'] },
        rate: { messages: 1, per: 'hour' },
        onExceed: 'reject',
        pool: { rate: { messages: 3, per: 'hour' } },
      },
      {
        name: 'own',
        match: { recipientDomains: ['pool.test', 'own.test'] },
        rate: { messages: 2, per: 'hour' },
        onExceed: 'reject',
      },
    ],
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  return new Shaper(result.config.rateLimits, result.config.adaptiveBackoff);
}

const traits = (recipientDomain: string) => ({
  sender: 'a@example.com',
  senderDomain: 'example.com',
  recipientDomain,
  mxHosts: [],
});

/** A limiter answering from a list (true: allowed, false: limited, 'fail': the store errs). */
class ListLimiter implements PoolLimiter {
  asked: { limits: readonly PoolLimitRequest[]; horizonMs: number | undefined }[] = [];
  fellBackFor: string[] = [];
  readonly available: boolean;
  private readonly answers: (boolean | 'fail')[];
  constructor(available: boolean, answers: (boolean | 'fail')[]) {
    this.available = available;
    this.answers = answers;
  }
  decide(limits: readonly PoolLimitRequest[], horizonMs?: number): Promise<PoolDecision> {
    this.asked.push({ limits, horizonMs });
    const answer = this.answers.shift();
    if (answer === 'fail') return Promise.reject(new Error('timed out'));
    return Promise.resolve(
      answer ? { allowed: true, delayMs: 0, factors: [1] } : { allowed: false, waitMs: 1000, factors: [1] },
    );
  }
  fellBack(limit: string): void {
    this.fellBackFor.push(limit);
  }
  publishBackoff(): Promise<void> {
    return Promise.resolve();
  }
}

describe('reject limits at RCPT TO with a shared store', () => {
  test('which limits the store decides', () => {
    const s = shaper();
    const applied = s.submissionLimits(traits('pool.test'));
    const names = (list: { limit: { name: string } }[]) => list.map((a) => a.limit.name);
    const cases = [
      {
        name: 'store answering: the pooled limit in the store',
        available: true,
        pooled: ['pooled'],
        local: ['own'],
        fallback: [],
      },
      {
        name: 'store down: every limit on this relay, the pooled one as a fallback',
        available: false,
        pooled: [],
        local: ['pooled', 'own'],
        fallback: ['pooled'],
      },
    ];
    for (const c of cases) {
      const split = splitSubmission(applied, c.available);
      assert.deepEqual(names(split.pooled), c.pooled, c.name);
      assert.deepEqual(names(split.local), c.local, c.name);
      assert.deepEqual(names(split.fallback), c.fallback, c.name);
    }
  });

  const cases: {
    name: string;
    available: boolean;
    answers: (boolean | 'fail')[];
    domain: string;
    /** The verdicts of consecutive recipients (undefined: accepted, else the refusing limit). */
    want: (string | undefined)[];
    asked: number;
    fellBack: string[];
  }[] = [
    {
      name: 'the store admits: three recipients pass although the share is one',
      available: true,
      answers: [true, true, true],
      domain: 'pool.test',
      // The third is refused by the per-relay limit (2/h), before the store is asked.
      want: [undefined, undefined, 'own'],
      asked: 2,
      fellBack: [],
    },
    {
      name: 'the store refuses: the pooled limit is named',
      available: true,
      answers: [false],
      domain: 'pool.test',
      want: ['pooled'],
      asked: 1,
      fellBack: [],
    },
    {
      name: 'the store fails: the share (1/h) decides, the admission counted as a fallback',
      available: true,
      answers: ['fail', 'fail'],
      domain: 'pool.test',
      want: [undefined, 'pooled'],
      asked: 2,
      fellBack: ['pooled'],
    },
    {
      name: 'the store down: never asked, the share decides',
      available: false,
      answers: [],
      domain: 'pool.test',
      want: [undefined, 'pooled'],
      asked: 0,
      fellBack: ['pooled'],
    },
    {
      name: 'a recipient under no pool-wide limit never asks the store',
      available: true,
      answers: [],
      domain: 'own.test',
      want: [undefined, undefined, 'own'],
      asked: 0,
      fellBack: [],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const s = shaper();
      const limiter = new ListLimiter(c.available, [...c.answers]);
      const got: (string | undefined)[] = [];
      for (let i = 0; i < c.want.length; i++)
        got.push(await admitRecipient(s, limiter, traits(c.domain), () => 1_000_000));
      assert.deepEqual(got, c.want);
      assert.equal(limiter.asked.length, c.asked);
      for (const q of limiter.asked) {
        assert.equal(q.horizonMs, 0, 'no booking ahead at RCPT TO');
        assert.deepEqual(q.limits, [
          { limit: 'pooled', destination: 'pool.test', rate: { messages: 3, periodMs: 3_600_000, burst: 3 } },
        ]);
      }
      assert.deepEqual(limiter.fellBackFor, c.fellBack);
    });
  }

  test('without a store the relay decides alone', async () => {
    const s = shaper();
    const now = () => 1_000_000;
    assert.equal(await admitRecipient(s, undefined, traits('pool.test'), now), undefined);
    assert.equal(await admitRecipient(s, undefined, traits('pool.test'), now), 'pooled');
    assert.equal(await admitRecipient(s, undefined, traits('other.test'), now), undefined);
  });
});
