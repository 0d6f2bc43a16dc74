// Operator faults against one real control plane (etcd + kube-apiserver + controller-manager +
// kwok) with the samples applied:
// (a) the operator is SIGKILLed right after its first write of a reconcile that writes many objects
//     (scale + a new SendingDomain), restarted: the fleet converges to what an undisturbed
//     reconcile of the same inputs gives (a reference namespace), nothing is deleted, no generated
//     Secret (DKIM keys, credentials) is regenerated, and the converged state is a fixpoint;
// (b) a second writer (another field manager, kubectl scale, status patches) keeps changing fields
//     the operator owns: the operator takes them back (server-side apply, force), does not crash,
//     its writes stay bounded by the intruder's and stop when the intruder stops;
// (c) kube-apiserver restarted twice in a row (every watch dropped twice), then a RelayPool change:
//     seen and converged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator, writeCount } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { LONG, report, sleep } from './lib/smtp.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON of many kinds
type Json = Record<string, any>;

let cp: ControlPlane;
let op: OperatorProcess | undefined;
let restarts = 0;
const POOL = 'transactional';
const KINDS =
  'configmaps,secrets,services,deployments,poddisruptionbudgets,networkpolicies,horizontalpodautoscalers';

const k = (args: string[], input?: string) => cp.kubectl(args, input === undefined ? {} : { input });
const json = async (args: string[]): Promise<Json> =>
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Json;
const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

function samplePool(ns: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name: POOL, namespace: ns },
    spec: {
      replicas,
      listeners: { smtp: { enabled: true, port: 25 }, submission: { enabled: true, port: 587 } },
      tls: { secretName: 'transactional-tls' },
      auth: { mode: 'Optional' },
      allowedNetworks: ['10.0.0.0/8', '127.0.0.0/8'],
      delivery: { mode: 'Direct', ehloName: 'mta.example.com' },
      limits: { maxMessageSize: '25Mi', maxRecipients: 100, maxConnections: 500 },
      drainTimeout: '60s',
      monitoring: { serviceMonitor: true },
    },
  });
}

function domain(ns: string, name: string, selector: string): string {
  return JSON.stringify({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'SendingDomain',
    metadata: { name: name.replace(/\./g, '-'), namespace: ns },
    spec: { domain: name, poolRef: { name: POOL }, dkim: { selector, algorithm: 'rsa-sha256' } },
  });
}

async function prepareNamespace(ns: string): Promise<void> {
  await k(['create', 'namespace', ns]);
  await k([
    '-n',
    ns,
    'create',
    'secret',
    'generic',
    'transactional-tls',
    '--from-literal=tls.crt=CERT',
    '--from-literal=tls.key=KEY',
  ]);
}

/** The sample pool (without persistence: kwok has no storage), domains and rate limits, in `ns`. */
async function applySamples(ns: string, replicas: number): Promise<void> {
  await k(['apply', '-f', '-'], samplePool(ns, replicas));
  for (const file of ['sendingdomains.yaml', 'ratelimits.yaml'])
    for (const doc of parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'crds/samples', file), 'utf8'))) {
      const o = doc.toJS() as Json;
      o.metadata.namespace = ns;
      await k(['apply', '-f', '-'], JSON.stringify(o));
    }
}

/** How many applied/created/pruned lines per kind the operator logged since line `from`. */
function writesLogged(from: number): Record<string, number> {
  const by: Record<string, number> = {};
  for (const line of op?.logs.slice(from) ?? []) {
    const m = /"msg":"(applied|created|pruned)".*?"kind":"(\w+)","name":"([^"]+)"/.exec(line);
    if (m) by[`${m[1]} ${m[2]}/${m[3]}`] = (by[`${m[1]} ${m[2]}/${m[3]}`] ?? 0) + 1;
  }
  return by;
}

type Snap = Map<string, { uid: string; key: string }>;

