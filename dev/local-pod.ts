// Runs a relay pod of the control plane as a local process: its own command, args and env, its
// projected ConfigMap/Secret volumes materialized into a temp dir (mount paths rewritten), emptyDir
// and PVC volumes as temp dirs, and ports remapped to free loopback ports (25/587 need root, and
// several "pods" share one host). Used by `npm start` and the operator-relay integration test.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { ControlPlane } from './controlplane/cluster.ts';
import { REPO_ROOT } from './controlplane/cluster.ts';
import { freePort, waitFor } from './net.ts';
import { stopProcess, tempDir } from './peers.ts';

type KeyToPath = { key: string; path: string };
type Source = {
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
  secret?: { name: string; items?: KeyToPath[]; optional?: boolean };
};
export type Volume = {
  name: string;
  emptyDir?: object;
  persistentVolumeClaim?: { claimName: string };
  projected?: { sources: Source[] };
  configMap?: { name: string; items?: KeyToPath[] };
  secret?: { secretName: string; items?: KeyToPath[] };
};
export type Container = {
  name?: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
};
export type Pod = {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: { containers: Container[]; volumes?: Volume[] };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
};

export type LocalRelay = {
  pod: string;
  dir: string;
  configFile: string;
  /** Listener name -> local port; `http` is the metrics/health port. */
  ports: Record<string, number>;
  proc: ChildProcess;
  logs: string[];
  metricsUrl: string;
  /**
   * What the kubelet does when a mounted ConfigMap or Secret changes: each changed volume is
   * written anew and swapped in at once (the `..data` symlink), never file by file. Returns the
   * number of volumes that changed. The rewritten relay.local.yaml is not touched.
   */
  refresh(): Promise<number>;
  stop(): Promise<void>;
};

export type LocalRelayOptions = {
  /** Edits the relay config after the ports and paths are rewritten (e.g. point delivery at a sink). */
  configure?: (config: Record<string, unknown>) => void;
};

/** The image runs `mailfleet <args>`: locally that is bin/mailfleet.ts under this Node. */
const ENTRYPOINT = [process.execPath, path.join(REPO_ROOT, 'bin/mailfleet.ts')];

