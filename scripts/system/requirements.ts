// The system tools the test suites run, the Debian packages that provide them, and the pure
// decision of what to do about the missing ones (scripts/setup-system.ts gathers and acts).
// Every probe checks what a suite really uses: the absolute paths the helpers spawn, the
// commands they find on PATH, and for swaks the features it reports (`swaks --support`), since a
// `--no-install-recommends` install has swaks without TLS.

/** Which `scripts/test.ts` modes need a tool (`unit` runs promtool on the chart's alerts). */
export type Mode = 'unit' | 'reliability' | 'integration' | 'all';

export type Probe =
  /** A file the suites spawn by absolute path. */
  | { kind: 'file'; path: string }
  /** Root, or sudo without a password (the image test's mount namespace). */
  | { kind: 'privilege' }
  /** A command the suites spawn by name (PATH); its output must match `expect` if given, and
   * the number `minorOf` captures must be at least `minMinor` if given. */
  | {
      kind: 'command';
      command: string;
      args: string[];
      expect?: RegExp;
      minorOf?: RegExp;
      minMinor?: number;
    };

export interface Requirement {
  /** What the suites use, as a person would name it. */
  what: string;
  probe: Probe;
  /** Debian packages that provide it; empty when apt cannot (see `manual`). */
  packages: string[];
  /** How to get it when no Debian package provides it. */
  manual?: string;
  modes: readonly Mode[];
}

const ALL_BUT_UNIT: readonly Mode[] = ['reliability', 'integration', 'all'];
const EVERY_MODE: readonly Mode[] = ['unit', 'reliability', 'integration', 'all'];

/** Go builds the control plane (dev/controlplane/build.sh): 1.26 or later. */
export const GO_MIN_MINOR = 26;
export const GO_MANUAL =
  'install Go >= 1.26 from https://go.dev/dl/ (Debian 12 ships 1.19); it builds the control plane and the image tools into .cache/ once (docs/testing.md)';

