// `mailfleet suppression` as a user runs it, against the real control plane: the operator makes a
// pool of two relays and its token Secret, both pods run as local relay processes, and the CLI
// reads the tokens and the pods through the API server. Changes reach every relay of the pool
// (each refuses the recipient at RCPT afterwards); list and export merge the relays' answers.
// The relays are reached with --targets, as in cli-queue.test.ts (kwok pods run no process).
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
import { freePort, rawMessage, removeDir, sendMessage, tempDir } from '../helpers/relay/peers.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
const relays: LocalRelay[] = [];
const pods: string[] = [];
let dir = '';
let targets = '';

async function cli(args: string[], input?: string) {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/mailfleet.ts'), 'suppression', ...args], {
    env: { ...process.env, KUBECONFIG: cp.kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(input ?? '');
  const code = await new Promise<number | null>((r) => child.once('close', r));
  return { code, stdout, stderr };
}

const pool = () => ['--pool', 'outbound', '-n', NS, '--targets', targets];

/** Whether each relay accepts mail from app@example.com to `to` (RCPT TO answered 250). */
async function accepted(to: string): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const relay of relays) {
    const sent = await sendMessage(relay.ports.smtp ?? 0, {
      from: 'app@example.com',
      to: [to],
      raw: rawMessage(`to-${to}`),
    });
    out.push(sent.ok);
  }
  return out;
}

before(async () => {
  cp = await startCluster();
  await cp.kubectl(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'cli-suppression', ['--scrape-interval', '0']);
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'outbound', namespace: NS },
      spec: { replicas: 2, allowedNetworks: ['127.0.0.0/8'], delivery: { mode: 'Direct' } },
    }),
  });
  await cp.kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'rp/outbound', '--timeout=120s']);
  const found = await readyRelayPods(cp, NS, 'outbound');
  assert.equal(found.length, 2, 'two Ready relay pods');
  const closed = await freePort();
  const urls: Record<string, string> = {};
  for (const p of found) {
    const relay = await runPodLocally(cp, p, {
      configure: (config) => {
        config.sendingDomains = [{ domain: 'example.com' }, { domain: 'news.example.com' }];
        config.delivery = { mode: 'smarthost', smarthost: { host: '127.0.0.1', port: closed } };
        config.retry = { firstRetry: '1h', maxBackoff: '1h' };
      },
    });
    relays.push(relay);
    pods.push(p.metadata.name);
    urls[`${NS}/${p.metadata.name}`] = relay.metricsUrl.replace(/\/metrics$/, '');
  }
  dir = await tempDir('cli-suppression');
  targets = path.join(dir, 'targets.json');
  await writeFile(targets, JSON.stringify(urls));
});

after(async () => {
  for (const relay of relays) {
    await relay.stop();
    await removeDir(relay.dir);
  }
  if (dir) await removeDir(dir);
  await operator?.stop();
  await cp?.stop();
});

test('suppression add reaches every relay of the pool: each refuses the recipient at RCPT', async () => {
  assert.deepEqual(await accepted('gone@example.org'), [true, true]);
  const add = await cli(['add', 'gone@example.org', ...pool()]);
  assert.equal(add.code, 0, add.stderr);
  for (const pod of pods)
    assert.match(add.stdout, new RegExp(`^${pod}: gone@example.org suppressed \\(scope \\*\\)$`, 'm'));
  assert.deepEqual(await accepted('gone@example.org'), [false, false]);
  // Audited on each relay under the admin token's name.
  for (const relay of relays)
    assert.ok(
      relay.logs.some(
        (l) =>
          l.includes('"admin action"') &&
          l.includes('"suppression-add"') &&
          l.includes('"tokenName":"admin"'),
      ),
    );
});

test('suppression list shows one line per entry, merged across relays; -o json too', async () => {
  const list = await cli(['list', ...pool()]);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^ADDRESS\s+SCOPE\s+REASON\s+SOURCE\s+ADDED\s+EXPIRES$/);
  assert.equal(lines.length, 2);
  assert.match(lines[1] ?? '', /^gone@example.org\s+\*\s+manual\s+api\s+\S+\s+never$/);
  const json = JSON.parse(
    (await cli(['list', ...pool(), '-o', 'json', '--address', 'gone@example.org'])).stdout,
  ) as { address: string }[];
  assert.deepEqual(
    json.map((e) => e.address),
    ['gone@example.org'],
  );
});

test('suppression import from stdin, export, and remove', async () => {
  const imported = await cli(
    ['import', '-', ...pool()],
    'email\na@example.org\nb@example.org,news.example.com,complaint\nbroken\n',
  );
  assert.equal(imported.code, 0, imported.stderr);
  for (const pod of pods) assert.match(imported.stdout, new RegExp(`^${pod}: 2 added, 1 invalid$`, 'm'));
  assert.match(imported.stderr, /line 4: not a plain mailbox address/);
  const exported = await cli(['export', ...pool()]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.deepEqual(
    exported.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const e = JSON.parse(l) as { scope: string; address: string };
        return `${e.scope} ${e.address}`;
      })
      .sort(),
    ['* a@example.org', '* gone@example.org', 'news.example.com b@example.org'],
  );
  const removed = await cli(['remove', 'gone@example.org', ...pool()]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(await accepted('gone@example.org'), [true, true]);
  const again = await cli(['remove', 'gone@example.org', ...pool()]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /gone@example.org \(scope \*\) is on no relay's list/);
});

test('usage errors exit 2', async () => {
  for (const args of [
    ['add', ...pool()],
    ['frobnicate', ...pool()],
    ['add', 'x@example.org', '--pool', 'p', '--reason', 'spite'],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(' '));
  }
});
