// `mailfleet queue` as a user runs it, against the real control plane: the operator generates the
// pool and its token Secret, the pool's pod runs as a local relay process (its own config and
// Secret files, dev/local-pod.ts), and the CLI reads the token and lists the pods
// through the API server with a kubeconfig. kwok pods have no reachable IP and the API server
// refuses to proxy to loopback, so the relay is reached with --targets (a direct URL); the pod
// proxy path is exercised up to the API server's RBAC check (a user without pods/proxy gets 403,
// before any connection to the pod is attempted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import { startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { readyRelayPods, runPodLocally } from '../../dev/local-pod.ts';
import type { LocalRelay } from '../../dev/local-pod.ts';
import { freePort, rawMessage, removeDir, sendMessage, tempDir, waitFor } from '../helpers/relay/peers.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let relay: LocalRelay | undefined;
let pod = '';
let dir = '';
let targets = '';
const ids: string[] = [];

async function cli(args: string[], kubeconfig = cp.kubeconfig) {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/mailfleet.ts'), 'queue', ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, stdout, stderr };
}

const pool = ['--pool', 'outbound', '-n', NS];

before(async () => {
  cp = await startCluster();
  await cp.kubectl(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'cli-queue', ['--scrape-interval', '0']);
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'outbound', namespace: NS },
      spec: { replicas: 1, allowedNetworks: ['127.0.0.0/8'], delivery: { mode: 'Direct' } },
    }),
  });
  await cp.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'rp/outbound', '--timeout=120s']);
  const [found] = await readyRelayPods(cp, NS, 'outbound');
  assert.ok(found, 'a Ready relay pod');
  pod = found.metadata.name;
  const closed = await freePort();
  relay = await runPodLocally(cp, found, {
    // The rendered config, with mail for example.com that stays queued: its smarthost is a closed port.
    configure: (config) => {
      config.sendingDomains = [{ domain: 'example.com' }];
      config.delivery = { mode: 'smarthost', smarthost: { host: '127.0.0.1', port: closed } };
      config.retry = { firstRetry: '1h', maxBackoff: '1h' };
      // The drain test: with no peer to hand the queue to, the relay exits after this.
      config.drainTimeout = '3s';
    },
  });
  dir = await tempDir('cli-queue');
  targets = path.join(dir, 'targets.json');
  await writeFile(targets, JSON.stringify({ [`${NS}/${pod}`]: relay.metricsUrl.replace(/\/metrics$/, '') }));
  for (const tag of ['cli-one', 'cli-two']) {
    const sent = await sendMessage(relay.ports.smtp ?? 0, {
      from: 'app@example.com',
      to: [`${tag}@example.org`],
      raw: rawMessage(tag),
    });
    assert.ok(sent.ok, sent.response);
    ids.push(/queued as ([A-Z0-9]+)/.exec(sent.response)?.[1] ?? '');
  }
});

after(async () => {
  await relay?.stop();
  if (relay) await removeDir(relay.dir);
  if (dir) await removeDir(dir);
  await operator?.stop();
  await cp?.stop();
});

test('queue list and summary: every queued message of the pool, with the read token from its Secret', async () => {
  const list = await cli(['list', ...pool, '--targets', targets]);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^POD\s+ID\s+AGE\s+FROM\s+RCPT\s+STATE\s+ATTEMPTS$/);
  for (const id of ids)
    assert.ok(
      lines.some((l) => l.startsWith(pod) && l.includes(id)),
      `${id} listed`,
    );
  const json = await cli(['list', ...pool, '--targets', targets, '-o', 'json']);
  const parsed = JSON.parse(json.stdout) as { pod: string; body: { messages: { id: string }[] } }[];
  assert.deepEqual(
    parsed.map((r) => r.body.messages.map((m) => m.id).sort()),
    [[...ids].sort()],
  );
  const summary = await cli(['summary', ...pool, '--targets', targets]);
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, new RegExp(`^${pod}\\s+2\\s`, 'm'));
  // The read token did it: no admin action was logged by the relay.
  assert.ok(!relay?.logs.some((l) => l.includes('"admin action"')));
});

