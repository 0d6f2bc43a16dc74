// Runs the built container image without a container runtime: the archive's layers unpacked in
// order into a root file system, which a private mount namespace makes read-only (with the
// writable and read-only volumes a pod would mount), then `unshare --root --wd --setuid --setgid`
// runs the image's entrypoint as its user, in its working directory, with only its environment.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The image config fields a runtime uses (docker-archive config JSON, `config` object). */
export interface ImageConfig {
  Entrypoint: string[];
  Cmd?: string[];
  Env: string[];
  User: string;
  WorkingDir: string;
  Labels?: Record<string, string>;
}

export interface UnpackedImage {
  root: string;
  config: ImageConfig;
  /** Paths of the layer files in the archive, in order. */
  layers: string[];
}

/** Unpacks a docker-archive: manifest.json names the config and the layers, applied in order. */
export function unpackImage(archive: string, dir: string): UnpackedImage {
  const extracted = path.join(dir, 'archive');
  const root = path.join(dir, 'rootfs');
  fs.mkdirSync(extracted, { recursive: true });
  fs.mkdirSync(root, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', extracted]);
  const [manifest] = JSON.parse(fs.readFileSync(path.join(extracted, 'manifest.json'), 'utf8')) as {
    Config: string;
    Layers: string[];
  }[];
  if (!manifest) throw new Error(`${archive}: empty manifest.json`);
  for (const layer of manifest.Layers)
    execFileSync('tar', ['-xzf', path.join(extracted, layer), '-C', root, '--same-owner', '--numeric-owner']);
  // The root directory's own mode comes from the layers' "./" entries.
  const config = (
    JSON.parse(fs.readFileSync(path.join(extracted, manifest.Config), 'utf8')) as { config: ImageConfig }
  ).config;
  return { root, config, layers: manifest.Layers.map((l) => path.join(extracted, l)) };
}

export interface Mount {
  /** Host directory. */
  host: string;
  /** Where it appears inside the image (the mount point is created in the unpacked tree, as a
   * container runtime creates it in the container's layer). */
  inside: string;
  writable: boolean;
}

function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Starts `argv` (default: the image's Entrypoint + Cmd) inside the image, read-only, as the
 * image's user. Needs root (or passwordless sudo) for the mount namespace. The returned process
 * is node itself: the shell that mounts execs unshare, which execs node. */
export function runInImage(
  image: UnpackedImage,
  options: { args?: string[]; argv?: string[]; mounts?: Mount[] },
): ChildProcess {
  const { root, config } = image;
  const [uid, gid] = config.User.split(':');
  const argv = options.argv ?? [...config.Entrypoint, ...(options.args ?? config.Cmd ?? [])];
  const lines = [`/usr/bin/mount --bind ${quote(root)} ${quote(root)}`];
  const readOnly = [root];
  for (const m of options.mounts ?? []) {
    fs.mkdirSync(path.join(root, m.inside), { recursive: true });
    const target = path.join(root, m.inside);
    lines.push(`/usr/bin/mount --bind ${quote(m.host)} ${quote(target)}`);
    if (!m.writable) readOnly.push(target);
  }
  for (const target of readOnly) lines.push(`/usr/bin/mount -o remount,bind,ro ${quote(target)}`);
  lines.push(
    `exec /usr/bin/unshare --root=${quote(root)} --wd=${quote(config.WorkingDir)} --setgid=${gid} --setuid=${uid} -- ${argv.map(quote).join(' ')}`,
  );
  const env = Object.fromEntries(
    config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const command = ['/usr/bin/unshare', '--mount', '/bin/sh', '-c', lines.join(' && ')];
  const [cmd, ...args] = process.getuid?.() === 0 ? command : ['sudo', '-n', '--preserve-env', ...command];
  return spawn(cmd!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}
