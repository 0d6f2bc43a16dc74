// The container image as users get it: `npm run image` (scripts/build-image.ts) builds it twice
// to the same digest; its root file system, unpacked from the archive's layers, holds only what
// it should; and both programs run from it read-only as uid 1000 (test/helpers/image.ts): the relay
// with the example config relays to Postfix's smtp-sink, the operator reconciles the samples to
// Ready against the real control plane.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { imageToolsDir } from '../../scripts/build-image.ts';
import { ENTRYPOINT, SOURCE_URL, USER, parseLdd } from '../../scripts/image/definition.ts';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { runInImage, unpackImage, type UnpackedImage } from '../helpers/image.ts';
import { eventually, startCluster } from '../helpers/operator/harness.ts';
import {
  freePort,
  rawMessage,
  sendMessage,
  startSink,
  stopProcess,
  waitFor,
  type Sink,
} from '../helpers/relay/peers.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-image-test-'));
const builds: { digest: string; archive: string; seconds: number }[] = [];
let image: UnpackedImage;
const cleanups: (() => Promise<void> | void)[] = [];

function build(name: string) {
  const archive = path.join(work, name);
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build-image.ts'), '--out', archive], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  builds.push({ digest: r.stdout.trim(), archive, seconds: (Date.now() - started) / 1000 });
}

before(() => {
  build('first.tar');
  build('second.tar');
  image = unpackImage(builds[0]!.archive, path.join(work, 'unpacked'));
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Collects a process's output lines and resolves when a line matches. */
function watchOutput(proc: ChildProcess) {
  const lines: string[] = [];
  let partial = '';
  const feed = (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  proc.stdout!.on('data', feed);
  proc.stderr!.on('data', feed);
  return lines;
}

describe('npm run image', () => {
  test('builds the same digest and the same archive bytes twice, and writes the digest next to it', () => {
    const [first, second] = builds;
    assert.match(first!.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(second!.digest, first!.digest);
    assert.ok(fs.readFileSync(first!.archive).equals(fs.readFileSync(second!.archive)), 'archives differ');
    assert.equal(fs.readFileSync(`${first!.archive}.digest`, 'utf8'), `${first!.digest}\n`);
    const mib = fs.statSync(first!.archive).size / 1024 / 1024;
    process.stderr.write(
      `# image ${first!.digest}: ${mib.toFixed(1)} MiB, builds ${builds.map((b) => `${b.seconds.toFixed(1)} s`).join(', ')}\n`,
    );
  });

  test('pushed to a registry (crane registry serve on loopback) it keeps its digest', async () => {
    const crane = path.join(imageToolsDir(), 'crane');
    const port = await freePort();
    const registry = spawn(crane, ['registry', 'serve', '--address', `127.0.0.1:${port}`], {
      stdio: 'ignore',
    });
    try {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined))?.ok ?? false,
        10_000,
        'crane registry serve',
      );
      const ref = `127.0.0.1:${port}/mailfleet:test`;
      const pushed = spawnSync(crane, ['push', builds[0]!.archive, ref], { encoding: 'utf8' });
      assert.equal(pushed.status, 0, pushed.stderr);
      assert.equal(pushed.stdout.trim(), `127.0.0.1:${port}/mailfleet@${builds[0]!.digest}`);
      const digest = spawnSync(crane, ['digest', ref], { encoding: 'utf8' });
      assert.equal(digest.stdout.trim(), builds[0]!.digest);
    } finally {
      await stopProcess(registry, 'SIGTERM');
    }
  });

  test('the config: uid 1000, the entrypoint node /app/bin/mailfleet.ts, node on PATH', () => {
    assert.equal(image.config.User, USER);
    assert.deepEqual(image.config.Entrypoint, ENTRYPOINT);
    assert.equal(image.config.WorkingDir, '/app');
    assert.ok(image.config.Env.includes('NODE_ENV=production'));
    assert.ok(fs.existsSync(path.join(image.root, 'usr/local/bin/node')));
  });

  test('the OCI labels name the source, the version and the commit built', () => {
    const revision = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const labels = image.config.Labels ?? {};
    assert.equal(labels['org.opencontainers.image.source'], SOURCE_URL);
    assert.equal(labels['org.opencontainers.image.version'], version);
    assert.equal(labels['org.opencontainers.image.revision'], process.env.SOURCE_REVISION ?? revision);
    assert.match(labels['org.opencontainers.image.created'] ?? '', /^\d{4}-\d\d-\d\dT/);
  });

  test('the root file system: no shell, no tests, no devDependencies, every file owned by root', () => {
    const root = image.root;
    for (const shell of ['bin/sh', 'bin/bash', 'usr/bin/sh', 'bin/busybox'])
      assert.ok(!fs.existsSync(path.join(root, shell)), shell);
    const files = fs.readdirSync(root, { recursive: true, encoding: 'utf8' });
    assert.deepEqual(
      files.filter((f) => f.endsWith('.test.ts')),
      [],
    );
    for (const f of files) {
      const stat = fs.lstatSync(path.join(root, f));
      if (stat.uid !== 0 || stat.gid !== 0 || (!stat.isSymbolicLink() && (stat.mode & 0o022) !== 0))
        assert.fail(`${f}: ${stat.uid}:${stat.gid} ${stat.mode.toString(8)}`);
    }
    // Every package the lock marks dev-only is absent; every production package is present.
    const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const [where, entry] of Object.entries(lock.packages)) {
      if (!where.startsWith('node_modules/')) continue;
      assert.equal(fs.existsSync(path.join(root, 'app', where)), !entry.dev, where);
    }
    // The shared libraries are the ones node links against (ldd of the image's node, run on this
    // machine), plus the files their symlinks point to; nothing else.
    const node = path.join(root, 'usr/local/bin/node');
    const linked = parseLdd(execFileSync('ldd', [node], { encoding: 'utf8' })).map((l) => l.name);
    const libDirs = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64'].map((d) =>
      path.join(root, d),
    );
    const shipped = libDirs.flatMap((d) => fs.readdirSync(d).map((f) => path.join(d, f)));
    const targets = shipped
      .filter((f) => fs.lstatSync(f).isSymbolicLink())
      .map((f) => path.basename(fs.readlinkSync(f)));
    assert.deepEqual(
      [...new Set(shipped.map((f) => path.basename(f)))].sort(),
      [...new Set([...linked, ...targets])].sort(),
    );
    assert.equal(linked.length, 7, linked.join(' '));
  });
});

