// What the pod-lifecycle tests share (pool-lifecycle, lifecycle-rounds): one control plane, the
// operator, a scripted destination ("dest.example", deferring or accepting on command) and the test
// kubelet running the pools' relays; a RelayPool + SendingDomain builder. The ledger is ledger.ts.
import { before, after } from 'node:test';
import type { ControlPlane } from '../../../dev/controlplane/cluster.ts';
import { startCluster, startOperator } from './harness.ts';
import type { OperatorProcess } from './harness.ts';
import { LOCAL_NODE_LABEL, startKubelet, type Kubelet } from './kubelet.ts';
import { startScripted, type ScriptedUpstream } from '../relay/peers.ts';

export const NS = 'mail';

export type LifecycleRig = {
  cp: ControlPlane;
  operator: OperatorProcess;
  upstream: ScriptedUpstream;
  kubelet: Kubelet;
  /** kubectl that throws on a non-zero exit; returns stdout. */
  k: (args: string[], input?: string) => Promise<string>;
  stop(): Promise<void>;
};

export async function startLifecycleRig(identity: string, operatorArgs: string[]): Promise<LifecycleRig> {
  const cp = await startCluster(1);
  const k = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await k(['create', 'namespace', NS]);
  const operator = await startOperator(cp, identity, operatorArgs);
  const upstream = await startScripted();
  let dns = '';
  const kubelet = await startKubelet(cp, {
    hosts: { 'dest.example': '127.0.0.1' },
    configure: (config) => {
      // Where "the Internet" is: the dnsmasq for MX/A lookups, the scripted upstream's port.
      const delivery = config.delivery as Record<string, unknown>;
      delivery.dns = { servers: [dns] };
      delivery.directPort = upstream.port;
    },
  });
  dns = kubelet.dns;
  return {
    cp,
    operator,
    upstream,
    kubelet,
    k,
    stop: async () => {
      await kubelet.stop();
      await upstream.stop();
      await operator.stop();
      await cp.stop();
    },
  };
}

/** The rig of one test file: started in the file's `before` hook, stopped in its `after` hook. */
export type FileRig = Omit<LifecycleRig, 'stop'> & {
  createPool: (
    name: string,
    replicas: number,
    spec?: Record<string, unknown>,
    domain?: Record<string, unknown>,
  ) => Promise<void>;
};

/**
 * Registers the `before`/`after` hooks that start and stop one lifecycle rig for the calling test
 * file; `started` is given the rig as soon as it runs (before any test). The handle reads that rig
 * (reading it before the `before` hook ran throws).
 */
export function lifecycleRigPerFile(
  identity: string,
  operatorArgs: string[],
  started: (rig: LifecycleRig) => void = () => undefined,
): FileRig {
  let rig: LifecycleRig | undefined;
  before(async () => {
    rig = await startLifecycleRig(identity, operatorArgs);
    started(rig);
  });
  after(async () => {
    await rig?.stop();
  });
  const running = (): LifecycleRig => {
    if (!rig) throw new Error(`lifecycle rig ${identity} read before it started`);
    return rig;
  };
  const k = (args: string[], input?: string) => running().k(args, input);
  return {
    get cp() {
      return running().cp;
    },
    get operator() {
      return running().operator;
    },
    get upstream() {
      return running().upstream;
    },
    get kubelet() {
      return running().kubelet;
    },
    k,
    createPool: (name, replicas, spec = {}, domain = {}) => createPool(k, name, replicas, spec, domain),
  };
}

/** A Direct-delivery pool on the test kubelet's node, fast retries, with one SendingDomain (`domain`: more of its spec). */
export async function createPool(
  k: LifecycleRig['k'],
  name: string,
  replicas: number,
  spec: Record<string, unknown> = {},
  domain: Record<string, unknown> = {},
): Promise<void> {
  const objects = [
    {
      kind: 'RelayPool',
      metadata: { name, namespace: NS },
      spec: {
        replicas,
        allowedNetworks: ['127.0.0.0/8'],
        delivery: { mode: 'Direct' },
        retry: { firstRetry: '3s', maxBackoff: '5s' },
        drainTimeout: '60s',
        scheduling: { nodeSelector: { [LOCAL_NODE_LABEL]: 'true' } },
        ...spec,
      },
    },
    {
      kind: 'SendingDomain',
      metadata: { name: `${name}-example`, namespace: NS },
      spec: {
        domain: 'example.com',
        poolRef: { name },
        dkim: { selector: 's1', algorithm: 'ed25519-sha256' },
        ...domain,
      },
    },
  ];
  for (const o of objects)
    await k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'mailfleet.dev/v1alpha1', ...o }));
}
