// The CRDs' validation as the real kube-apiserver applies it: every document the OpenAPI unit
// tests refuse is refused by the server too, naming the same field, and each CEL rule has a
// failing document with its human message. Documents are sent with --dry-run=server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, startControlPlane } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane, ExecResult } from '../../dev/controlplane/cluster.ts';
import { celInvalid, domain, invalid, limit, pool } from '../fixtures/api-documents.ts';

let cp: ControlPlane | undefined;
const ns = 'api-validation';

before(async () => {
  cp = await startControlPlane({ nodes: 1 });
  const crds = await cp.kubectl(['apply', '--server-side', '-f', path.join(REPO_ROOT, 'crds'), '-o', 'name']);
  await cp.kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...crds.stdout.trim().split('\n'),
  ]);
  await cp.kubectl(['create', 'namespace', ns]);
});

after(async () => {
  await cp?.stop();
});

let counter = 0;
function dryRun(kind: string, spec: Record<string, unknown>, name = `doc-${++counter}`): Promise<ExecResult> {
  const object = { apiVersion: 'mailfleet.dev/v1alpha1', kind, metadata: { name }, spec };
  return cp!.kubectl(['-n', ns, 'apply', '--dry-run=server', '-f', '-'], {
    input: JSON.stringify(object),
    allowFail: true,
  });
}

/** ajv reports list items as `.0`; the API server as `[0]`. */
const serverPath = (p: string) => p.replace(/\.(\d+)(?=\.|$)/g, '[$1]');

describe('the API server accepts', () => {
  const valid: Array<[string, string, Record<string, unknown>]> = [
    ['a minimal RelayPool', 'RelayPool', pool()],
    ['a minimal SendingDomain', 'SendingDomain', domain()],
    ['a minimal RateLimit', 'RateLimit', limit()],
    [
      'a pool with an outbound TLS policy and per-destination overrides',
      'RelayPool',
      pool({
        delivery: {
          tlsPolicy: {
            default: 'MTASTS',
            destinations: [
              { domain: 'partner.example', policy: 'Verify' },
              { domain: '*.legacy.example', policy: 'Opportunistic' },
            ],
          },
        },
      }),
    ],
    [
      'a pool with DANE and MTA-STS through a validating resolver',
      'RelayPool',
      pool({ delivery: { tlsPolicy: { default: 'DANEAndMTASTS', daneResolver: '127.0.0.1:5353' } } }),
    ],
    [
      'a pool with TLS, AUTH and the submission listener',
      'RelayPool',
      pool({
        tls: { secretName: 't' },
        auth: { mode: 'Required' },
        listeners: { submission: { enabled: true } },
      }),
    ],
    [
      'a pool with a generated certificate (tls: {}), AUTH and the submission listener',
      'RelayPool',
      pool({ tls: {}, auth: { mode: 'Required' }, listeners: { submission: { enabled: true } } }),
    ],
    [
      'a pool deleted with Drain that hands its queue to another pool',
      'RelayPool',
      pool({ deletionPolicy: 'Drain', deletionHandOffTo: 'successor' }),
    ],
    [
      'a pool with a cert-manager issuer and extra names',
      'RelayPool',
      pool({
        tls: { issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: ['smtp.example.com'] },
      }),
    ],
  ];
  for (const [name, kind, spec] of valid) {
    test(name, async () => {
      const result = await dryRun(kind, spec);
      assert.equal(result.code, 0, result.stderr);
    });
  }
});

describe('the API server refuses (OpenAPI rules)', () => {
  for (const c of invalid) {
    test(c.name, async () => {
      const result = await dryRun(c.kind, c.spec);
      assert.notEqual(result.code, 0, `expected ${c.name} to be refused`);
      assert.ok(
        result.stderr.includes(serverPath(c.path)),
        `expected ${serverPath(c.path)} in: ${result.stderr}`,
      );
    });
  }
});

describe('the API server refuses (CEL rules)', () => {
  for (const c of celInvalid) {
    test(c.name, async () => {
      const result = await dryRun(c.kind, c.spec, c.objectName);
      assert.notEqual(result.code, 0, `expected ${c.name} to be refused`);
      assert.match(result.stderr, c.message);
    });
  }
});
