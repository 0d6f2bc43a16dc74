// The contract between the two programs, for real: the relay config, users and DKIM keys the
// operator renders into the control plane run a real relay process (the pod's own args and env, its
// projected volume materialized locally), which relays a message in Direct mode (MX lookup through
// dnsmasq, A fallback to the loopback upstream) DKIM-signed with the keys the operator generated,
// verified by an independent verifier (mailauth) against the records the operator reports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { readyRelayPods, runPodLocally } from '../../dev/local-pod.ts';
import type { LocalRelay } from '../../dev/local-pod.ts';
import {
  freePort,
  rawMessage,
  removeDir,
  sendMessage,
  spawnDnsmasq,
  startScripted,
  stopProcess,
} from '../helpers/relay/peers.ts';
import type { ScriptedUpstream } from '../helpers/relay/peers.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let upstream: ScriptedUpstream | undefined;
let dns: ChildProcess | undefined;
let relay: LocalRelay | undefined;
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;

before(async () => {
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'relay-contract', ['--scrape-interval', '0']);
  const objects = [
    {
      kind: 'RelayPool',
      metadata: { name: 'outbound', namespace: NS },
      spec: { replicas: 1, allowedNetworks: ['127.0.0.0/8'], delivery: { mode: 'Direct' } },
    },
    {
      kind: 'SendingDomain',
      metadata: { name: 'ed', namespace: NS },
      spec: {
        domain: 'ed.example',
        poolRef: { name: 'outbound' },
        dkim: { selector: 'e1', algorithm: 'ed25519-sha256' },
      },
    },
    {
      kind: 'SendingDomain',
      metadata: { name: 'rsa', namespace: NS },
      spec: {
        domain: 'rsa.example',
        poolRef: { name: 'outbound' },
        dkim: { selector: 'r1', algorithm: 'rsa-sha256' },
      },
    },
  ];
  for (const o of objects)
    await cp.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'mailfleet.dev/v1alpha1', ...o }),
    });
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/outbound', 'sd/ed', 'sd/rsa', '--timeout=120s']);

  upstream = await startScripted();
  const dnsPort = await freePort();
  dns = spawnDnsmasq(dnsPort, ['--local=/example/', '--host-record=dest.example,127.0.0.1']);
  const [pod] = await readyRelayPods(cp, NS, 'outbound');
  assert.ok(pod, 'a Ready relay pod');
  const port = upstream.port;
  relay = await runPodLocally(cp, pod, {
    // Direct mode as rendered; only where "the Internet" is changes: our resolver and port.
    configure: (config) => {
      const delivery = config.delivery as Record<string, unknown>;
      delivery.dns = { servers: [`127.0.0.1:${dnsPort}`] };
      delivery.directPort = port;
    },
  });
});

after(async () => {
  await relay?.stop();
  if (relay) await removeDir(relay.dir);
  await upstream?.stop();
  if (dns) await stopProcess(dns, 'SIGTERM');
  await operator?.stop();
  await cp?.stop();
});

