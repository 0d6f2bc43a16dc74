import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretReferences, domainIndexKey, indexKeys, listLookup, poolIndexKey } from './cache-index.ts';
import type { KubeObject } from '../desired/types.ts';

const object = (o: Record<string, unknown>) => o as KubeObject;

test('index keys by kind', () => {
  const cases: { name: string; kind: string; object: KubeObject; keys: string[] }[] = [
    {
      name: 'a SendingDomain is filed under its poolRef',
      kind: 'SendingDomain',
      object: object({ metadata: { name: 'd', namespace: 'mail' }, spec: { poolRef: { name: 'p' } } }),
      keys: ['pool:mail/p'],
    },
    {
      name: 'a RateLimit without poolRef is filed nowhere',
      kind: 'RateLimit',
      object: object({ metadata: { name: 'l', namespace: 'mail' }, spec: {} }),
      keys: [],
    },
    {
      name: 'a RelayPool needs no index (looked up by name)',
      kind: 'RelayPool',
      object: object({ metadata: { name: 'p', namespace: 'mail', labels: { 'mailfleet.dev/pool': 'x' } } }),
      keys: [],
    },
    {
      name: 'a RelayPool naming a pool to hand its queue to on deletion is filed under that pool',
      kind: 'RelayPool',
      object: object({ metadata: { name: 'old', namespace: 'mail' }, spec: { deletionHandOffTo: 'new' } }),
      keys: ['handoff-to:mail/new'],
    },
    {
      name: 'a pool child is filed under the pool label',
      kind: 'ConfigMap',
      object: object({ metadata: { name: 'c', namespace: 'mail', labels: { 'mailfleet.dev/pool': 'p' } } }),
      keys: ['pool:mail/p'],
    },
    {
      name: 'a DKIM key Secret is filed under its SendingDomain',
      kind: 'Secret',
      object: object({
        metadata: { name: 'k', namespace: 'mail', labels: { 'mailfleet.dev/sending-domain': 'd' } },
      }),
      keys: ['domain:mail/d'],
    },
    {
      name: 'an unlabelled object is filed nowhere',
      kind: 'Secret',
      object: object({ metadata: { name: 'k', namespace: 'mail' } }),
      keys: [],
    },
  ];
  for (const c of cases) assert.deepEqual(indexKeys(c.kind, c.object), c.keys, c.name);
});

test('listLookup finds by name and by index key, namespace-scoped', () => {
  const lookup = listLookup({
    SendingDomain: [
      object({ metadata: { name: 'd1', namespace: 'a' }, spec: { poolRef: { name: 'p' } } }),
      object({ metadata: { name: 'd2', namespace: 'b' }, spec: { poolRef: { name: 'p' } } }),
    ],
  });
  assert.equal(lookup.get('SendingDomain', 'b', 'd2')?.metadata?.name, 'd2');
  assert.equal(lookup.get('SendingDomain', 'a', 'd2'), undefined);
  assert.deepEqual(
    lookup.indexed('SendingDomain', poolIndexKey('a', 'p')).map((o) => o.metadata?.name),
    ['d1'],
  );
  assert.deepEqual(lookup.indexed('Secret', domainIndexKey('a', 'd1')), []);
});

test('secret references follow the current spec of each pool and domain', () => {
  type Step = { source: string; pool: string | undefined; secrets: string[] };
  const cases: { name: string; steps: Step[]; expect: Record<string, string[]> }[] = [
    {
      name: 'a pool whose tls.secretName moved from a to b is reached through b only',
      steps: [
        { source: 'RelayPool/mail/edge', pool: 'mail/edge', secrets: ['mail/a'] },
        { source: 'RelayPool/mail/edge', pool: 'mail/edge', secrets: ['mail/b'] },
      ],
      expect: { 'mail/a': [], 'mail/b': ['mail/edge'] },
    },
    {
      name: 'a Secret named by a pool and one of its domains stays referenced when the domain drops it',
      steps: [
        { source: 'RelayPool/mail/edge', pool: 'mail/edge', secrets: ['mail/shared'] },
        { source: 'SendingDomain/mail/d', pool: 'mail/edge', secrets: ['mail/shared'] },
        { source: 'SendingDomain/mail/d', pool: 'mail/edge', secrets: [] },
      ],
      expect: { 'mail/shared': ['mail/edge'] },
    },
    {
      name: 'a domain moved to another pool leads to the new pool only',
      steps: [
        { source: 'SendingDomain/mail/d', pool: 'mail/one', secrets: ['mail/dkim'] },
        { source: 'SendingDomain/mail/d', pool: 'mail/two', secrets: ['mail/dkim'] },
      ],
      expect: { 'mail/dkim': ['mail/two'] },
    },
    {
      name: 'a deleted pool (noted with no pool) references nothing',
      steps: [
        { source: 'RelayPool/mail/edge', pool: 'mail/edge', secrets: ['mail/a'] },
        { source: 'RelayPool/mail/edge', pool: undefined, secrets: ['mail/a'] },
      ],
      expect: { 'mail/a': [] },
    },
    {
      name: 'two pools naming one Secret are both reached',
      steps: [
        { source: 'RelayPool/mail/one', pool: 'mail/one', secrets: ['mail/creds'] },
        { source: 'RelayPool/mail/two', pool: 'mail/two', secrets: ['mail/creds', 'mail/tls'] },
      ],
      expect: { 'mail/creds': ['mail/one', 'mail/two'], 'mail/tls': ['mail/two'] },
    },
  ];
  for (const c of cases) {
    const references = new SecretReferences();
    for (const step of c.steps) {
      references.pools('mail/warm-the-index'); // an index built between notes must not go stale
      references.note(step.source, step.pool, step.secrets);
    }
    for (const [secret, pools] of Object.entries(c.expect))
      assert.deepEqual(references.pools(secret).sort(), pools, `${c.name}: ${secret}`);
  }
});
