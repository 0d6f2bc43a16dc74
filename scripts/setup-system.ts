// The system set-up `npm test` runs first (and .ci/run before it): checks every system tool the
// suites use (scripts/system/requirements.ts). As root or with passwordless sudo on Debian it
// installs the missing packages itself; otherwise it prints one line naming what is missing and
// the exact apt-get command, and exits 1. No suite then has a reason to skip for a missing tool.
// Usage: node scripts/setup-system.ts [unit|reliability|integration|all] [--check]
//   --check   never install, only report (exit 1 when something is missing)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BINARY_NAMES, cacheBinDir } from '../dev/controlplane/cluster.ts';
import { IMAGE_TOOLS, imageToolsDir } from './build-image.ts';
import { REQUIREMENTS, goRequirement, installCommand, plan } from './system/requirements.ts';
import type { Machine, Mode, Observation, Probe, Requirement } from './system/requirements.ts';

const MODES: readonly Mode[] = ['unit', 'reliability', 'integration', 'all'];

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The manifest linters test/integration/linters.test.ts runs, built by test/linters/build.sh. */
const LINTERS_BUILD = fileURLToPath(new URL('../test/linters/build.sh', import.meta.url));
const LINTER_NAMES = ['kubeconform', 'kube-score'];

/** The Go-built tools the suites need are all cached (the image tools of `npm run image`, which
 * the image test runs, and the control plane unless the environment points elsewhere). */
function goBuiltToolsAvailable(env: NodeJS.ProcessEnv): boolean {
  const imageTools = imageToolsDir();
  if (!IMAGE_TOOLS.every((name) => isExecutable(path.join(imageTools, name)))) return false;
  // bash by its path: this runs with the caller's PATH, which may lack it (the set-up's own tests
  // run it with an empty PATH); a failed spawn means "not known to be built".
  const found = spawnSync('/bin/bash', [LINTERS_BUILD, '--bin-dir'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/bin:/bin` },
  });
  const linters = (found.stdout ?? '').trim();
  if (!linters || !LINTER_NAMES.every((name) => isExecutable(path.join(linters, name)))) return false;
  if (env.MAILFLEET_TEST_KUBECONFIG || env.KUBEBUILDER_ASSETS) return true;
  const bin = cacheBinDir();
  return BINARY_NAMES.every((name) => isExecutable(path.join(bin, name)));
}

export function requirementsFor(mode: Mode, env: NodeJS.ProcessEnv = process.env): Requirement[] {
  const wanted = REQUIREMENTS.filter((r) => r.modes.includes(mode));
  const go = goRequirement();
  if (go.modes.includes(mode) && !goBuiltToolsAvailable(env)) wanted.push(go);
  return wanted;
}

/** Runs each probe once (several requirements read the same `swaks --support`). */
function observe(probes: Probe[], host: Machine): Observation[] {
  const runs = new Map<string, Observation>();
  return probes.map((probe) => {
    if (probe.kind === 'file') return { kind: 'file', executable: isExecutable(probe.path) };
    if (probe.kind === 'privilege') return { kind: 'privilege', privilege: host.privilege };
    const key = [probe.command, ...probe.args].join('\0');
    let seen = runs.get(key);
    if (!seen) {
      const r = spawnSync(probe.command, probe.args, { encoding: 'utf8', timeout: 30_000 });
      seen = { kind: 'command', ran: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
      runs.set(key, seen);
    }
    return seen;
  });
}

function machine(): Machine {
  const apt = isExecutable('/usr/bin/apt-get');
  if (process.getuid?.() === 0) return { apt, privilege: 'root' };
  const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return { apt, privilege: sudo.status === 0 ? 'sudo' : 'none' };
}

// Runs as root. policy-rc.d (exit 101) keeps package scripts from starting the daemons
// (postfix, opendkim, prometheus): the tests start their own private instances.
const INSTALL_SCRIPT = `set -eu
created=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created=1
fi
trap '[ -z "$created" ] || rm -f /usr/sbin/policy-rc.d' EXIT
if printf '%s\\n' "$@" | grep -qx postfix; then
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
`;

function install(packages: string[], privilege: Machine['privilege']): boolean {
  const argv = ['sh', '-c', INSTALL_SCRIPT, 'setup-system', ...packages];
  const [cmd, ...args] = privilege === 'root' ? argv : ['sudo', '-n', ...argv];
  return spawnSync(cmd!, args, { stdio: 'inherit' }).status === 0;
}

export function setupSystem(mode: Mode, checkOnly: boolean): number {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const requirements = requirementsFor(mode);
  const host = machine();
  const first = plan(
    requirements,
    observe(
      requirements.map((r) => r.probe),
      host,
    ),
    host,
    checkOnly,
  );
  if (first.action === 'ok') {
    say(
      `setup: ${requirements.length} system requirements met (${requirements.map((r) => r.what).join(', ')})`,
    );
    return 0;
  }
  if (first.action === 'fail') {
    process.stderr.write(`${first.line}\n`);
    return 1;
  }
  const started = Date.now();
  say(`setup: installing ${first.packages.join(' ')} for ${first.missing.map((r) => r.what).join(', ')}`);
  say(`setup: ${installCommand(first.packages, host.privilege)}`);
  if (!install(first.packages, host.privilege)) {
    process.stderr.write(`setup: apt-get failed installing ${first.packages.join(' ')}\n`);
    return 1;
  }
  const after = plan(
    requirements,
    observe(
      requirements.map((r) => r.probe),
      host,
    ),
    host,
    true,
  );
  if (after.action !== 'ok') {
    process.stderr.write(`${after.action === 'fail' ? after.line : 'setup: still missing tools'}\n`);
    return 1;
  }
  say(`setup: installed in ${((Date.now() - started) / 1000).toFixed(1)} s; all system requirements met`);
  return 0;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const mode = (args.find((a) => !a.startsWith('--')) ?? 'all') as Mode;
  if (!MODES.includes(mode)) {
    process.stderr.write(`usage: setup-system.ts [${MODES.join('|')}] [--check]\n`);
    process.exit(2);
  }
  process.exit(setupSystem(mode, args.includes('--check')));
}
