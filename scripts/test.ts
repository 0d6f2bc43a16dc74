// The project's test command: lint, typecheck, unit tests, then integration suites.
// Usage: node scripts/test.ts [unit|reliability|integration|all]   (npm test runs "all")
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const mode = process.argv[2] ?? 'all';

function run(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  const started = Date.now();
  process.stdout.write(`\n=== ${label}: ${cmd} ${args.join(' ')}\n`);
  const result = spawnSync(cmd, args, { stdio: 'inherit', env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    process.stdout.write(`=== ${label} FAILED after ${seconds}s (exit ${result.status ?? result.signal})\n`);
    process.exit(1);
  }
  process.stdout.write(`=== ${label} passed in ${seconds}s\n`);
}

const unitFiles = globSync([
  'contract/**/*.test.ts',
  'operator/src/**/*.test.ts',
  'relay/src/**/*.test.ts',
  'bench/**/*.test.ts',
  'test/unit/**/*.test.ts',
]).sort();
// Reliability suites (short mode here; MAILFLEET_LONG=1 for the long mode, see docs/reliability.md).
const reliabilityFiles = globSync(['test/reliability/**/*.test.ts']).sort();
const integrationFiles = globSync(['test/integration/**/*.test.ts']).sort();

// The system tools the suites use (Postfix, swaks with TLS, dnsmasq, Prometheus, OpenDKIM,
// openssl, Go): installed here as root or with passwordless sudo on Debian, otherwise one line says
// what is missing and the apt-get command (scripts/setup-system.ts). No suite skips for a tool.
if (['unit', 'reliability', 'integration', 'all'].includes(mode))
  run('system tools', process.execPath, ['scripts/setup-system.ts', mode]);

if (mode === 'unit' || mode === 'all') {
  run('lint', 'npx', ['eslint', '.']);
  run('format', 'npx', ['prettier', '--check', '.']);
  run('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json']);
  // Fails on any high or critical advisory (npm audit, or an offline table when the registry's
  // audit endpoint is unreachable; see scripts/audit.ts).
  run('dependency audit', process.execPath, ['scripts/audit.ts']);
  run('unit tests', process.execPath, ['--test', '--test-reporter=spec', ...unitFiles]);
}
if ((mode === 'reliability' || mode === 'all') && reliabilityFiles.length > 0) {
  run('reliability (short mode)', process.execPath, [
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=1',
    ...reliabilityFiles,
  ]);
}
if ((mode === 'integration' || mode === 'all') && integrationFiles.length > 0) {
  // The integration suites run against a real etcd + kube-apiserver + controller-manager + kwok
  // built from the Go module proxy (cached after the first build; see docs/testing.md), unless
  // MAILFLEET_TEST_KUBECONFIG or KUBEBUILDER_ASSETS point at another cluster or binaries.
  if (!process.env.MAILFLEET_TEST_KUBECONFIG)
    run('control plane binaries', 'bash', ['dev/controlplane/build.sh']);
  // kubeconform and kube-score for test/integration/linters.test.ts, cached the same way.
  run('manifest linters', 'bash', ['test/linters/build.sh']);
  run('integration tests', process.execPath, [
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=1',
    ...integrationFiles,
  ]);
}
