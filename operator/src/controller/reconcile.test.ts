import { test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { reconcilePool } from './reconcile.ts';
import type { ReconcileContext } from './reconcile.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Writer } from '../kube/writer.ts';
import type { KubeObject } from '../desired/types.ts';
import { jsonLogger } from '../../../contract/log.ts';
import { OperatorError } from '../errors.ts';
import { listLookup } from './cache-index.ts';
import { StatusMemo } from '../kube/status-memo.ts';
import {
  fakeGenerators,
  relayPool,
  sendingDomain,
  testKeys,
} from '../../../test/helpers/operator/fixtures.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A writer that records what it writes; `existing` names objects the API server already holds. */
function fakeWriter(existing: Set<string>) {
  const applied: KubeObject[] = [];
  const created: string[] = [];
  const statuses: string[] = [];
  /** Every write in order: "finalizer add|remove", "apply Kind/name", "status Kind/name". */
  const order: string[] = [];
  const writer = {
    apply: async (o: KubeObject) => {
      applied.push(o);
      order.push(`apply ${o.kind}/${o.metadata?.name}`);
    },
    createIfAbsent: async (o: KubeObject) => {
      if (existing.has(o.metadata?.name ?? '')) return false;
      created.push(o.metadata?.name ?? '');
      return true;
    },
    delete: async () => undefined,
    patchStatus: async (kind: string, _ns: string, name: string) => {
      statuses.push(`${kind}/${name}`);
      order.push(`status ${kind}/${name}`);
    },
    patchSpec: async () => undefined,
    finalizer: async (
      _kind: string,
      _ns: string,
      _name: string,
      change: { add: string } | { remove: string },
    ) => void order.push('add' in change ? 'finalizer add' : 'finalizer remove'),
    event: async () => undefined,
  };
  return { writer: writer as unknown as Writer, applied, created, statuses, order };
}

function context(
  writer: Writer,
  stored: Record<string, string>,
  pool: KubeObject = relayPool() as unknown as KubeObject,
): ReconcileContext {
  const client = {
    request: async (_method: string, path: string) => {
      const name = path.split('/').pop() ?? '';
      const pem = stored[name];
      if (pem === undefined) throw new OperatorError('API_NOT_FOUND', path, 404);
      return {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: 'mail' },
        data: { 'dkim.key': b64(pem) },
      };
    },
  } as unknown as KubeClient;
  const objects: Record<string, KubeObject[]> = {
    RelayPool: [pool],
    SendingDomain: [
      sendingDomain('a.example', {
        dkim: { algorithm: 'ed25519-sha256', selector: 's1' },
      }) as unknown as KubeObject,
      sendingDomain('b.example', {
        dkim: { algorithm: 'ed25519-sha256', selector: 's1' },
      }) as unknown as KubeObject,
    ],
  };
  for (const list of Object.values(objects))
    for (const o of list) o.metadata = { ...o.metadata, resourceVersion: '1' };
  return {
    client,
    writer,
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    generators: fakeGenerators(),
    lookup: listLookup(objects),
    serviceMonitorCRD: false,
    settings: { image: 'mailfleet:test' },
  };
}

test('a generated key that already exists unseen by the cache: the stored key is the one rendered', async () => {
  // b.example's key Secret exists (our own create, not yet echoed by the watch) with another key.
  const stored = {
    'b-example-dkim-s1': generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
  };
  const { writer, applied, created } = fakeWriter(new Set(['b-example-dkim-s1']));
  await reconcilePool(context(writer, stored), 'mail', 'transactional');
  assert.deepEqual(
    created.filter((name) => name.includes('-dkim-')),
    ['a-example-dkim-s1'],
    'the missing key is created once',
  );
  const relaySecret = applied.find((o) => o.metadata?.name === 'transactional-relay') as
    { data: Record<string, string> } | undefined;
  assert.ok(relaySecret, 'the relay Secret is applied');
  const key = (domain: string) =>
    Buffer.from(relaySecret.data[`dkim.${domain}.s1.pem`] ?? '', 'base64').toString();
  assert.equal(key('b.example'), stored['b-example-dkim-s1'], 'the stored key, not a fresh one');
  assert.equal(key('a.example'), testKeys()['ed25519-sha256'], 'the key just created');
});

test('a second reconcile before the watch echoes the status writes of the first writes no status again', async () => {
  const { writer, statuses } = fakeWriter(new Set());
  const ctx = { ...context(writer, {}), statuses: new StatusMemo() };
  await reconcilePool(ctx, 'mail', 'transactional');
  const first = statuses.length;
  assert.ok(first >= 3, 'the pool and both domains get a status');
  await reconcilePool(ctx, 'mail', 'transactional');
  assert.equal(statuses.length, first, 'the cache still shows no status, the memo knows better');
  await reconcilePool(context(writer, {}), 'mail', 'transactional');
  assert.equal(statuses.length, 2 * first, 'without the memo every status is written again');
});

test('the drain finalizer goes on before the relays are written and comes off after the status says why', async () => {
  const live = fakeWriter(new Set());
  await reconcilePool(context(live.writer, {}), 'mail', 'transactional');
  assert.equal(live.order[0], 'finalizer add', 'before any child');
  assert.ok(live.order.some((w) => w.startsWith('apply Deployment/')));

  const deleting = relayPool() as unknown as KubeObject;
  deleting.metadata = {
    ...deleting.metadata,
    finalizers: ['mailfleet.dev/drain'],
    deletionTimestamp: '2026-12-05T20:00:00Z' as unknown as Date,
  };
  const drained = fakeWriter(new Set());
  const ctx = {
    ...context(drained.writer, {}, deleting),
    scrapedPods: () => [
      {
        kind: 'relay' as const,
        pod: 'transactional-0',
        queued: 0,
        scrapedAt: Date.parse('2026-12-05T20:00:05Z'),
        intakeClosedAt: Date.parse('2026-12-05T20:00:03Z'),
      },
    ],
  };
  await reconcilePool(ctx, 'mail', 'transactional');
  const removed = drained.order.indexOf('finalizer remove');
  assert.ok(removed > drained.order.indexOf('status RelayPool/transactional'), drained.order.join(', '));
  assert.ok(drained.order.indexOf('status RelayPool/transactional') >= 0);

  const waiting = fakeWriter(new Set());
  await reconcilePool(
    {
      ...ctx,
      writer: waiting.writer,
      scrapedPods: () => [{ kind: 'relay' as const, pod: 'transactional-0' }],
    },
    'mail',
    'transactional',
  );
  assert.ok(!waiting.order.some((w) => w.startsWith('finalizer')), 'an unread queue keeps the finalizer');
});
