// The command line of each control-plane process, and the fake nodes kwok runs pods on.
import path from 'node:path';
import type { Binaries } from './binaries.ts';
import { KWOK_STAGES } from './paths.ts';
import type { Pki } from './pki.ts';
import type { Component } from './types.ts';

/**
 * MAILFLEET_CP_SCALE_TEST=1: the controller manager and the scheduler talk to the API server without
 * their client-side rate limit (20 and 50 requests/s by default), as `kwokctl --disable-qps-limits`
 * runs them for scale tests. The operator benchmark sets it (docs/benchmarks-operator.md).
 */
const scaleTest = () => process.env.MAILFLEET_CP_SCALE_TEST === '1';
const unlimitedQps = () => (scaleTest() ? ['--kube-api-qps=5000', '--kube-api-burst=10000'] : []);
/**
 * Also with MAILFLEET_CP_SCALE_TEST=1: the ReplicaSet controller of Kubernetes 1.36 (Beta, on by
 * default) refuses to sync a ReplicaSet until its pod cache has caught up with its own last write,
 * and requeues it through a queue limited to 10 retries/s; when 1000 Deployments roll out at once
 * most of the wait is there, not in anything the operator does.
 */
const kcmScaleTest = () =>
  scaleTest() ? ['--feature-gates=StaleControllerConsistencyReplicaSet=false'] : [];

/** The annotation kwok is told to manage nodes by. */
const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

export function fakeNode(name: string, zone: string): unknown {
  const resources = { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        'topology.kubernetes.io/zone': zone,
        type: 'kwok',
      },
    },
    spec: {},
    status: {
      allocatable: resources,
      capacity: resources,
      nodeInfo: {
        architecture: 'amd64',
        kubeProxyVersion: 'fake',
        kubeletVersion: 'fake',
        operatingSystem: 'linux',
      },
      phase: 'Running',
    },
  };
}

export type ComponentSpec = { bin: string; args: string[] };

/** The processes the binaries allow (etcd and kube-apiserver always; the controller manager, the
 * scheduler and kwok when built), with their flags. `kubeconfigFor` writes a component's kubeconfig. */
export function componentSpecs(o: {
  binaries: Binaries;
  ports: Record<string, number>;
  pki: Pki;
  dir: string;
  useServiceAccountCredentials: boolean;
  kubeconfigFor: (component: Component) => string;
}): Map<Component, ComponentSpec> {
  const { binaries: b, ports: p, pki, dir, useServiceAccountCredentials, kubeconfigFor } = o;
  const specs = new Map<Component, ComponentSpec>();
  const etcdBin = b.etcd;
  const apiserverBin = b['kube-apiserver'];
  if (!etcdBin || !apiserverBin) throw new Error('etcd and kube-apiserver binaries are required');
  specs.set('etcd', {
    bin: etcdBin,
    args: [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
      `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
      `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${p.etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ],
  });
  // Flags as controller-runtime's envtest sets them, plus default admission and Node authz.
  specs.set('kube-apiserver', {
    bin: apiserverBin,
    args: [
      `--etcd-servers=http://127.0.0.1:${p.etcd}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${p.apiserver}`,
      `--cert-dir=${pki.dir}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--endpoint-reconciler-type=none',
      // MAILFLEET_CP_PROFILING=1: /debug/pprof on the API server (benchmarks look at its CPU).
      `--profiling=${process.env.MAILFLEET_CP_PROFILING === '1'}`,
      '--shutdown-watch-termination-grace-period=2s',
      '--v=1',
    ],
  });
  if (b['kube-controller-manager']) {
    specs.set('kube-controller-manager', {
      bin: b['kube-controller-manager'],
      args: [
        `--kubeconfig=${kubeconfigFor('kube-controller-manager')}`,
        '--leader-elect=false',
        '--secure-port=0',
        '--controllers=*',
        `--use-service-account-credentials=${useServiceAccountCredentials}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
        `--cluster-signing-cert-file=${pki.caCert}`,
        `--cluster-signing-key-file=${pki.caKey}`,
        '--cluster-name=mailfleet-test',
        '--concurrent-deployment-syncs=10',
        '--concurrent-replicaset-syncs=10',
        '--concurrent-gc-syncs=20',
        ...unlimitedQps(),
        ...kcmScaleTest(),
        '--v=1',
      ],
    });
  }
  if (b['kube-scheduler']) {
    specs.set('kube-scheduler', {
      bin: b['kube-scheduler'],
      args: [
        `--kubeconfig=${kubeconfigFor('kube-scheduler')}`,
        '--leader-elect=false',
        '--secure-port=0',
        ...unlimitedQps(),
        '--v=1',
      ],
    });
  }
  if (b.kwok && b['kube-scheduler']) {
    specs.set('kwok', {
      bin: b.kwok,
      args: [
        `--kubeconfig=${kubeconfigFor('kwok')}`,
        `--config=${KWOK_STAGES}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
        '--cidr=10.244.0.1/16',
        '--node-ip=127.0.0.1',
        `--server-address=127.0.0.1:${p.kwok}`,
        '--node-lease-duration-seconds=40',
      ],
    });
  }

  return specs;
}
