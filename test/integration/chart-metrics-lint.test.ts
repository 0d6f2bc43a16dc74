// `promtool check metrics` on a real relay's /metrics (the relay of relay/examples/local.yaml, on
// free loopback ports with a private spool). mailfleet's own metrics must be lint-clean; the only
// findings allowed are prom-client's default Node.js gauges named *_total, listed here explicitly.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import { freePort } from '../../dev/net.ts';

const PROM_CLIENT_FINDINGS = [
  'mailfleet_relay_nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'mailfleet_relay_nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'mailfleet_relay_nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];

const dir = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-metrics-lint-'));
let relay: ChildProcess | undefined;
let httpPort = 0;

before(async () => {
  const examples = path.join(REPO_ROOT, 'relay/examples');
  for (const pem of ['test-cert.pem', 'test-key.pem', 'users.txt', 'admin-token'])
    copyFileSync(path.join(examples, pem), path.join(dir, pem));
  const ports = {
    smtp: await freePort(),
    submission: await freePort(),
    smtps: await freePort(),
    http: await freePort(),
  };
  httpPort = ports.http;
  const config = readFileSync(path.join(examples, 'local.yaml'), 'utf8')
    .replace(/port: 2525\b/, `port: ${ports.smtp}`)
    .replace(/port: 2587\b/, `port: ${ports.submission}`)
    .replace(/port: 2465\b/, `port: ${ports.smtps}`)
    .replace(/port: 8080\b/, `port: ${ports.http}`)
    .replace(/dir: .*/, `dir: ${path.join(dir, 'spool')}`);
  writeFileSync(path.join(dir, 'relay.yaml'), config);
  relay = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'bin/mailfleet.ts'), 'relay', '--config', path.join(dir, 'relay.yaml')],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/metrics`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the relay did not serve /metrics within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});

after(() => {
  relay?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('promtool check metrics: the relay exposition parses and its own metrics are lint-clean', async () => {
  const body = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  assert.match(body, /^mailfleet_relay_spool_free_bytes \d/m);
  const result = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  assert.ok(!result.error, `promtool: ${result.error?.message}`);
  // Exit 1 is a parse error; 3 means lint findings only.
  assert.notEqual(result.status, 1, result.stderr);
  const findings = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
  assert.deepEqual(findings.sort(), [...PROM_CLIENT_FINDINGS].sort());
});
