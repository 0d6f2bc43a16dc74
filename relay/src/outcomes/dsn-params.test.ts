import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  delayNotified,
  dsnFromSession,
  encodeXtext,
  failureNotified,
  nextHopDsn,
  relayNotified,
} from './dsn-params.ts';

test('the parameters smtp-server parsed become the spool record’s, and none give none', () => {
  const cases: [string, Parameters<typeof dsnFromSession>[0], ReturnType<typeof dsnFromSession>][] = [
    [
      'nothing given (smtp-server leaves ret and envid null)',
      { dsn: { ret: null, envid: null }, rcptTo: [{}, {}] },
      undefined,
    ],
    ['DSN hidden (no dsn at all)', { rcptTo: [{}] }, undefined],
    [
      'RET and ENVID only',
      { dsn: { ret: 'HDRS', envid: 'QQ314159' }, rcptTo: [{}] },
      { ret: 'HDRS', envid: 'QQ314159' },
    ],
    [
      'per recipient, the others null',
      {
        dsn: { ret: 'FULL', envid: null },
        rcptTo: [
          { dsn: { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;b@x.org' } },
          {},
          { dsn: { notify: ['NEVER'] } },
        ],
      },
      {
        ret: 'FULL',
        recipients: [
          { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;b@x.org' },
          null,
          { notify: ['NEVER'] },
        ],
      },
    ],
  ];
  for (const [name, session, want] of cases) assert.deepEqual(dsnFromSession(session), want, name);
});

test('a failure is reported unless the recipient’s NOTIFY leaves FAILURE out', () => {
  const params = {
    recipients: [
      { notify: ['NEVER' as const] },
      { notify: ['SUCCESS' as const, 'DELAY' as const] },
      { notify: ['FAILURE' as const] },
      null,
      { orcpt: 'rfc822;e@x.org' },
    ],
  };
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => failureNotified(params, i)),
    [false, false, true, true, true],
  );
  assert.equal(failureNotified(undefined, 0), true, 'no parameters at all: failures are reported');
});

test('delayed and relayed DSNs only for recipients whose NOTIFY asks for them', async (t) => {
  const params = {
    recipients: [
      { notify: ['NEVER' as const] },
      { notify: ['SUCCESS' as const, 'DELAY' as const] },
      { notify: ['FAILURE' as const] },
      null,
      { orcpt: 'rfc822;e@x.org' },
      { notify: ['DELAY' as const] },
    ],
  };
  const cases: { name: string; got: boolean[]; want: boolean[] }[] = [
    {
      name: 'delayed: NOTIFY lists DELAY (an absent NOTIFY counts as FAILURE only)',
      got: [0, 1, 2, 3, 4, 5].map((i) => delayNotified(params, i)),
      want: [false, true, false, false, false, true],
    },
    {
      name: 'relayed: NOTIFY lists SUCCESS and the next hop does not list DSN',
      got: [0, 1, 2, 3, 4, 5].map((i) => relayNotified(params, i, false)),
      want: [false, true, false, false, false, false],
    },
    {
      name: 'relayed: never when the next hop lists DSN (it got NOTIFY and reports itself)',
      got: [0, 1, 2, 3, 4, 5].map((i) => relayNotified(params, i, true)),
      want: [false, false, false, false, false, false],
    },
    {
      name: 'no parameters at all: neither',
      got: [delayNotified(undefined, 0), relayNotified(undefined, 0, false)],
      want: [false, false],
    },
  ];
  for (const c of cases) await t.test(c.name, () => assert.deepEqual(c.got, c.want));
});

test('xtext encodes +, = and bytes outside 33..126 (RFC 3461 §4)', () => {
  const cases: [string, string][] = [
    ['rfc822;b@example.org', 'rfc822;b@example.org'],
    ['rfc822;a+tag@example.org', 'rfc822;a+2Btag@example.org'],
    ['id=1 2', 'id+3D1+202'],
    ['é', '+C3+A9'],
  ];
  for (const [value, encoded] of cases) assert.equal(encodeXtext(value), encoded, value);
});

test('the next hop gets RET, ENVID and each recipient’s NOTIFY and ORCPT, encoded', () => {
  const next = nextHopDsn(
    {
      ret: 'HDRS',
      envid: 'env 1',
      recipients: [
        { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;a+b@x.org' },
        null,
        { notify: ['NEVER'] },
      ],
    },
    [
      { index: 0, address: 'a+b@x.org' },
      { index: 1, address: 'c@x.org' },
      { index: 2, address: 'd@x.org' },
    ],
  );
  assert.equal(next?.ret, 'HDRS');
  assert.equal(next?.envid, 'env 1');
  assert.deepEqual(
    [...(next?.rcpt ?? [])],
    [
      ['a+b@x.org', ' NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@x.org'],
      ['d@x.org', ' NOTIFY=NEVER'],
    ],
  );
  assert.equal(nextHopDsn(undefined, [{ index: 0, address: 'a@x.org' }]), undefined);
});