export const REQUIREMENTS: readonly Requirement[] = [
  {
    // The pool's shared state store (relay/src/shared-state/): the tests start their own
    // redis-server on a random loopback port.
    what: 'redis-server',
    probe: { kind: 'file', path: '/usr/bin/redis-server' },
    packages: ['redis-server'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'smtp-sink',
    probe: { kind: 'file', path: '/usr/sbin/smtp-sink' },
    packages: ['postfix'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'smtp-source',
    probe: { kind: 'file', path: '/usr/sbin/smtp-source' },
    packages: ['postfix'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'postfix',
    probe: { kind: 'file', path: '/usr/sbin/postfix' },
    packages: ['postfix'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'swaks',
    probe: { kind: 'command', command: 'swaks', args: ['--support'] },
    packages: ['swaks'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'swaks TLS',
    probe: { kind: 'command', command: 'swaks', args: ['--support'], expect: /^=== TLS supported/m },
    packages: ['libnet-ssleay-perl'],
    modes: ALL_BUT_UNIT,
  },
  {
    // AUTH PLAIN and LOGIN (relay-security): swaks's "Basic AUTH" needs only Perl's MIME::Base64.
    what: 'swaks AUTH PLAIN/LOGIN',
    probe: { kind: 'command', command: 'swaks', args: ['--support'], expect: /^=== Basic AUTH supported/m },
    packages: ['perl'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'dnsmasq',
    probe: { kind: 'file', path: '/usr/sbin/dnsmasq' },
    packages: ['dnsmasq-base'],
    modes: ALL_BUT_UNIT,
  },
  {
    // DANE (relay-dane): the authoritative server of the test zones, which signs one itself.
    what: 'knotd',
    probe: { kind: 'file', path: '/usr/sbin/knotd' },
    packages: ['knot'],
    modes: ALL_BUT_UNIT,
  },
  {
    // DANE (relay-dane): the DNSSEC-validating resolver the relay asks for TLSA records.
    what: 'unbound',
    probe: { kind: 'file', path: '/usr/sbin/unbound' },
    packages: ['unbound'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'prometheus',
    probe: { kind: 'file', path: '/usr/bin/prometheus' },
    packages: ['prometheus'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'promtool',
    probe: { kind: 'command', command: 'promtool', args: ['--version'] },
    packages: ['prometheus'],
    modes: EVERY_MODE,
  },
  {
    what: 'opendkim',
    probe: { kind: 'file', path: '/usr/sbin/opendkim' },
    packages: ['opendkim'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'openssl',
    probe: { kind: 'command', command: 'openssl', args: ['version'] },
    packages: ['openssl'],
    modes: ALL_BUT_UNIT,
  },
  {
    what: 'root or passwordless sudo',
    probe: { kind: 'privilege' },
    packages: [],
    manual:
      'run as root or with passwordless sudo: test/integration/image.test.ts runs the image in a mount namespace (docs/testing.md)',
    modes: ['integration', 'all'],
  },
];

/** The Go requirement: only when a Go-built tool (control plane, image tools) is not cached
 * (scripts/setup-system.ts decides). */
export function goRequirement(): Requirement {
  return {
    what: `go >= 1.${GO_MIN_MINOR}`,
    probe: {
      kind: 'command',
      command: 'go',
      args: ['version'],
      minorOf: /\bgo1\.(\d+)/,
      minMinor: GO_MIN_MINOR,
    },
    packages: [],
    manual: GO_MANUAL,
    modes: ALL_BUT_UNIT,
  };
}

/** What a probe saw: the file exists and is executable / the command ran (exit 0) and printed. */
export type Observation =
  | { kind: 'file'; executable: boolean }
  | { kind: 'command'; ran: boolean; output: string }
  | { kind: 'privilege'; privilege: Machine['privilege'] };

export function satisfied(probe: Probe, seen: Observation): boolean {
  if (probe.kind === 'file') return seen.kind === 'file' && seen.executable;
  if (probe.kind === 'privilege') return seen.kind === 'privilege' && seen.privilege !== 'none';
  if (seen.kind !== 'command' || !seen.ran) return false;
  if (probe.expect && !probe.expect.test(seen.output)) return false;
  if (probe.minorOf) {
    const minor = probe.minorOf.exec(seen.output)?.[1];
    return minor !== undefined && Number(minor) >= (probe.minMinor ?? 0);
  }
  return true;
}

/** What the machine offers to fix missing packages. */
export interface Machine {
  /** apt-get exists (Debian or a derivative). */
  apt: boolean;
  /** 'root': uid 0; 'sudo': passwordless sudo works; 'none': neither. */
  privilege: 'root' | 'sudo' | 'none';
}

export type Plan =
  | { action: 'ok' }
  | { action: 'install'; packages: string[]; missing: Requirement[] }
  | { action: 'fail'; missing: Requirement[]; packages: string[]; line: string };

/** Decides from the probes' observations: nothing to do, install these packages, or stop with
 * one line saying what is missing and the exact command to run. `checkOnly` never installs. */
export function plan(
  requirements: readonly Requirement[],
  observed: readonly Observation[],
  machine: Machine,
  checkOnly: boolean,
): Plan {
  const missing = requirements.filter((r, i) => !satisfied(r.probe, observed[i]!));
  if (missing.length === 0) return { action: 'ok' };
  const packages = [...new Set(missing.flatMap((r) => r.packages))].sort();
  const manual = missing.filter((r) => r.packages.length === 0);
  if (manual.length === 0 && machine.apt && machine.privilege !== 'none' && !checkOnly)
    return { action: 'install', packages, missing };
  return { action: 'fail', missing, packages, line: failureLine(missing, packages, machine) };
}

/** The exact commands that install `packages` the way the set-up does (no recommends, Postfix
 * unconfigured so it starts nothing). */
export function installCommand(packages: string[], privilege: Machine['privilege']): string {
  const sudo = privilege === 'root' ? '' : 'sudo ';
  const debconf = packages.includes('postfix')
    ? `echo 'postfix postfix/main_mailer_type select No configuration' | ${sudo}debconf-set-selections && `
    : '';
  return (
    `${debconf}${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive ` +
    `apt-get install -y --no-install-recommends ${packages.join(' ')}`
  );
}

function failureLine(missing: Requirement[], packages: string[], machine: Machine): string {
  const tools = missing.map((r) => r.what).join(', ');
  const parts = [`setup: missing ${tools}`];
  if (packages.length > 0)
    parts.push(
      machine.apt
        ? `install the Debian packages ${packages.join(' ')}: ${installCommand(packages, machine.privilege)}`
        : `install the Debian packages ${packages.join(' ')} (or your system's equivalent)`,
    );
  for (const r of missing) if (r.manual) parts.push(r.manual);
  return parts.join('; ');
}
