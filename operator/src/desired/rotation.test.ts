import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { signingKey } from './domains.ts';
import { dkimRecord } from './dns.ts';
import { desiredState } from './state.ts';
import { findCondition } from '../api/conditions.ts';
import type { Condition } from '../api/types.ts';
import {
  fakeGenerators,
  observed,
  relayPool,
  secret,
  secrets,
  sendingDomain,
  testKeys,
} from '../../../test/helpers/operator/fixtures.ts';

const OLD = testKeys()['ed25519-sha256'] ?? '';
const NEW = testKeys()['rsa-sha256'] ?? '';
const published = (selector: string, pem: string) => {
  const r = dkimRecord('example.com', selector, pem);
  return { [r.name ?? '']: [[r.value ?? '']] };
};

test('which key signs while a selector changes', () => {
  const oldSecret = secret('example-com-dkim-s1', { 'dkim.key': OLD });
  const cases: {
    name: string;
    previous?: { selector: string; secretName: string };
    created: boolean;
    answers?: Record<string, string[][]>;
    withOld?: boolean;
    signs: string;
    pending?: string;
    events: string[];
  }[] = [
    { name: 'a new domain', created: true, signs: 's2', events: [] },
    {
      name: 'the same selector as before',
      previous: { selector: 's2', secretName: 'example-com-dkim-s2' },
      created: false,
      signs: 's2',
      events: [],
    },
    {
      name: 'its key Secret was deleted: a new key under the same selector, with a Warning',
      previous: { selector: 's2', secretName: 'example-com-dkim-s2' },
      created: true,
      signs: 's2',
      events: ['Warning DKIMKeyRegenerated'],
    },
    {
      name: 'a new selector, its record not published yet: the old key keeps signing',
      previous: { selector: 's1', secretName: 'example-com-dkim-s1' },
      created: true,
      answers: {},
      withOld: true,
      signs: 's1',
      pending: 's2',
      events: ['Normal DKIMKeyGenerated'],
    },
    {
      name: 'a new selector whose record is published: it signs',
      previous: { selector: 's1', secretName: 'example-com-dkim-s1' },
      created: false,
      answers: published('s2', NEW),
      withOld: true,
      signs: 's2',
      events: [],
    },
    {
      name: 'a new selector, the record published with another key: still the old one',
      previous: { selector: 's1', secretName: 'example-com-dkim-s1' },
      created: false,
      answers: published('s2', OLD),
      withOld: true,
      signs: 's1',
      pending: 's2',
      events: [],
    },
    {
      name: 'a new selector without DNS verification: it signs at once, with a Warning',
      previous: { selector: 's1', secretName: 'example-com-dkim-s1' },
      created: true,
      withOld: true,
      signs: 's2',
      events: ['Warning DKIMSelectorChanged'],
    },
    {
      name: 'a new selector while the old key is gone: it signs at once, with a Warning',
      previous: { selector: 's1', secretName: 'example-com-dkim-s1' },
      created: true,
      answers: {},
      signs: 's2',
      events: ['Warning DKIMSelectorChanged'],
    },
  ];
  for (const c of cases) {
    const result = signingKey({
      fqdn: 'example.com',
      selector: 's2',
      algorithm: 'rsa-sha256',
      key: { pem: NEW, secretName: 'example-com-dkim-s2', created: c.created },
      previous: c.previous,
      secrets: c.withOld ? secrets(oldSecret) : secrets(),
      answers: c.answers,
    });
    assert.equal(result.selector, c.signs, `${c.name}: signing selector`);
    assert.equal(result.pem, c.signs === 's1' ? OLD : NEW, `${c.name}: signing key`);
    assert.equal(
      result.algorithm,
      c.signs === 's1' ? 'ed25519-sha256' : 'rsa-sha256',
      `${c.name}: algorithm`,
    );
    assert.equal(result.pendingSelector, c.pending, `${c.name}: pending`);
    assert.deepEqual(
      result.events.map((e) => `${e.type} ${e.reason}`),
      c.events,
      `${c.name}: events`,
    );
  }
});

test('during a rotation the relays sign with the old selector and the status shows both records', () => {
  const domain = sendingDomain('example.com', { dkim: { selector: 's2', algorithm: 'rsa-sha256' } });
  domain.status = {
    dkim: { selector: 's1', algorithm: 'ed25519-sha256', secretName: 'example-com-dkim-s1' },
  } as never;
  const d = desiredState(
    observed({
      pool: relayPool({ replicas: 1 }),
      domains: [domain],
      secrets: secrets(
        secret('example-com-dkim-s1', { 'dkim.key': OLD }),
        secret('example-com-dkim-s2', { 'dkim.key': NEW }),
      ),
      dns: new Map([['example-com', {}]]),
    }),
    fakeGenerators(),
  );
  const config = parse(
    (d.apply.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> }).data['relay.yaml'] ??
      '',
  );
  assert.deepEqual(config.sendingDomains[0].dkim.selector, 's1');
  const status = d.statuses.find((s) => s.kind === 'SendingDomain')?.status as {
    dkim: { selector: string; pendingSelector: string; pendingDnsRecord: { name: string } };
    conditions: Condition[];
  };
  assert.equal(status.dkim.selector, 's1');
  assert.equal(status.dkim.pendingSelector, 's2');
  assert.equal(status.dkim.pendingDnsRecord.name, 's2._domainkey.example.com');
  assert.equal(findCondition(status.conditions, 'DKIMKeyReady')?.reason, 'RotationPending');
  const relaySecret = d.apply.find((o) => o.metadata?.name === 'transactional-relay') as {
    data: Record<string, string>;
  };
  assert.equal(Buffer.from(relaySecret.data['dkim.example.com.s1.pem'] ?? '', 'base64').toString(), OLD);
});