async function verify(raw: string, record: { name: string; value: string }) {
  const result = await dkimVerify(Buffer.from(raw, 'latin1'), {
    resolver: async (name: string, type: string) => {
      if (type === 'TXT' && name === record.name) return [[record.value]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  return result.results[0];
}

/** Messages the upstream received, by SendingDomain object. */
const delivered = new Map<string, string>();

for (const [object, domain] of [
  ['ed', 'ed.example'],
  ['rsa', 'rsa.example'],
] as const) {
  test(`${domain}: the rendered config relays in Direct mode`, async () => {
    assert.ok(relay && upstream);
    const id = `${object}-contract`;
    const sent = await sendMessage(relay.ports.smtp ?? 0, {
      from: `app@${domain}`,
      to: ['someone@dest.example'],
      raw: rawMessage(id).replace('From: a@example.com', `From: app@${domain}`),
    });
    assert.ok(sent.ok, sent.response);
    const message = await eventually('delivered to the upstream', async () =>
      upstream?.received.find((m) => m.raw.includes(`<${id}@example.com>`)),
    );
    assert.deepEqual(message.to, ['someone@dest.example']);
    assert.equal(message.from, `app@${domain}`);
    delivered.set(object, message.raw);
  });

  test(`${domain}: DKIM-signed with the key the operator generated, verifying against its DNS record`, async () => {
    const raw = delivered.get(object);
    assert.ok(raw, 'the message was delivered');
    const sd = await json(['-n', NS, 'get', `sd/${object}`]);
    const record = sd.status.dkim.dnsRecord as { name: string; value: string };
    const result = await verify(raw, record);
    assert.equal(result?.status.result, 'pass', JSON.stringify(result?.status));
    assert.equal(result?.signingDomain, domain);
  });
}

const tokenOf = async (role: 'read' | 'admin') => {
  const secret = await json(['-n', NS, 'get', 'secret', 'outbound-admin-tokens']);
  return Buffer.from(String(secret.data[role]), 'base64').toString('utf8');
};

test('the pool reports its token Secret, and its relay answers /api only to those tokens', async () => {
  assert.ok(relay);
  const pool = await json(['-n', NS, 'get', 'rp/outbound']);
  assert.equal(pool.status.adminTokensSecret, 'outbound-admin-tokens');
  const [read, admin] = [await tokenOf('read'), await tokenOf('admin')];
  assert.match(read, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  assert.notEqual(read, admin);
  const base = relay.metricsUrl.replace(/\/metrics$/, '');
  const status = async (method: string, path: string, token?: string) =>
    (await fetch(base + path, { method, headers: token ? { authorization: `Bearer ${token}` } : {} })).status;
  assert.equal(await status('GET', '/metrics'), 200, 'metrics stay open');
  assert.equal(await status('GET', '/api/queue'), 401);
  assert.equal(await status('GET', '/api/queue', read), 200);
  assert.equal(await status('DELETE', '/api/messages/NOSUCH', read), 403);
  assert.equal(await status('DELETE', '/api/messages/NOSUCH', admin), 404, 'admin passes, no such message');
});

test('an edited token Secret is never rewritten; a deleted one comes back with new tokens', async () => {
  assert.ok(operator);
  const reconciles = async () => {
    const text = await (await fetch(operator!.metricsUrl)).text();
    return [...text.matchAll(/^mailfleet_operator_reconciles_total\{[^}]*\} (\d+)/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  };
  const edited = 'rotated-by-hand-0123456789abcdef';
  const before0 = await reconciles();
  await k([
    '-n',
    NS,
    'patch',
    'secret',
    'outbound-admin-tokens',
    '-p',
    JSON.stringify({ stringData: { admin: edited } }),
  ]);
  // The edit of an owned Secret requeues the pool: wait for reconciles after it, then look.
  await eventually('a reconcile after the edit', async () =>
    (await reconciles()) > before0 ? true : undefined,
  );
  assert.equal(await tokenOf('admin'), edited, 'the operator kept the edited value');
  const pool = await json(['-n', NS, 'get', 'rp/outbound']);
  assert.equal(
    pool.status.conditions.find((c: { type: string }) => c.type === 'Ready')?.status,
    'True',
    'a valid edited token is accepted',
  );

  const before = await tokenOf('read');
  await k(['-n', NS, 'delete', 'secret', 'outbound-admin-tokens']);
  const fresh = await eventually('the token Secret to be generated again', async () => {
    const r = await k(['-n', NS, 'get', 'secret', 'outbound-admin-tokens', '-o', 'json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as { data: Record<string, string> }) : undefined;
  });
  assert.notEqual(Buffer.from(fresh.data.read ?? '', 'base64').toString(), before);
  assert.notEqual(Buffer.from(fresh.data.admin ?? '', 'base64').toString(), edited);
});
