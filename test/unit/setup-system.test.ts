// The set-up's decision (scripts/system/requirements.ts): what is missing, install or stop with
// one line and the exact command. test/integration/setup-system.test.ts runs the real script.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REQUIREMENTS, goRequirement, plan, satisfied } from '../../scripts/system/requirements.ts';
import type { Machine, Observation, Requirement } from '../../scripts/system/requirements.ts';

const SWAKS_WITHOUT_TLS = [
  '=== AUTH CRAM-MD5 supported',
  '=== Basic AUTH supported',
  '*** TLS not available: requires Net::SSLeay',
].join('\n');
const SWAKS_WITH_TLS = ['=== AUTH CRAM-MD5 supported', '=== Basic AUTH supported', '=== TLS supported'].join(
  '\n',
);

/** What every probe sees on a machine where everything is installed, with some overrides. */
function observed(
  requirements: readonly Requirement[],
  overrides: Record<string, Observation> = {},
): Observation[] {
  return requirements.map((r): Observation => {
    if (overrides[r.what]) return overrides[r.what]!;
    if (r.probe.kind === 'file') return { kind: 'file', executable: true };
    if (r.probe.kind === 'privilege') return { kind: 'privilege', privilege: 'root' };
    if (r.probe.command === 'swaks') return { kind: 'command', ran: true, output: SWAKS_WITH_TLS };
    if (r.probe.command === 'go')
      return { kind: 'command', ran: true, output: 'go version go1.26.8 linux/amd64' };
    return { kind: 'command', ran: true, output: 'ok' };
  });
}

const root: Machine = { apt: true, privilege: 'root' };
const user: Machine = { apt: true, privilege: 'none' };
const sudoer: Machine = { apt: true, privilege: 'sudo' };
const swaksNoTls: Observation = { kind: 'command', ran: true, output: SWAKS_WITHOUT_TLS };
const absent: Observation = { kind: 'file', executable: false };
const notFound: Observation = { kind: 'command', ran: false, output: '' };

describe('plan', () => {
  const withGo = [...REQUIREMENTS, goRequirement()];
  const cases: {
    name: string;
    requirements?: readonly Requirement[];
    overrides?: Record<string, Observation>;
    machine: Machine;
    checkOnly?: boolean;
    action: 'ok' | 'install' | 'fail';
    packages?: string[];
    line?: string;
  }[] = [
    { name: 'everything present: nothing to do', machine: user, action: 'ok' },
    {
      name: 'swaks without TLS (a --no-install-recommends install), as root: installs libnet-ssleay-perl',
      overrides: { 'swaks TLS': swaksNoTls },
      machine: root,
      action: 'install',
      packages: ['libnet-ssleay-perl'],
    },
    {
      name: 'the same with passwordless sudo: installs',
      overrides: { 'swaks TLS': swaksNoTls },
      machine: sudoer,
      action: 'install',
      packages: ['libnet-ssleay-perl'],
    },
    {
      name: 'the same for a user without sudo: one line with the sudo apt-get command',
      overrides: { 'swaks TLS': swaksNoTls },
      machine: user,
      action: 'fail',
      line:
        'setup: missing swaks TLS; install the Debian packages libnet-ssleay-perl: sudo apt-get update && ' +
        'sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnet-ssleay-perl',
    },
    {
      name: '--check as root reports instead of installing',
      overrides: { 'swaks TLS': swaksNoTls },
      machine: root,
      checkOnly: true,
      action: 'fail',
      line:
        'setup: missing swaks TLS; install the Debian packages libnet-ssleay-perl: apt-get update && ' +
        'env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnet-ssleay-perl',
    },
    {
      name: 'a fresh machine: Postfix is preselected unconfigured, each package named once',
      overrides: {
        'smtp-sink': absent,
        'smtp-source': absent,
        postfix: absent,
        swaks: notFound,
        'swaks TLS': notFound,
        'swaks AUTH PLAIN/LOGIN': notFound,
        dnsmasq: absent,
        prometheus: absent,
        promtool: notFound,
      },
      machine: user,
      action: 'fail',
      line:
        'setup: missing smtp-sink, smtp-source, postfix, swaks, swaks TLS, swaks AUTH PLAIN/LOGIN, dnsmasq, ' +
        'prometheus, promtool; install the Debian packages dnsmasq-base libnet-ssleay-perl perl postfix ' +
        "prometheus swaks: echo 'postfix postfix/main_mailer_type select No configuration' | sudo " +
        'debconf-set-selections && sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get ' +
        'install -y --no-install-recommends dnsmasq-base libnet-ssleay-perl perl postfix prometheus swaks',
    },
    {
      name: 'Go too old: no package can fix it, so even root stops with the instructions',
      requirements: withGo,
      overrides: { 'go >= 1.26': { kind: 'command', ran: true, output: 'go version go1.19.8 linux/amd64' } },
      machine: root,
      action: 'fail',
      line:
        'setup: missing go >= 1.26; install Go >= 1.26 from https://go.dev/dl/ (Debian 12 ships 1.19); it ' +
        'builds the control plane and the image tools into .cache/ once (docs/testing.md)',
    },
    {
      name: 'a user without sudo: the image test cannot run, said up front with what to do',
      overrides: { 'root or passwordless sudo': { kind: 'privilege', privilege: 'none' } },
      machine: user,
      action: 'fail',
      line:
        'setup: missing root or passwordless sudo; run as root or with passwordless sudo: ' +
        'test/integration/image.test.ts runs the image in a mount namespace (docs/testing.md)',
    },
    {
      name: 'not Debian: names the packages, no apt-get command',
      overrides: { dnsmasq: absent },
      machine: { apt: false, privilege: 'root' },
      action: 'fail',
      line: "setup: missing dnsmasq; install the Debian packages dnsmasq-base (or your system's equivalent)",
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const requirements = c.requirements ?? REQUIREMENTS;
      const result = plan(requirements, observed(requirements, c.overrides), c.machine, c.checkOnly ?? false);
      assert.equal(result.action, c.action);
      if (c.packages) assert.deepEqual(result.action === 'install' && result.packages, c.packages);
      if (c.line) assert.equal(result.action === 'fail' && result.line, c.line);
    });
});

describe('satisfied', () => {
  const go = goRequirement().probe;
  const swaksTls = REQUIREMENTS.find((r) => r.what === 'swaks TLS')!.probe;
  const cases: [string, Requirement['probe'], Observation, boolean][] = [
    ['go 1.26.8', go, { kind: 'command', ran: true, output: 'go version go1.26.8 linux/amd64' }, true],
    ['go 1.30', go, { kind: 'command', ran: true, output: 'go version go1.30 linux/amd64' }, true],
    ['go 1.25.9', go, { kind: 'command', ran: true, output: 'go version go1.25.9 linux/amd64' }, false],
    ['go 1.3 (not 1.30)', go, { kind: 'command', ran: true, output: 'go version go1.3 linux/amd64' }, false],
    ['go not found', go, notFound, false],
    ['swaks with TLS', swaksTls, { kind: 'command', ran: true, output: SWAKS_WITH_TLS }, true],
    ['swaks without TLS', swaksTls, swaksNoTls, false],
    ['an executable file', { kind: 'file', path: '/usr/sbin/x' }, { kind: 'file', executable: true }, true],
    ['a missing file', { kind: 'file', path: '/usr/sbin/x' }, absent, false],
  ];
  for (const [name, probe, seen, expected] of cases)
    it(name, () => assert.equal(satisfied(probe, seen), expected));
});