/** Every object the operator owns or generated in `ns`, with the fields that matter. */
async function snapshot(ns: string): Promise<Snap> {
  const list = await json(['-n', ns, 'get', KINDS]);
  const snap: Snap = new Map();
  for (const o of list.items as Json[]) {
    const labels = (o.metadata.labels ?? {}) as Record<string, string>;
    if (labels['mailfleet.dev/pool'] !== POOL && !labels['mailfleet.dev/sending-domain']) continue;
    const id = `${o.kind as string}/${o.metadata.name as string}`;
    // Key fields; the namespace name is normalised so that two namespaces compare.
    let key: unknown;
    if (o.kind === 'ConfigMap') {
      // Domains are listed by creation time (ties by name, second resolution): compare them as a set.
      const config = parse(String(o.data?.['relay.yaml'] ?? '')) as Json;
      config.sendingDomains?.sort((a: Json, b: Json) => String(a.domain).localeCompare(String(b.domain)));
      key = config;
    } else if (o.kind === 'Secret') key = { keys: Object.keys(o.data ?? {}).sort(), data: sha(o.data) };
    else if (o.kind === 'Deployment')
      key = {
        replicas: o.spec.replicas,
        image: o.spec.template.spec.containers.map((c: Json) => c.image),
        checksum: o.spec.template.metadata.annotations?.['mailfleet.dev/restart-checksum'],
      };
    else if (o.kind === 'Service')
      key = { type: o.spec.type, ports: o.spec.ports, selector: o.spec.selector };
    else key = o.spec;
    snap.set(id, {
      uid: o.metadata.uid as string,
      key: JSON.stringify(key).replace(new RegExp(`\\b${ns}\\b`, 'g'), 'NS'),
    });
  }
  return snap;
}

/** The state minus what differs by construction between two namespaces (generated bytes, checksums). */
function shape(snap: Snap): Record<string, string> {
  return Object.fromEntries(
    [...snap].map(([id, v]) => {
      if (id.startsWith('Secret/')) return [id, JSON.parse(v.key).keys.join(',')];
      if (id.startsWith('Deployment/')) {
        const d = JSON.parse(v.key) as Json;
        return [id, JSON.stringify({ replicas: d.replicas, image: d.image })];
      }
      return [id, v.key];
    }),
  );
}

async function converged(ns: string, replicas: number, domains: string[]): Promise<boolean | undefined> {
  const rp = await json(['-n', ns, 'get', 'rp', POOL]);
  const ready = (rp.status?.conditions ?? []).find((c: Json) => c.type === 'Ready');
  if (ready?.status !== 'True' || rp.status?.observedGeneration !== rp.metadata.generation) return undefined;
  const d = await json(['-n', ns, 'get', 'deployment', POOL]);
  if (d.spec.replicas !== replicas || (d.status?.readyReplicas ?? 0) !== replicas) return undefined;
  const cm = await json(['-n', ns, 'get', 'configmap', `${POOL}-config`]);
  const config = String(cm.data?.['relay.yaml'] ?? '');
  return domains.every((x) => config.includes(x)) || undefined;
}

/** Write requests by verb and resource (leases and reads excluded), from the operator's /metrics. */
async function writesBy(): Promise<Map<string, number>> {
  assert.ok(op);
  const text = await (await fetch(op.metricsUrl)).text();
  const by = new Map<string, number>();
  for (const m of text.matchAll(/^mailfleet_operator_api_requests_total\{([^}]*)\} (\d+)/gm)) {
    const labels = m[1] ?? '';
    if (/verb="(get|list|watch)"/.test(labels) || /resource="leases"/.test(labels)) continue;
    by.set(labels, (by.get(labels) ?? 0) + Number(m[2]));
  }
  return by;
}

