// Leader election against the real API server, where it goes wrong in real clusters: a leader whose
// renewals hang (a slow API server) must stop leading before a standby may take over, and a
// standby whose clock runs ahead must not take a lease that is still being renewed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, operatorKubeconfig, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { startApiProxy } from '../helpers/operator/api-proxy.ts';
import type { ApiProxy } from '../helpers/operator/api-proxy.ts';
import { KubeClient } from '../../operator/src/kube/client.ts';
import { loadKubeConfigClass } from '../../operator/src/kube/kubeconfig.ts';
import { LeaderElector } from '../../operator/src/kube/lease.ts';
import { jsonLogger } from '../../contract/log.ts';

let cp: ControlPlane;
const operators: OperatorProcess[] = [];
const proxies: ApiProxy[] = [];

before(async () => {
  cp = await startCluster(1);
});

after(async () => {
  for (const op of operators) await op.stop();
  for (const p of proxies) await p.stop();
  await cp?.stop();
});

/** The time of the first log line of an operator with this message. */
const logged = (op: OperatorProcess, msg: string): number | undefined => {
  for (const line of op.logs) {
    try {
      const entry = JSON.parse(line) as { time: string; msg: string };
      if (entry.msg === msg) return Date.parse(entry.time);
    } catch {
      // not a log line
    }
  }
  return undefined;
};

test('a leader whose lease renewals hang stops leading before the standby takes over', async () => {
  let slow = false;
  const proxy = await startApiProxy(
    await operatorKubeconfig(cp, 'slow-a'),
    (method, url) => (slow && method === 'PUT' && url.pathname.includes('/leases/') ? 60_000 : 0),
    path.join(path.dirname(cp.kubeconfig), 'slow-a-proxy.kubeconfig'),
  );
  proxies.push(proxy);
  const a = await startOperator(cp, 'slow-a', [], {
    kubeconfig: proxy.kubeconfig,
  });
  operators.push(a);
  await eventually('a leads', async () => logged(a, 'controller started') !== undefined);
  const b = await startOperator(cp, 'slow-b');
  operators.push(b);
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal(logged(b, 'became leader'), undefined, 'b waits while a renews');
  slow = true; // from now on a's renewals hang in the proxy
  await eventually('b leads', async () => logged(b, 'became leader'), 90_000);
  const lost = logged(a, 'lost leadership');
  const took = logged(b, 'became leader');
  assert.ok(lost !== undefined, 'a says it lost leadership');
  assert.ok(took !== undefined && lost < took, `a stopped (${lost}) before b took over (${took})`);
  await eventually('a exits', async () => a.process.exitCode !== null, 30_000);
  assert.equal(a.process.exitCode, 1);
});

test('a standby whose clock is an hour ahead does not take a lease that is being renewed', async () => {
  const KubeConfig = await loadKubeConfigClass();
  const client = (identity: string) => {
    const kc = new KubeConfig();
    kc.loadFromFile(path.join(path.dirname(cp.kubeconfig), `sa-${identity}.kubeconfig`));
    return new KubeClient(kc);
  };
  await operatorKubeconfig(cp, 'clock-a');
  await operatorKubeconfig(cp, 'clock-b');
  const log = jsonLogger((line) => process.stderr.write(line), 'error');
  const lostBy: string[] = [];
  const elector = (identity: string, skewMs: number) =>
    new LeaderElector({
      client: client(identity),
      namespace: 'mailfleet-system',
      name: 'clock-test',
      identity,
      log,
      // Seconds of slack on the real API server: a renewal stalled ~2.5 s on a loaded machine does
      // not lose the lease, which is not what this test is about.
      durationSeconds: 12,
      renewDeadlineSeconds: 9,
      retrySeconds: 1,
      now: () => Date.now() + skewMs,
      onLost: () => lostBy.push(identity),
    });
  const a = elector('clock-a', 0);
  const b = elector('clock-b', 3_600_000);
  await a.acquire(AbortSignal.timeout(10_000));
  assert.ok(a.leading);
  const stopB = new AbortController();
  const bLeads = b.acquire(stopB.signal);
  await new Promise((r) => setTimeout(r, 24_000)); // twice the lease duration
  assert.equal(b.leading, false, 'b saw the lease renewed and did not take it');
  assert.equal(a.leading, true);
  await a.release();
  await bLeads;
  assert.equal(b.leading, true, 'b takes it once a released it');
  await b.release();
  assert.deepEqual(lostBy, []);
});