async function getJson<T>(cp: ControlPlane, args: string[]): Promise<T> {
  const r = await cp.kubectl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * Files of one ConfigMap or Secret source (all keys, or the listed items at their paths); none for
 * an optional source whose object does not exist, as a kubelet mounts it.
 */
async function sourceFiles(
  cp: ControlPlane,
  namespace: string,
  kind: 'configmap' | 'secret',
  source: { name: string; items?: KeyToPath[] | undefined; optional?: boolean | undefined },
): Promise<Map<string, Buffer>> {
  const { name, items } = source;
  const got = await cp.kubectl(['-n', namespace, 'get', kind, name, '-o', 'json'], { allowFail: true });
  if (got.code !== 0 && source.optional && /NotFound/.test(got.stderr)) return new Map();
  if (got.code !== 0) throw new Error(`kubectl get ${kind} ${name}: ${got.stderr}`);
  const object = JSON.parse(got.stdout) as { data?: Record<string, string> };
  const decode = (v: string) => (kind === 'secret' ? Buffer.from(v, 'base64') : Buffer.from(v));
  const files = new Map<string, Buffer>();
  const data = object.data ?? {};
  for (const item of items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
    const value = data[item.key];
    if (value !== undefined) files.set(item.path, decode(value));
  }
  return files;
}

export async function volumeFiles(
  cp: ControlPlane,
  namespace: string,
  volume: Volume,
): Promise<Map<string, Buffer>> {
  const sources: Source[] = volume.projected?.sources ?? [];
  if (volume.configMap) sources.push({ configMap: volume.configMap });
  if (volume.secret)
    sources.push({ secret: { name: volume.secret.secretName, items: volume.secret.items } as never });
  const files = new Map<string, Buffer>();
  for (const s of sources) {
    const part = s.configMap
      ? await sourceFiles(cp, namespace, 'configmap', s.configMap)
      : s.secret
        ? await sourceFiles(cp, namespace, 'secret', s.secret)
        : new Map<string, Buffer>();
    for (const [k, v] of part) files.set(k, v);
  }
  return files;
}

/** Ready pods of a pool. */
export async function readyRelayPods(cp: ControlPlane, namespace: string, pool: string): Promise<Pod[]> {
  const list = await getJson<{ items: Pod[] }>(cp, [
    '-n',
    namespace,
    'get',
    'pods',
    '-l',
    `mailfleet.dev/pool=${pool}`,
  ]);
  return list.items.filter((p) =>
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
}

/** A path inside the pod -> the local directory of the volume mounted there (`mounts`: mountPath -> dir). */
export function localPathIn(mounts: Map<string, string>): (p: string) => string {
  return (p) => {
    for (const [mountPath, local] of mounts)
      if (p === mountPath || p.startsWith(`${mountPath}/`)) return local + p.slice(mountPath.length);
    return p;
  };
}

/** The relay container's command line with local paths, and where its `--config` is. */
export function relayCommand(
  pod: Pod,
  localPath: (p: string) => string,
): { args: string[]; configAt: number; configFile: string } {
  const container = pod.spec.containers[0];
  const args = [...(container?.command ?? []), ...(container?.args ?? [])].map(localPath);
  const configAt = args.indexOf('--config');
  const configFile = args[configAt + 1];
  if (configAt < 0 || !configFile)
    throw new Error(`pod ${pod.metadata.name}: no --config in ${args.join(' ')}`);
  return { args, configAt, configFile };
}

/** Where the image keeps the program (its WORKDIR, Dockerfile). */
const IMAGE_APP = '/app/';

/**
 * The container's command line as this machine runs it: the image's entrypoint (`node
 * /app/bin/mailfleet.ts`) or the container's own `command` (the operator's puts node's flags in
 * between), with `node` this Node and `/app/` the directory that holds the image's program files.
 */
export function containerArgv(container: Container, appRoot: string): string[] {
  const command = container.command ?? ['node', `${IMAGE_APP}bin/mailfleet.ts`];
  return command.map((part, i) =>
    i === 0 && part === 'node'
      ? process.execPath
      : part.startsWith(IMAGE_APP)
        ? path.join(appRoot, part.slice(IMAGE_APP.length))
        : part,
  );
}

/**
 * An operator container's args with its `--http` listener moved to the pod's address (it binds
 * 0.0.0.0 in a pod; here pods share the host). Undefined for any other container.
 */
export function operatorArgs(
  container: Container,
  ip: string,
): { args: string[]; httpPort: number } | undefined {
  const args = container.args ?? [];
  if (args[0] !== 'operator') return undefined;
  // The operator's default listener is 0.0.0.0:8081.
  const given = args.map((arg) => /^--http=.*:(\d+)$/.exec(arg)?.[1]).find(Boolean);
  const httpPort = Number(given ?? 8081);
  const moved = args.filter((arg) => !arg.startsWith('--http='));
  return { args: [...moved, `--http=${ip}:${httpPort}`], httpPort };
}

/**
 * A tracker container's args (`mailfleet tracker`) as they run here: in-pod paths mapped to the
 * local volumes, its listeners bound to the pod's address (0.0.0.0 in a pod), the handoff Service
 * name resolved through `dns` (the cluster DNS); its tracking and metrics ports as rendered.
 * Undefined for any other container.
 */
export function trackerArgs(
  container: Container,
  ip: string,
  localPath: (p: string) => string,
  dns: string,
): { args: string[]; ports: { tracking: number; http: number } } | undefined {
  const args = (container.args ?? []).map(localPath);
  if (args[0] !== 'tracker') return undefined;
  const flag = (name: string, fallback: number) => {
    const at = args.indexOf(name);
    return at < 0 ? fallback : Number(args[at + 1]);
  };
  const ports = { tracking: flag('--port', 8081), http: flag('--metrics-port', 8080) };
  const resolver = args.includes('--handoff-service') ? ['--handoff-dns-servers', dns] : [];
  return { args: [...args, '--host', ip, ...resolver], ports };
}

/** This process's environment plus the container's env (values, and fieldRef name/namespace). */
export function podEnv(pod: Pod): Record<string, string> {
  const env: Record<string, string> = { ...process.env } as Record<string, string>;
  const fields: Record<string, string> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
  };
  for (const e of pod.spec.containers[0]?.env ?? []) {
    const value = e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''];
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

export async function runPodLocally(
  cp: ControlPlane,
  pod: Pod,
  o: LocalRelayOptions = {},
): Promise<LocalRelay> {
  const namespace = pod.metadata.namespace;
  const container = pod.spec.containers[0];
  if (!container) throw new Error(`pod ${pod.metadata.name} has no container`);
  const root = await tempDir(`pod-${pod.metadata.name}`);
  // mountPath -> local directory; every volume becomes files or an empty directory under root.
  const mounts = new Map<string, string>();
  // Volumes with files (ConfigMap, Secret, projected), laid out as the kubelet does: the files in
  // a generation directory, `..data` pointing at it, each top-level entry a symlink through `..data`.
  const projected: { local: string; volume: Volume; files: Map<string, Buffer>; generation: number }[] = [];
  const project = async (entry: (typeof projected)[number]) => {
    const generationDir = `..${entry.generation}`;
    for (const [file, content] of entry.files) {
      const target = path.join(entry.local, generationDir, file);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content, { mode: 0o600 });
    }
    await symlink(generationDir, path.join(entry.local, '..data_tmp'));
    await rename(path.join(entry.local, '..data_tmp'), path.join(entry.local, '..data'));
    for (const top of new Set([...entry.files.keys()].map((f) => f.split('/')[0] ?? f)))
      await symlink(path.join('..data', top), path.join(entry.local, top)).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        },
      );
  };
  for (const mount of container.volumeMounts ?? []) {
    const local = path.join(root, mount.mountPath);
    await mkdir(local, { recursive: true });
    mounts.set(mount.mountPath, local);
    const volume = pod.spec.volumes?.find((v) => v.name === mount.name);
    // A PVC from a StatefulSet's volumeClaimTemplates, or an emptyDir: an empty directory.
    if (!volume || !(volume.projected || volume.configMap || volume.secret)) continue;
    const entry = { local, volume, files: await volumeFiles(cp, namespace, volume), generation: 1 };
    projected.push(entry);
    await project(entry);
  }
  const refresh = async () => {
    let changed = 0;
    for (const entry of projected) {
      const files = await volumeFiles(cp, namespace, entry.volume);
      const same =
        files.size === entry.files.size &&
        [...files].every(([file, content]) => entry.files.get(file)?.equals(content));
      if (same) continue;
      entry.files = files;
      entry.generation += 1;
      await project(entry);
      changed += 1;
    }
    return changed;
  };
  const localPath = localPathIn(mounts);
  const { args, configAt, configFile } = relayCommand(pod, localPath);

  // The rendered config, made runnable here: loopback listeners on free ports, local spool.
  const config = parse(await readFile(configFile, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the relay's YAML
  const ports: Record<string, number> = {};
  for (const [name, listener] of Object.entries(config.listeners ?? {}) as [
    string,
    Record<string, unknown>,
  ][]) {
    if (!listener.enabled) continue;
    ports[name] = await freePort();
    listener.port = ports[name];
    listener.host = '127.0.0.1';
  }
  ports.http = await freePort();
  config.http = { ...config.http, host: '127.0.0.1', port: ports.http };
  if (config.spool?.dir) config.spool.dir = localPath(config.spool.dir);
  if (config.handoff) {
    // The internal port on loopback too; the cluster's Service name does not resolve here, so
    // peers are whatever `configure` lists (none by default).
    ports.handoff = await freePort();
    config.handoff = { ...config.handoff, host: '127.0.0.1', port: ports.handoff };
    delete config.handoff.service;
  }
  if (config.returnPath) {
    // Its fixed port (2527 on every pod) would clash between the "pods" sharing this host.
    ports.returnPath = await freePort();
    config.returnPath = {
      ...config.returnPath,
      listener: { ...config.returnPath.listener, host: '127.0.0.1', port: ports.returnPath },
    };
  }
  o.configure?.(config);
  // A file next to the original, so relative key and users paths still resolve.
  const localConfig = path.join(path.dirname(configFile), 'relay.local.yaml');
  await writeFile(localConfig, stringify(config));
  args[configAt + 1] = localConfig;

  const env = podEnv(pod);
  const proc = spawn(ENTRYPOINT[0] ?? 'node', [...ENTRYPOINT.slice(1), ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let started = false;
  for (const stream of [proc.stdout, proc.stderr])
    stream?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        logs.push(line);
        if (line.includes('"relay started"')) started = true;
      }
    });
  await waitFor(() => started || proc.exitCode !== null, 15_000, `relay of ${pod.metadata.name} to start`);
  if (!started) throw new Error(`relay of ${pod.metadata.name} exited: ${logs.join('\n')}`);
  return {
    pod: `${namespace}/${pod.metadata.name}`,
    dir: root,
    configFile: localConfig,
    ports,
    proc,
    logs,
    metricsUrl: `http://127.0.0.1:${ports.http}/metrics`,
    refresh,
    stop: () => stopProcess(proc, 'SIGTERM'),
  };
}