/** Waits for 5 s without a write (at most 30 s): the state is a fixpoint. What was written meanwhile. */
async function settle(): Promise<{ settleMs: number; lateWrites: string[] }> {
  const t0 = performance.now();
  const lateWrites: string[] = [];
  for (let i = 0; i < 6; i++) {
    const before = await writesBy();
    await sleep(5000);
    const now = await writesBy();
    const diff = [...now]
      .filter(([l, v]) => v !== (before.get(l) ?? 0))
      .map(([l, v]) => `${l}:+${v - (before.get(l) ?? 0)}`);
    if (diff.length === 0) return { settleMs: Math.round(performance.now() - t0 - 5000), lateWrites };
    lateWrites.push(...diff);
  }
  return { settleMs: -1, lateWrites };
}

async function restartOperator(): Promise<void> {
  await op?.stop();
  op = await startOperator(cp, 'op-a');
  restarts++;
}

before(async () => {
  cp = await startCluster();
  await prepareNamespace('mail');
  await prepareNamespace('ref');
  op = await startOperator(cp, 'op-a');
  await applySamples('mail', 2);
  await eventually(
    'samples converged',
    () => converged('mail', 2, ['example.com', 'news.example.com']),
    180_000,
  );
});

after(async () => {
  await op?.stop();
  await cp?.stop();
});

test('SIGKILL right after the first write of a big reconcile, restart: same state as undisturbed, no key regenerated', async () => {
  const rounds = LONG
    ? [0, 20, 50, 80, 100, 150].map((delay, i) => ({ delay, replicas: 3 + i }))
    : [
        { delay: 0, replicas: 3 },
        { delay: 60, replicas: 4 },
      ];
  const domains = ['example.com', 'news.example.com'];
  const figures: Record<string, unknown>[] = [];
  for (const [i, round] of rounds.entries()) {
    assert.ok(op);
    const before = await snapshot('mail');
    const current = op;
    let firstWrite = 0;
    let killedAfter = -1;
    const killed = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer | string) => {
        if (firstWrite || !/"msg":"(applied|created|pruned)"/.test(String(chunk))) return;
        firstWrite = performance.now();
        current.process.stderr?.off('data', onData);
        setTimeout(() => {
          killedAfter = performance.now() - firstWrite;
          current.process.kill('SIGKILL');
          resolve();
        }, round.delay);
      };
      current.process.stderr?.on('data', onData);
    });
    const newDomain = `extra${i}.example.com`;
    domains.push(newDomain);
    const changed = performance.now();
    await k([
      '-n',
      'mail',
      'patch',
      'rp',
      POOL,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { replicas: round.replicas } }),
    ]);
    await k(['apply', '-f', '-'], domain('mail', newDomain, `s${i}`));
    await Promise.race([killed, sleep(60_000).then(() => assert.fail('no write within 60 s of the change'))]);
    await current.stop();
    const midState = await snapshot('mail');
    await restartOperator();
    await eventually(
      `round ${i} converged after the restart`,
      () => converged('mail', round.replicas, domains),
      120_000,
    );
    const convergeMs = performance.now() - changed;
    const afterState = await snapshot('mail');

    // Nothing that existed before was deleted or replaced; generated Secrets kept their bytes.
    for (const [id, v] of before) {
      const now = afterState.get(id);
      assert.ok(now, `${id} still exists`);
      assert.equal(now.uid, v.uid, `${id} not recreated`);
      if (id.startsWith('Secret/') && !id.endsWith('-config')) {
        const generated = id.includes('-dkim-') || id.endsWith('-credentials') || id.endsWith('-relay');
        if (generated && id.includes('-dkim-'))
          assert.equal(now.key, v.key, `${id}: DKIM key not regenerated`);
      }
    }
    // A Secret created before the kill survives the restart unchanged (created once, never rewritten).
    for (const [id, v] of midState)
      if (id.includes('-dkim-'))
        assert.equal(afterState.get(id)?.key, v.key, `${id} written before the kill kept`);
    const { settleMs, lateWrites } = await settle();
    figures.push({
      settleMs,
      lateWrites: lateWrites.join(' ') || '-',
      delay: round.delay,
      killedAfterMs: Math.round(killedAfter),
      convergeMs: Math.round(convergeMs),
      objects: afterState.size,
    });
    assert.ok(
      settleMs >= 0,
      `round ${i}: the converged state is a fixpoint (still writing: ${lateWrites.join(' ')})`,
    );
  }

  // The same inputs reconciled by an undisturbed operator in another namespace give the same state.
  const last = rounds.at(-1)!;
  await applySamples('ref', last.replicas);
  for (const [i] of rounds.entries())
    await k(['apply', '-f', '-'], domain('ref', `extra${i}.example.com`, `s${i}`));
  await eventually('reference namespace converged', () => converged('ref', last.replicas, domains), 120_000);
  const mine = shape(await snapshot('mail'));
  const reference = shape(await snapshot('ref'));
  assert.deepEqual(Object.keys(mine).sort(), Object.keys(reference).sort(), 'same set of owned objects');
  assert.deepEqual(mine, reference, 'same key fields as the undisturbed reconcile');
  report('operator-faults kill', {
    rounds: figures.length,
    restarts,
    objects: Object.keys(mine).length,
    perRound: figures,
  });
});

