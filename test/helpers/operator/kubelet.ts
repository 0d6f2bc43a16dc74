// A kubelet for tests, for what matters to queued mail: kwok pods run no process, so this harness
// registers a Node of its own (not managed by kwok) and runs every pod scheduled to it as a real
// relay process, the way a kubelet would:
//   - each pod gets its own loopback address (127.<n>.0.x), reported as its podIP; a dnsmasq answers
//     `<service>.<namespace>.svc` with the addresses of the pods the Service selects;
//   - the relay runs from the pod's own args, env and projected ConfigMap/Secret volume (its
//     listeners, the return-path one included, bound to the pod's address); an
//     emptyDir lives and dies with the pod, a PVC's directory (by claim name) outlives it; a
//     tracker pod (`mailfleet tracker`) runs its args with its listeners on the pod's address and
//     its handoff Service name resolved by the dnsmasq below;
//   - Ready follows the pod's readinessProbe (the relay's /readyz; NotReady after failureThreshold
//     failures in a row); a container that exits is restarted (restartPolicy Always);
//     a Job's pod (restartPolicy Never, e.g. an absorb Job's `relay --evacuate`) runs once and ends
//     Succeeded or Failed by its exit code, which the Job controller counts;
//   - a deleted pod gets SIGTERM, then SIGKILL after its grace period; only then is it removed;
//   - a ConfigMap or Secret that changes (or an optional one that appears) is written again into
//     the running pods that mount it (every CONFIGMAP_SYNC_MS, as a kubelet's sync does), and a
//     relay's runnable config with it.
// Pods choose this node with the nodeSelector LOCAL_NODE_LABEL=true (RelayPool spec.scheduling).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { ControlPlane } from '../../../dev/controlplane/cluster.ts';
import { REPO_ROOT } from '../../../dev/controlplane/cluster.ts';
import { RETURN_PATH_PORT } from '../../../contract/layout.ts';
import { freePort, spawnDnsmasq, stopProcess, tempDir, waitFor } from '../relay/peers.ts';
import {
  containerArgv,
  localPathIn,
  operatorArgs,
  podEnv,
  relayCommand,
  trackerArgs,
  volumeFiles,
  type Pod,
  type Volume,
} from '../../../dev/local-pod.ts';

export const LOCAL_NODE = 'local-kubelet';
export const LOCAL_NODE_LABEL = 'mailfleet.dev/local-kubelet';

