import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controlledBy, mustRecreateStatefulSet } from './ownership.ts';
import type { KubeObject } from './types.ts';

test('controlledBy: only a controller ownerReference with the pool UID counts', () => {
  const cases: [string, KubeObject['metadata'], boolean][] = [
    ['our controller reference', { ownerReferences: [ref('pool-uid', true)] }, true],
    ['no owner at all (made by a user)', {}, false],
    ['owned by another object', { ownerReferences: [ref('other-uid', true)] }, false],
    ['a non-controller reference to the pool', { ownerReferences: [ref('pool-uid', false)] }, false],
    ['a pool of the same name re-created (old UID)', { ownerReferences: [ref('old-uid', true)] }, false],
  ];
  for (const [name, metadata, expected] of cases)
    assert.equal(controlledBy({ metadata } as never, 'pool-uid'), expected, name);
  assert.equal(controlledBy({ metadata: { ownerReferences: [ref('x', true)] } }, undefined), false);
});

function ref(uid: string, controller: boolean) {
  return { apiVersion: 'mailfleet.dev/v1alpha1', kind: 'RelayPool', name: 'p', uid, controller };
}

const sts = (storage: string | undefined, storageClassName?: string, name = 'spool'): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'p' },
  spec: {
    volumeClaimTemplates: [
      {
        metadata: { name },
        spec: {
          ...(storageClassName ? { storageClassName } : {}),
          resources: { requests: storage ? { storage } : {} },
        },
      },
    ],
  },
});

test('a StatefulSet is recreated only when its volume claim templates changed', () => {
  const cases: [string, KubeObject, KubeObject | undefined, boolean][] = [
    ['no existing StatefulSet', sts('1Gi'), undefined, false],
    ['same size and class', sts('1Gi', 'fast'), sts('1Gi', 'fast'), false],
    ['the server filled in the default class', sts('1Gi'), sts('1Gi', 'standard'), false],
    ['a bigger spool', sts('2Gi'), sts('1Gi'), true],
    ['another storage class', sts('1Gi', 'fast'), sts('1Gi', 'slow'), true],
    ['a renamed claim', sts('1Gi', undefined, 'queue'), sts('1Gi'), true],
  ];
  for (const [name, desired, existing, expected] of cases)
    assert.equal(mustRecreateStatefulSet(desired, existing), expected, name);
});