test('a second writer fighting over operator-owned fields: the operator wins, bounded writes, converges', async () => {
  assert.ok(op);
  const d0 = await json(['-n', 'mail', 'get', 'deployment', POOL]);
  const replicas = d0.spec.replicas as number;
  const cm0 = await json(['-n', 'mail', 'get', 'configmap', `${POOL}-config`]);
  const config0 = cm0.data['relay.yaml'] as string;
  const opWrites0 = await writeCount(op);
  const log0 = op.logs.length;
  const pid = op.process.pid;
  const until = Date.now() + (LONG ? 120_000 : 15_000);
  let intruderWrites = 0;
  let intruderConflicts = 0;
  const intruder = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, input === undefined ? { allowFail: true } : { allowFail: true, input });
    if (r.code === 0) intruderWrites++;
    else if (/conflict/i.test(r.stderr)) intruderConflicts++;
  };
  let n = 0;
  while (Date.now() < until) {
    n++;
    await Promise.all([
      intruder(['-n', 'mail', 'scale', 'deployment', POOL, `--replicas=${7 + (n % 3)}`]),
      // Another field manager takes ConfigMap data by force; a non-forced apply gets a 409.
      intruder(
        [
          'apply',
          '--server-side',
          '--field-manager=intruder',
          ...(n % 2 ? ['--force-conflicts'] : []),
          '-f',
          '-',
        ],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${POOL}-config`, namespace: 'mail' },
          data: { 'relay.yaml': `hostname: intruder-${n}\n` },
        }),
      ),
      intruder([
        '-n',
        'mail',
        'patch',
        'rp',
        POOL,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { readyReplicas: 90 + n, domains: 0 } }),
      ]),
    ]);
    await sleep(100);
  }
  const stopped = performance.now();
  await eventually(
    'the operator restored its fields',
    async () => {
      const d = await json(['-n', 'mail', 'get', 'deployment', POOL]);
      const cm = await json(['-n', 'mail', 'get', 'configmap', `${POOL}-config`]);
      return (d.spec.replicas === replicas && cm.data['relay.yaml'] === config0) || undefined;
    },
    60_000,
  );
  const restoreMs = performance.now() - stopped;
  const status = await eventually(
    'the operator restored the pool status',
    async () => {
      const rp = await json(['-n', 'mail', 'get', 'rp', POOL]);
      return rp.status.readyReplicas === replicas && rp.status.domains > 0 ? rp.status : undefined;
    },
    60_000,
  ).then(
    () => 'restored',
    (e: unknown) => `not restored: ${String(e)}`,
  );
  const fightWrites = (await writeCount(op)) - opWrites0;
  const idle = await settle();
  report('operator-faults conflicts', {
    intruderRounds: n,
    intruderWrites,
    intruderConflicts,
    operatorWrites: fightWrites,
    operatorLogged: writesLogged(log0),
    restoreMs: Math.round(restoreMs),
    status,
    settleMs: idle.settleMs,
    lateWrites: idle.lateWrites.join(' ') || '-',
    operatorRestarts: op.process.pid === pid && op.process.exitCode === null ? 0 : 1,
  });
  assert.equal(op.process.exitCode, null, 'the operator did not crash');
  assert.equal(op.process.pid, pid);
  // Each intruder write triggers a reconcile, which may write a few objects and the status: bounded
  // by a handful per intruder attempt; a hot loop would be unbounded (and fail the settle below).
  const bound = 5 * (intruderWrites + intruderConflicts) + 50;
  assert.ok(fightWrites <= bound, `operator writes ${fightWrites} ≤ ${bound}`);
  assert.ok(idle.settleMs >= 0, `no hot loop once the intruder stopped: ${idle.lateWrites.join(' ')}`);
  assert.equal(status, 'restored', 'the pool status written by the intruder is corrected');
});

test('kube-apiserver restarted twice in a row, then a RelayPool change: seen and converged', async () => {
  assert.ok(op);
  const d = await json(['-n', 'mail', 'get', 'deployment', POOL]);
  const target = (d.spec.replicas as number) - 1;
  const cm = await json(['-n', 'mail', 'get', 'configmap', `${POOL}-config`]);
  const domains = [...String(cm.data['relay.yaml']).matchAll(/domain: (\S+)/g)].map((m) => m[1]!);
  const t0 = performance.now();
  for (let i = 0; i < 2; i++) {
    await cp.stopApiServer();
    await sleep(500);
    await cp.startApiServer();
  }
  const restartedMs = performance.now() - t0;
  // An operator that could not renew its lease within the renew deadline (10 s) while the API server
  // was away must step down (a standby may take over once it is back): it logs the loss and exits 1,
  // and its supervisor (the kubelet, here the test) starts it again. Anything else is a crash.
  await sleep(2_000);
  const steppedDown = op.process.exitCode !== null;
  if (steppedDown) {
    assert.equal(op.process.exitCode, 1, 'a clean exit after losing leadership');
    assert.ok(
      op.logs.some((l) => l.includes('"msg":"lost leadership"')),
      `it says why: ${op.logs.slice(-5).join('\n')}`,
    );
    await restartOperator();
  }
  const changed = performance.now();
  await k([
    '-n',
    'mail',
    'patch',
    'rp',
    POOL,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { replicas: target } }),
  ]);
  await eventually('converged after the change', () => converged('mail', target, domains), 120_000);
  const convergeMs = performance.now() - changed;
  const text = await (await fetch(op.metricsUrl)).text();
  const watchRestarts = [
    ...text.matchAll(/^mailfleet_operator_watch_restarts_total(?:\{[^}]*\})? (\d+)/gm),
  ].reduce((s, m) => s + Number(m[1]), 0);
  report('operator-faults apiserver', {
    apiserverRestarts: 2,
    restartedMs: Math.round(restartedMs),
    convergeMs: Math.round(convergeMs),
    watchRestarts,
    operatorAlive: op.process.exitCode === null,
    steppedDown,
  });
  assert.equal(op.process.exitCode, null, 'the operator (restarted if it stepped down) runs');
});

test('a reconcile triggered by an unrelated change writes nothing but what changed', async () => {
  assert.ok(op);
  await settle();
  const log0 = op.logs.length;
  const rp = await json(['-n', 'mail', 'get', 'rp', POOL]);
  const ready = rp.status.readyReplicas as number;
  // A status-only change (nothing else differs): the operator rewrites the status, nothing else.
  await k([
    '-n',
    'mail',
    'patch',
    'rp',
    POOL,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { readyReplicas: ready + 50 } }),
  ]);
  await eventually(
    'status restored',
    async () => (await json(['-n', 'mail', 'get', 'rp', POOL])).status.readyReplicas === ready || undefined,
    60_000,
  );
  await settle();
  const logged = writesLogged(log0);
  report('operator-faults unrelated', { logged });
  assert.deepEqual(logged, {}, 'no child written');
});