describe('the programs run from the image, read-only, as uid 1000', () => {
  let sink: Sink;
  before(async () => {
    sink = await startSink();
    cleanups.push(() => sink.stop());
  });

  test('mailfleet relay with the example config relays a message to smtp-sink', async () => {
    // The example config (relay/examples/local.yaml) as a read-only volume at /etc/mailfleet, on
    // free ports, delivering to the sink, with the spool on a writable volume.
    const config = path.join(work, 'relay-config');
    const spool = path.join(work, 'spool');
    fs.mkdirSync(config);
    fs.mkdirSync(spool);
    fs.chownSync(spool, 1000, 1000);
    const examples = path.join(REPO_ROOT, 'relay/examples');
    for (const file of ['test-cert.pem', 'test-key.pem', 'users.txt', 'admin-token'])
      fs.copyFileSync(path.join(examples, file), path.join(config, file));
    const ports = {
      smtp: await freePort(),
      submission: await freePort(),
      smtps: await freePort(),
      http: await freePort(),
    };
    fs.writeFileSync(
      path.join(config, 'relay.yaml'),
      fs
        .readFileSync(path.join(examples, 'local.yaml'), 'utf8')
        .replace(/port: 2525\b/, `port: ${ports.smtp}`)
        .replace(/port: 2587\b/, `port: ${ports.submission}`)
        .replace(/port: 2465\b/, `port: ${ports.smtps}`)
        .replace(/port: 8080\b/, `port: ${ports.http}`)
        .replace(/port: 2526\b/, `port: ${sink.port}`)
        .replace(/dir: .*/, 'dir: /var/spool/mailfleet'),
    );
    const started = Date.now();
    const relay = runInImage(image, {
      args: ['relay', '--config', '/etc/mailfleet/relay.yaml'],
      mounts: [
        { host: config, inside: '/etc/mailfleet', writable: false },
        { host: spool, inside: '/var/spool/mailfleet', writable: true },
      ],
    });
    cleanups.push(() => stopProcess(relay, 'SIGKILL'));
    const output = watchOutput(relay);
    await waitFor(
      () => output.some((l) => l.includes('"relay started"')) || relay.exitCode !== null,
      30_000,
      'the relay in the image to start',
    );
    assert.ok(
      output.some((l) => l.includes('"relay started"')),
      output.join('\n'),
    );
    process.stderr.write(`# relay from the image: started in ${Date.now() - started} ms\n`);

    // Port 25 style from an allowed network, and 587 with STARTTLS + AUTH (TLS from the image's node).
    const plain = await sendMessage(ports.smtp, {
      from: 'app@example.com',
      to: ['b@example.org'],
      raw: rawMessage('image-plain'),
    });
    assert.ok(plain.ok, JSON.stringify(plain));
    const authed = await sendMessage(
      ports.submission,
      { from: 'app@example.com', to: ['b@example.org'], raw: rawMessage('image-auth') },
      {
        ignoreTLS: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: 'local', pass: 'local-test-password' },
      },
    );
    assert.ok(authed.ok, JSON.stringify(authed));
    await waitFor(async () => (await sink.messages()).length >= 2, 30_000, 'both messages at the sink');
    const received = (await sink.messages()).join('\n');
    assert.match(received, /Message-ID: <image-plain@example\.com>/);
    assert.match(received, /Message-ID: <image-auth@example\.com>/);
    // The spool was written by uid 1000 on its volume; the root stayed read-only.
    const owners = new Set(fs.readdirSync(spool).map((f) => fs.statSync(path.join(spool, f)).uid));
    assert.deepEqual([...owners], [1000]);
    assert.ok(!output.some((l) => /EROFS|EACCES/.test(l)), output.join('\n'));

    await stopProcess(relay, 'SIGTERM');
    assert.equal(relay.exitCode, 0, output.join('\n'));
  });

  describe('mailfleet operator against the control plane', () => {
    let cp: ControlPlane;
    before(async () => {
      cp = await startCluster();
      cleanups.push(() => cp.stop());
    });

    test('reconciles the samples to Ready', async () => {
      const k = (args: string[]) => cp.kubectl(args);
      await k(['apply', '-f', path.join(REPO_ROOT, 'crds/samples/namespace.yaml')]);
      // The sample pool references a TLS Secret; kwok has no storage, so the pool's spool is an
      // emptyDir here (as in operator-pool.test.ts).
      await k([
        '-n',
        'mail',
        'create',
        'secret',
        'generic',
        'transactional-tls',
        '--from-literal=tls.crt=CERT',
        '--from-literal=tls.key=KEY',
      ]);
      const pool = parse(fs.readFileSync(path.join(REPO_ROOT, 'crds/samples/relaypool.yaml'), 'utf8')) as {
        spec: Record<string, unknown>;
      };
      delete pool.spec.queue;
      await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pool) });
      await k([
        'apply',
        '-f',
        path.join(REPO_ROOT, 'crds/samples/sendingdomains.yaml'),
        '-f',
        path.join(REPO_ROOT, 'crds/samples/ratelimits.yaml'),
      ]);

      // The ServiceAccount kubeconfig (token and CA inline) as a read-only volume.
      const kube = path.join(work, 'kube');
      fs.mkdirSync(kube);
      await cp.serviceAccountKubeconfig('mailfleet-system', 'mailfleet-operator', {
        path: path.join(kube, 'config'),
      });
      fs.chmodSync(path.join(kube, 'config'), 0o644);
      const port = await freePort();
      // The chart's command: node, the chart's node flags, the program (charts/mailfleet deployment).
      const values = parse(fs.readFileSync(path.join(REPO_ROOT, 'charts/mailfleet/values.yaml'), 'utf8')) as {
        operator: { nodeFlags?: string[] };
      };
      const started = Date.now();
      const operator = runInImage(image, {
        argv: [
          'node',
          ...(values.operator.nodeFlags ?? []),
          '/app/bin/mailfleet.ts',
          'operator',
          '--kubeconfig',
          '/var/run/mailfleet/kube/config',
          '--http',
          `127.0.0.1:${port}`,
          '--lease-namespace',
          'mailfleet-system',
          '--identity',
          'image',
          '--image',
          `ghcr.io/mailfleet/mailfleet@${builds[0]!.digest}`,
        ],
        mounts: [{ host: kube, inside: '/var/run/mailfleet/kube', writable: false }],
      });
      cleanups.push(() => stopProcess(operator, 'SIGKILL'));
      const output = watchOutput(operator);
      await eventually(
        'the operator in the image to serve /metrics',
        async () => {
          if (operator.exitCode !== null) throw new Error(`operator exited: ${output.join('\n')}`);
          return (await fetch(`http://127.0.0.1:${port}/metrics`)).ok;
        },
        60_000,
      );
      process.stderr.write(
        `# operator from the image: /metrics served ${Date.now() - started} ms after start\n`,
      );

      await k(['-n', 'mail', 'wait', '--for=condition=Ready', 'rp/transactional', '--timeout=120s']);
      await k([
        '-n',
        'mail',
        'wait',
        '--for=condition=Ready',
        'sd/example-com',
        'sd/news-example-com',
        '--timeout=60s',
      ]);
      const deployment = JSON.parse(
        (await k(['-n', 'mail', 'get', 'deployment/transactional', '-o', 'json'])).stdout,
      ) as {
        spec: { template: { spec: { containers: { image: string }[] } } };
      };
      assert.equal(
        deployment.spec.template.spec.containers[0]!.image,
        `ghcr.io/mailfleet/mailfleet@${builds[0]!.digest}`,
      );
      assert.ok(!output.some((l) => /EROFS|EACCES|ERR_MODULE_NOT_FOUND/.test(l)), output.join('\n'));
      await stopProcess(operator, 'SIGTERM');
      assert.ok(operator.exitCode === 0 || operator.signalCode === 'SIGTERM', output.join('\n'));
    });
  });
});