test('queue show: the message with its recipients', async () => {
  const show = await cli(['show', ids[0]!, ...pool, '--targets', targets]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, new RegExp(`^pod: ${pod}$`, 'm'));
  assert.match(show.stdout, /"address": "cli-one@example.org"/);
  const missing = await cli(['show', 'NOSUCHID', ...pool, '--targets', targets]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /message NOSUCHID is on no relay of the pool/);
});

test('queue retry and delete use the admin token; the relay audits them under the token name "admin"', async () => {
  const retry = await cli(['retry', ids[0]!, ...pool, '--targets', targets]);
  assert.equal(retry.code, 0, retry.stderr);
  assert.equal(retry.stdout, `${pod}: ${ids[0]} retry scheduled\n`);
  const deleted = await cli(['delete', ids[1]!, ...pool, '--targets', targets]);
  assert.equal(deleted.code, 0, deleted.stderr);
  const audit = (relay?.logs ?? [])
    .filter((l) => l.includes('"admin action"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    audit.map((a) => [a.action, a.tokenName, a.role, a.queueId]),
    [
      ['retry', 'admin', 'admin', ids[0]],
      ['delete', 'admin', 'admin', ids[1]],
    ],
  );
  const list = await cli(['list', ...pool, '--targets', targets, '-o', 'json']);
  const remaining = (JSON.parse(list.stdout) as { body: { messages: { id: string }[] } }[])[0]?.body.messages;
  assert.deepEqual(
    remaining?.map((m) => m.id),
    [ids[0]],
  );
});

test('RBAC decides: without get on the token Secret nothing is read; without pods/proxy the API server refuses', async () => {
  await cp.kubectl(['-n', NS, 'create', 'serviceaccount', 'viewer']);
  await cp.kubectl(['-n', NS, 'create', 'role', 'see-pods', '--verb=list', '--resource=pods']);
  await cp.kubectl([
    '-n',
    NS,
    'create',
    'rolebinding',
    'see-pods',
    '--role=see-pods',
    `--serviceaccount=${NS}:viewer`,
  ]);
  const kubeconfig = await cp.serviceAccountKubeconfig(NS, 'viewer');
  const denied = await cli(['list', ...pool, '--targets', targets], kubeconfig);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /403/);
  assert.match(denied.stderr, /needs get on secrets\/outbound-admin-tokens/);

  await cp.kubectl([
    '-n',
    NS,
    'create',
    'role',
    'read-tokens',
    '--verb=get',
    '--resource=secrets',
    '--resource-name=outbound-admin-tokens',
  ]);
  await cp.kubectl([
    '-n',
    NS,
    'create',
    'rolebinding',
    'read-tokens',
    '--role=read-tokens',
    `--serviceaccount=${NS}:viewer`,
  ]);
  await waitFor(
    async () => (await cli(['list', ...pool, '--targets', targets], kubeconfig)).code === 0,
    20_000,
    'the new Role to apply',
  );
  // Through the pod proxy (the default): refused by the API server before it dials the pod.
  const proxied = await cli(['list', ...pool], kubeconfig);
  assert.equal(proxied.code, 1);
  assert.match(proxied.stderr, new RegExp(`^${pod}: 403 .*pods/proxy`, 'm'));
});

test('queue drain --pod stops that relay', async () => {
  const drained = await cli(['drain', ...pool, '--pod', pod, '--targets', targets]);
  assert.equal(drained.code, 0, drained.stderr);
  assert.match(drained.stdout, new RegExp(`^${pod}: draining`));
  await waitFor(() => relay?.proc.exitCode !== null, 30_000, 'the drained relay to exit');
  assert.equal(relay?.proc.exitCode, 0);
});
