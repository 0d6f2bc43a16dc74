// The real set-up script (scripts/setup-system.ts --check) on this machine's real tools: it
// passes here, and detects what CI lacked: swaks without Net::SSLeay, tools not on PATH.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts/setup-system.ts');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-setup-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function check(mode: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [SCRIPT, mode, '--check'], { encoding: 'utf8', env, cwd: REPO_ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scripts/setup-system.ts --check', () => {
  it('passes on this machine (the set-up ran before the suites)', () => {
    const r = check('all', process.env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /system requirements met \(.*swaks TLS.*promtool.*\)/);
  });

  it('detects swaks without TLS: the real swaks with Net::SSLeay made unloadable', () => {
    // A Net/SSLeay.pm earlier on @INC that dies: swaks reports TLS unavailable, as on a machine
    // where libnet-ssleay-perl was never installed.
    const lib = path.join(work, 'perl5');
    fs.mkdirSync(path.join(lib, 'Net'), { recursive: true });
    fs.writeFileSync(path.join(lib, 'Net/SSLeay.pm'), 'die "hidden by the setup test\\n";\n');
    const env = { ...process.env, PERL5LIB: lib };
    const support = spawnSync('swaks', ['--support'], { encoding: 'utf8', env });
    assert.match(`${support.stdout}${support.stderr}`, /TLS not available: requires Net::SSLeay/);
    const r = check('all', env);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^setup: missing swaks TLS; install the Debian packages libnet-ssleay-perl: /);
    assert.match(lines[0]!, /apt-get install -y --no-install-recommends libnet-ssleay-perl$/);
  });

  it('detects tools missing from PATH (swaks, promtool, openssl)', () => {
    // Go is needed only to build the control plane; point at "other binaries" so this case is
    // about the Debian tools alone.
    const env = { PATH: path.join(work, 'empty'), KUBEBUILDER_ASSETS: work, HOME: work };
    const r = check('all', env);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^setup: missing swaks, swaks TLS, swaks AUTH PLAIN\/LOGIN, promtool, openssl; install the Debian packages libnet-ssleay-perl openssl perl prometheus swaks: .*apt-get install -y --no-install-recommends libnet-ssleay-perl openssl perl prometheus swaks\n$/,
    );
  });

  it('unit mode needs promtool only', () => {
    const r = check('unit', { PATH: path.join(work, 'empty'), HOME: work });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^setup: missing promtool; install the Debian packages prometheus: /);
  });
});
