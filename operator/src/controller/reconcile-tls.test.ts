import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { reconcilePool } from './reconcile.ts';
import type { ReconcileContext } from './reconcile.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Writer } from '../kube/writer.ts';
import type { KubeObject } from '../desired/types.ts';
import { certificateIssuer, issueCA } from '../kube/certificates.ts';
import { jsonLogger } from '../../../contract/log.ts';
import { OperatorError } from '../errors.ts';
import { listLookup } from './cache-index.ts';
import { fakeGenerators, relayPool } from '../../../test/helpers/operator/fixtures.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString();

test('a pool CA that exists unseen by the cache: the certificate is re-issued by the stored CA, no second CA is kept', async () => {
  // Another pass (or an operator before a restart) created the CA; the watch has not echoed it yet.
  const storedCA = await issueCA({
    commonName: 'stored CA',
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  const applied: KubeObject[] = [];
  const createAttempts: string[] = [];
  const writer = {
    apply: async (o: KubeObject) => void applied.push(o),
    createIfAbsent: async (o: KubeObject) => {
      createAttempts.push(o.metadata?.name ?? '');
      return o.metadata?.name !== 'transactional-tls-ca';
    },
    delete: async () => undefined,
    patchStatus: async () => undefined,
    patchSpec: async () => undefined,
    finalizer: async () => undefined,
    event: async () => undefined,
  } as unknown as Writer;
  const client = {
    request: async (_method: string, path: string) => {
      if (!path.endsWith('/secrets/transactional-tls-ca'))
        throw new OperatorError('API_NOT_FOUND', path, 404);
      return {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'transactional-tls-ca', namespace: 'mail' },
        data: { 'tls.crt': b64(storedCA.cert), 'tls.key': b64(storedCA.key) },
      };
    },
  } as unknown as KubeClient;
  const ctx: ReconcileContext = {
    client,
    writer,
    log: jsonLogger((line) => process.stderr.write(line), 'error'),
    generators: fakeGenerators(),
    issuer: certificateIssuer,
    lookup: listLookup({ RelayPool: [relayPool({ tls: {} }) as unknown as KubeObject] }),
    serviceMonitorCRD: false,
    settings: { image: 'mailfleet:test' },
  };
  const { desired } = await reconcilePool(ctx, 'mail', 'transactional');
  assert.equal(
    createAttempts.filter((n) => n === 'transactional-tls-ca').length,
    1,
    'one create, answered 409',
  );
  const serving = applied.find((o) => o.metadata?.name === 'transactional-tls-generated') as
    { data: Record<string, string> } | undefined;
  assert.ok(serving, 'the serving Secret is applied');
  const cert = new X509Certificate(unb64(serving.data['tls.crt']));
  const ca = new X509Certificate(storedCA.cert);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the stored CA');
  assert.equal(unb64(serving.data['ca.crt']), storedCA.cert);
  const bundle = applied.find((o) => o.metadata?.name === 'transactional-ca') as
    { data: Record<string, string> } | undefined;
  assert.equal(bundle?.data['ca.crt'], storedCA.cert, 'the published CA is the stored one');
  assert.equal(desired.certificate?.issued, 'Missing');
});