type KubePod = Pod & {
  metadata: Pod['metadata'] & {
    uid: string;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec: Pod['spec'] & {
    containers: {
      readinessProbe?: {
        httpGet?: { path?: string };
        timeoutSeconds?: number;
        failureThreshold?: number;
      };
    }[];
    nodeName?: string;
    serviceAccountName?: string;
    restartPolicy?: 'Always' | 'OnFailure' | 'Never';
    terminationGracePeriodSeconds?: number;
  };
};

/** What happened to one pod's relay when its pod went away. */
export interface Termination {
  pod: string;
  /** ms from SIGTERM to exit. */
  drainMs: number;
  exitCode: number | null;
  /** 'SIGKILL' when the grace period ran out. */
  signal: NodeJS.Signals | null;
  /** The relay's own "drain finished" summary, when it logged one. */
  drain?: { remaining: number; handedOff: number; duplicates: number; seconds: number };
}

export interface RunningPod {
  pod: KubePod;
  ip: string;
  /** Listener name -> port on `ip`; `http`, `handoff` too. */
  ports: Record<string, number>;
  spoolDir: string;
  /** Directory of the relay's config file (its projected volume); '' for an operator or tracker pod. */
  configDir: string;
  /** The program files the pod runs (its image's, see KubeletOptions.images). */
  appRoot: string;
  proc: ChildProcess;
  logs: string[];
  ready: boolean;
  /** Set once SIGTERM was sent. */
  terminatingSince?: number;
  /** A run-once pod (restartPolicy Never) whose process exited: its exit code. */
  exitCode?: number;
}

/** A run-once pod (a Job's) whose process exited. */
export interface Completion {
  pod: string;
  exitCode: number;
  logs: string[];
}

/** How often mounted ConfigMaps are compared with the API (a kubelet's sync period is ~1 min plus
 * its cache TTL; shorter here so tests wait seconds, long enough to cost one kubectl a round). */
const CONFIGMAP_SYNC_MS = 2000;

/** One ConfigMap or Secret projected into a running pod: its volume's directory and the keys it maps. */
type MountedConfigMap = NonNullable<Volume['configMap']> & { dir: string; kind: 'ConfigMap' | 'Secret' };

/** Writes `file` whole and renames it into place: a reader sees the old or the new content. */
async function replaceFile(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, content, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export interface KubeletOptions {
  /** Edits each relay config after addresses and paths are set (delivery to the test's peers). */
  configure?: (config: Record<string, unknown>, pod: string) => void;
  /** Extra host names for the dnsmasq (e.g. a destination domain). */
  hosts?: Record<string, string>;
  /** Poll interval of pods, EndpointSlices and readiness. */
  intervalMs?: number;
  /**
   * What "pulling" an image means here: image reference -> a directory with that image's program
   * files (bin/, operator/src, relay/src; node_modules resolvable from it). Any other image runs
   * this checkout.
   */
  images?: Record<string, string>;
}

export interface Kubelet {
  /** Pods running now, by `namespace/name`. */
  running: Map<string, RunningPod>;
  terminations: Termination[];
  /** Run-once pods (Jobs') that exited, in order. */
  completions: Completion[];
  /** `ip:port` of the dnsmasq serving Service names. */
  dns: string;
  /** The directory that backs a PersistentVolumeClaim (made by the first pod that mounts it). */
  claimDir(namespace: string, claim: string): string;
  stop(): Promise<void>;
}

function nodeObject(now: string): Record<string, unknown> {
  const resources = { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: LOCAL_NODE,
      labels: {
        'kubernetes.io/hostname': LOCAL_NODE,
        'kubernetes.io/os': 'linux',
        'topology.kubernetes.io/zone': 'zone-local',
        [LOCAL_NODE_LABEL]: 'true',
      },
    },
    spec: {},
    status: nodeStatus(now, resources),
  };
}

function nodeStatus(now: string, resources = { cpu: '32', memory: '256Gi', pods: '110' }) {
  return {
    capacity: resources,
    allocatable: resources,
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'test kubelet',
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
    nodeInfo: {
      architecture: 'amd64',
      operatingSystem: 'linux',
      kubeletVersion: 'test',
      kubeProxyVersion: 'test',
    },
  };
}

export async function startKubelet(cp: ControlPlane, options: KubeletOptions = {}): Promise<Kubelet> {
  const interval = options.intervalMs ?? 500;
  const root = await tempDir('kubelet');
  const kubectl = async (args: string[], input?: string) => {
    const r = await cp.kubectl(args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await kubectl(['apply', '-f', '-'], JSON.stringify(nodeObject(new Date().toISOString())));
  const heartbeat = async () => {
    const now = new Date().toISOString();
    await kubectl([
      'patch',
      'node',
      LOCAL_NODE,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: nodeStatus(now) }),
    ]).catch(() => undefined);
  };
  await heartbeat();

  // Service names: `<service>.<namespace>.svc` -> the addresses of the pods the Service selects.
  const hostsFile = path.join(root, 'hosts');
  const claimDir = (namespace: string, claim: string) => path.join(root, 'pvc', namespace, claim);
  await writeFile(hostsFile, '');
  const dnsPort = await freePort();
  const dnsmasq = spawnDnsmasq(dnsPort, [
    `--addn-hosts=${hostsFile}`,
    '--local=/svc/',
    '--local=/example/',
    '--no-negcache',
    ...Object.entries(options.hosts ?? {}).map(([name, ip]) => `--host-record=${name},${ip}`),
  ]);
  let hostsText = '';

  const running = new Map<string, RunningPod>();
  /** Readiness probes failed in a row, per pod. */
  const probeFailures = new WeakMap<RunningPod, number>();
  const terminations: Termination[] = [];
  const completions: Completion[] = [];
  const starting = new Set<string>();
  // Pods' addresses 127.<n>.0.10 and up, n from this process's pid: two test processes on one
  // machine (two kubelets) do not hand out the same addresses.
  const subnet = 1 + (process.pid % 254);
  let nextIp = 10;
  let stopped = false;

  /** Settles once a process's stdout and stderr are closed ('close', after 'exit'). */
  const closed = new WeakMap<ChildProcess, Promise<void>>();
  /** An exited process's last log lines may still be in its pipes: read, or 5 s should something else hold them. */
  const logsRead = (proc: ChildProcess) =>
    Promise.race([closed.get(proc), new Promise((resolve) => setTimeout(resolve, 5000))]);

  // What the kubelet does once a deleted pod's containers are gone: the object goes too.
  const forceDelete = (pod: KubePod) =>
    kubectl([
      '-n',
      pod.metadata.namespace,
      'delete',
      'pod',
      pod.metadata.name,
      '--grace-period=0',
      '--force',
      '--wait=false',
    ]).catch(() => undefined);
  const podKey = (p: KubePod) => `${p.metadata.namespace}/${p.metadata.name}`;

  const patchStatus = async (r: RunningPod) => {
    const now = new Date().toISOString();
    const ready = r.ready ? 'True' : 'False';
    const done = r.exitCode !== undefined;
    const status = {
      phase: done ? (r.exitCode === 0 ? 'Succeeded' : 'Failed') : 'Running',
      hostIP: '127.0.0.1',
      podIP: r.ip,
      podIPs: [{ ip: r.ip }],
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'ContainersReady', status: ready, lastTransitionTime: now },
        { type: 'Ready', status: ready, lastTransitionTime: now },
      ],
      containerStatuses: [
        {
          name: r.pod.spec.containers[0]?.name ?? 'relay',
          image: r.pod.spec.containers[0]?.image ?? 'local',
          imageID: 'local',
          containerID: `local://${r.proc.pid}`,
          ready: r.ready,
          started: true,
          restartCount: 0,
          state: done
            ? { terminated: { exitCode: r.exitCode, startedAt: now, finishedAt: now } }
            : { running: { startedAt: now } },
        },
      ],
    };
    await kubectl([
      '-n',
      r.pod.metadata.namespace,
      'patch',
      'pod',
      r.pod.metadata.name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]).catch(() => undefined);
  };

  // A relay pod: its rendered config made to run here (the pod's address, local paths, the test's
  // delivery settings), written next to the original so relative paths still resolve.
  // `chosen`: the ports of the first start, kept when a changed ConfigMap is made runnable again.
  const relayProgram = async (
    pod: KubePod,
    localPath: (p: string) => string,
    ip: string,
    chosen?: Record<string, number>,
  ) => {
    const { args, configAt, configFile } = relayCommand(pod, localPath);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the relay's YAML
    const config = parse(await readFile(configFile, 'utf8')) as Record<string, any>;
    // The pod's own address; ports as rendered (a non-root run moves the privileged ones).
    const ports: Record<string, number> = {};
    for (const [name, listener] of Object.entries(config.listeners ?? {}) as [
      string,
      Record<string, unknown>,
    ][]) {
      if (!listener.enabled) continue;
      const port = Number(listener.port);
      ports[name] = chosen?.[name] ?? (port < 1024 && process.getuid?.() !== 0 ? await freePort(ip) : port);
      listener.port = ports[name];
      listener.host = ip;
    }
    config.http = { ...config.http, host: ip };
    ports.http = Number(config.http.port ?? 8080);
    // The return-path listener (bounces and complaints) is not under `listeners`.
    if (config.returnPath) {
      const listener = { ...config.returnPath.listener, host: ip };
      config.returnPath = { ...config.returnPath, listener };
      ports.returnPath = Number(listener.port ?? RETURN_PATH_PORT);
    }
    if (config.handoff) {
      config.handoff = { ...config.handoff, host: ip, dnsServers: [`127.0.0.1:${dnsPort}`] };
      ports.handoff = Number(config.handoff.port);
    }
    // Mapped once: the pod's /tmp emptyDir would match the local path again.
    const spoolDir = localPath(config.spool?.dir ?? '/var/spool/mailfleet');
    config.spool = { ...config.spool, dir: spoolDir };
    options.configure?.(config, podKey(pod));
    const localConfig = path.join(path.dirname(configFile), 'relay.local.yaml');
    await replaceFile(localConfig, stringify(config));
    args[configAt + 1] = localConfig;
    return { args, ports, spoolDir, configDir: path.dirname(configFile) };
  };

  const launch = async (pod: KubePod): Promise<RunningPod> => {
    const container = pod.spec.containers[0];
    if (!container) throw new Error(`pod ${pod.metadata.name} has no container`);
    const ip = `127.${subnet}.0.${nextIp++}`;
    const podDir = path.join(root, 'pods', pod.metadata.uid);
    const mounts = new Map<string, string>();
    const configMaps: MountedConfigMap[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
      // A StatefulSet's claim `<template>-<pod>` is a directory that outlives its pods.
      const claim =
        volume?.persistentVolumeClaim?.claimName ??
        (volume ? undefined : `${mount.name}-${pod.metadata.name}`);
      const local = claim ? claimDir(pod.metadata.namespace, claim) : path.join(podDir, mount.name);
      await mkdir(local, { recursive: true });
      mounts.set(mount.mountPath, local);
      if (!volume || volume.emptyDir || volume.persistentVolumeClaim) continue;
      for (const source of [...(volume.projected?.sources ?? []), { configMap: volume.configMap }])
        if (source.configMap) configMaps.push({ ...source.configMap, dir: local, kind: 'ConfigMap' });
      for (const source of volume.projected?.sources ?? [])
        if (source.secret) configMaps.push({ ...source.secret, dir: local, kind: 'Secret' });
      for (const [file, content] of await volumeFiles(cp, pod.metadata.namespace, volume)) {
        await mkdir(path.dirname(path.join(local, file)), { recursive: true });
        await writeFile(path.join(local, file), content, { mode: 0o600 });
      }
    }
    const appRoot = options.images?.[container.image ?? ''] ?? REPO_ROOT;
    const env = podEnv(pod);
    // The pod's /tmp emptyDir (read-only root FS) is the process's temporary directory.
    if (mounts.has('/tmp')) env.TMPDIR = mounts.get('/tmp') ?? '';
    const operator = operatorArgs(container, ip);
    const tracker = operator
      ? undefined
      : trackerArgs(container, ip, localPathIn(mounts), `127.0.0.1:${dnsPort}`);
    const program = operator
      ? {
          args: operator.args,
          ports: { http: operator.httpPort },
          spoolDir: '',
          configDir: '',
        }
      : tracker
        ? { ...tracker, spoolDir: '', configDir: '' }
        : await relayProgram(pod, localPathIn(mounts), ip);
    // In a pod the operator reaches the API server in-cluster with its ServiceAccount's token;
    // here the same token comes in a kubeconfig.
    if (operator)
      env.KUBECONFIG = await cp.serviceAccountKubeconfig(
        pod.metadata.namespace,
        pod.spec.serviceAccountName ?? 'default',
        { path: path.join(root, `sa-${pod.metadata.uid}.kubeconfig`) },
      );
    const { args, ports, spoolDir, configDir } = program;
    const argv = containerArgv(container, appRoot);
    const logs: string[] = [];
    const run = (): ChildProcess => {
      const proc = spawn(argv[0] ?? process.execPath, [...argv.slice(1), ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      closed.set(proc, new Promise((resolve) => proc.once('close', () => resolve())));
      for (const stream of [proc.stdout, proc.stderr])
        stream?.setEncoding('utf8').on('data', (chunk: string) => {
          for (const line of chunk.split('\n').filter(Boolean)) logs.push(line);
        });
      return proc;
    };
    const r: RunningPod = {
      pod,
      ip,
      ports,
      spoolDir,
      configDir,
      appRoot,
      proc: run(),
      logs,
      ready: false,
    };
    // restartPolicy Always: a container that exits while its pod is wanted is started again
    // (on the same emptyDir, as a kubelet restarts a container, not the pod). Never: the pod ends.
    const watchExit = (proc: ChildProcess) =>
      proc.once('exit', (code) => {
        if (r.terminatingSince !== undefined || stopped || running.get(podKey(pod)) !== r) return;
        if (pod.spec.restartPolicy === 'Never') {
          // Ended once its last log lines are read (the pipes closed), as the logs are asserted.
          void logsRead(proc).then(() => {
            r.exitCode = code ?? 137;
            completions.push({ pod: podKey(pod), exitCode: r.exitCode, logs });
            return patchStatus(r);
          });
          return;
        }
        r.ready = false;
        void patchStatus(r);
        setTimeout(() => {
          if (r.terminatingSince !== undefined || stopped) return;
          r.proc = run();
          watchExit(r.proc);
        }, 1000);
      });
    watchExit(r.proc);
    if (!operator && !tracker) {
      const localPath = localPathIn(mounts);
      mounted.set(r, {
        configMaps,
        rewrite: async () => void (await relayProgram(pod, localPath, ip, ports)),
      });
    }
    return r;
  };

  // The ConfigMaps and Secrets each running relay mounts, and how to make its config runnable again.
  const mounted = new WeakMap<RunningPod, { configMaps: MountedConfigMap[]; rewrite: () => Promise<void> }>();
  /** A kubelet's ConfigMap and Secret sync: changed keys are written into the pods, the relay reloads them. */
  const syncConfigMaps = async () => {
    const list = JSON.parse(await kubectl(['get', 'configmaps,secrets', '-A', '-o', 'json'])) as {
      items: { kind: string; metadata: { name: string; namespace: string }; data?: Record<string, string> }[];
    };
    for (const r of running.values()) {
      const m = mounted.get(r);
      if (!m || r.terminatingSince !== undefined) continue;
      let changed = false;
      for (const source of m.configMaps) {
        const data = list.items.find(
          (c) =>
            c.kind === source.kind &&
            c.metadata.namespace === r.pod.metadata.namespace &&
            c.metadata.name === source.name,
        )?.data;
        if (!data) continue;
        const text = (v: string | undefined) =>
          v === undefined || source.kind === 'ConfigMap' ? v : Buffer.from(v, 'base64').toString('utf8');
        for (const item of source.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
          const value = text(data[item.key]);
          const file = path.join(source.dir, item.path);
          if (value === undefined || (await readFile(file, 'utf8').catch(() => undefined)) === value)
            continue;
          await replaceFile(file, value);
          changed = true;
        }
      }
      if (changed) await m.rewrite();
    }
  };

  const terminate = (key: string, r: RunningPod, graceSeconds: number, removePod: boolean) => {
    if (r.terminatingSince !== undefined) return;
    r.terminatingSince = Date.now();
    r.ready = false;
    const proc = r.proc;
    const killer = setTimeout(() => proc.kill('SIGKILL'), graceSeconds * 1000);
    const finish = async () => {
      clearTimeout(killer);
      const exitedAt = Date.now();
      await logsRead(proc); // the 'drain finished' line may come after 'exit'
      const summary = r.logs
        .map((line) => parseLogLine(line))
        .findLast((entry) => entry?.msg === 'drain finished');
      // The emptyDir goes with the pod; a PVC's directory stays. Recorded after it.
      await rm(path.join(root, 'pods', r.pod.metadata.uid), { recursive: true, force: true });
      terminations.push({
        pod: key,
        drainMs: exitedAt - (r.terminatingSince ?? exitedAt),
        exitCode: proc.exitCode,
        signal: proc.signalCode,
        ...(summary
          ? {
              drain: {
                remaining: Number(summary.remaining),
                handedOff: Number(summary.handedOff),
                duplicates: Number(summary.duplicates),
                seconds: Number(summary.seconds),
              },
            }
          : {}),
      });
      running.delete(key);
      if (removePod) await forceDelete(r.pod);
    };
    if (proc.exitCode !== null || proc.signalCode !== null) void finish();
    else {
      proc.once('exit', () => void finish());
      proc.kill('SIGTERM');
    }
  };

  const tick = async () => {
    const list = JSON.parse(
      await kubectl(['get', 'pods', '-A', '--field-selector', `spec.nodeName=${LOCAL_NODE}`, '-o', 'json']),
    ) as { items: KubePod[] };
    const seen = new Set<string>();
    for (const pod of list.items) {
      const key = podKey(pod);
      seen.add(key);
      const r = running.get(key);
      if (pod.metadata.deletionTimestamp) {
        if (r)
          terminate(
            key,
            r,
            pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30,
            true,
          );
        else if (!starting.has(key)) await forceDelete(pod);
        continue;
      }
      if (!r && !starting.has(key)) {
        starting.add(key);
        void launch(pod)
          .then(async (started) => {
            running.set(key, started);
            await patchStatus(started);
          })
          .catch(() => undefined) // volumes not there yet: the next tick tries again
          .finally(() => starting.delete(key));
      }
    }
    // Gone from the API without a graceful delete (force-deleted): the process dies at once.
    for (const [key, r] of running)
      if (!seen.has(key) && r.terminatingSince === undefined) {
        r.proc.kill('SIGKILL');
        terminate(key, r, 0, false);
      }
    // Readiness from /readyz, probed each tick (the probe's period, shortened): Ready after one
    // success, NotReady after failureThreshold (default 3) failures in a row, as a kubelet counts
    // them; one answer slower than timeoutSeconds on a loaded machine does not take a pod out.
    await Promise.all(
      [...running.values()].map(async (r) => {
        if (r.terminatingSince !== undefined || r.exitCode !== undefined) return;
        const probe = r.pod.spec.containers[0]?.readinessProbe;
        const ok = await fetch(`http://${r.ip}:${r.ports.http}${probe?.httpGet?.path ?? '/readyz'}`, {
          signal: AbortSignal.timeout((probe?.timeoutSeconds ?? 1) * 1000),
        })
          .then((res) => res.ok)
          .catch(() => false);
        const failures = ok ? 0 : (probeFailures.get(r) ?? 0) + 1;
        probeFailures.set(r, failures);
        const ready = ok || (r.ready && failures < (probe?.failureThreshold ?? 3));
        if (ready !== r.ready) {
          r.ready = ready;
          await patchStatus(r);
        }
      }),
    );
    // Service names: what the endpoints controller would publish, made here because Kubernetes
    // refuses loopback addresses in EndpointSlices. A Service lists the pods its selector matches;
    // not-ready ones too when it publishes them (the headless peers Service does), never a pod
    // that is already being deleted.
    const services = JSON.parse(await kubectl(['get', 'services', '-A', '-o', 'json'])) as {
      items: {
        metadata: { name: string; namespace: string };
        spec: { selector?: Record<string, string>; publishNotReadyAddresses?: boolean };
      }[];
    };
    const lines: string[] = [];
    for (const svc of services.items) {
      const selector = Object.entries(svc.spec.selector ?? {});
      if (selector.length === 0) continue;
      for (const r of running.values()) {
        if (r.pod.metadata.namespace !== svc.metadata.namespace || r.terminatingSince !== undefined) continue;
        if (!r.ready && !svc.spec.publishNotReadyAddresses) continue;
        if (selector.every(([key, value]) => r.pod.metadata.labels?.[key] === value))
          lines.push(`${r.ip} ${svc.metadata.name}.${svc.metadata.namespace}.svc`);
      }
    }
    const text = [...new Set(lines)].sort().join('\n') + '\n';
    if (text !== hostsText) {
      hostsText = text;
      await writeFile(hostsFile, text);
      dnsmasq.kill('SIGHUP');
    }
  };

  let ticks = 0;
  const loop = (async () => {
    while (!stopped) {
      await tick().catch(() => undefined);
      if (++ticks % Math.max(1, Math.round(10_000 / interval)) === 0) await heartbeat();
      if (ticks % Math.max(1, Math.round(CONFIGMAP_SYNC_MS / interval)) === 0)
        await syncConfigMaps().catch(() => undefined);
      await new Promise((r) => setTimeout(r, interval));
    }
  })();

  return {
    running,
    terminations,
    completions,
    dns: `127.0.0.1:${dnsPort}`,
    claimDir,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all([...running.values()].map((r) => stopProcess(r.proc, 'SIGKILL')));
      await stopProcess(dnsmasq, 'SIGTERM');
      await rm(root, { recursive: true, force: true });
    },
  };
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Waits until `count` relay pods of `pool` (or, with `app` mailfleet-tracker, its tracker pods) run here and are Ready. */
export async function readyPods(
  k: Kubelet,
  pool: string,
  count: number,
  timeoutMs = 120_000,
  app: 'mailfleet-relay' | 'mailfleet-tracker' = 'mailfleet-relay',
): Promise<RunningPod[]> {
  const mine = () =>
    [...k.running.values()].filter(
      (r) =>
        r.pod.metadata.labels?.['mailfleet.dev/pool'] === pool &&
        (r.pod.metadata.labels['app.kubernetes.io/name'] ?? 'mailfleet-relay') === app &&
        r.ready &&
        r.terminatingSince === undefined,
    );
  await waitFor(() => mine().length === count, timeoutMs, `${count} ready ${app} pods of ${pool}`);
  return mine();
}
