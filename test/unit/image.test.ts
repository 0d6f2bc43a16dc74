// The Dockerfile and scripts/build-image.ts build the same image: the same files, production
// dependencies installed the same way, the same user, entrypoint and environment. And the pure
// parts of the builder (ldd parsing, Debian path spellings, reproducible tar flags).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  APP_DIR,
  APP_SOURCES,
  CMD,
  ENTRYPOINT,
  ENV,
  NPM_CI_ARGS,
  SOURCE_URL,
  USER,
  ociLabels,
  parseLdd,
  pathVariants,
  tarArgs,
} from '../../scripts/image/definition.ts';
import { isTestFile } from '../../scripts/program-files.ts';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';

interface DockerImage {
  /** Sources of the final stage's COPY lines from the build context (not --from a stage). */
  contextCopies: string[];
  /** Sources copied from another stage, with that stage's RUN lines. */
  stageCopies: { from: string; source: string; runs: string[] }[];
  user?: string;
  workdir?: string;
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  /** Every stage's base image, as written after FROM. */
  bases: string[];
  /** The final stage's LABEL lines, quotes removed. */
  labels: Record<string, string>;
}

/** Reads the final stage of a Dockerfile (one instruction per line, as ours is written). */
function parseDockerfile(text: string): DockerImage {
  const stages: { base: string; name?: string; lines: string[] }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ base: from[1]!, name: from[2], lines: [] });
    else stages.at(-1)!.lines.push(line);
  }
  const final = stages.at(-1)!;
  const image: DockerImage = {
    contextCopies: [],
    stageCopies: [],
    env: [],
    bases: stages.map((s) => s.base),
    labels: {},
  };
  for (const line of final.lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (instruction!.toUpperCase()) {
      case 'COPY': {
        const from = /^--from=(\S+)\s+/.exec(args);
        const parts = args.replace(/^--from=\S+\s+/, '').split(/\s+/);
        const sources = parts.slice(0, -1);
        if (from) {
          const stage = stages.find((s) => s.name === from[1]);
          for (const source of sources)
            image.stageCopies.push({
              from: from[1]!,
              source,
              runs: (stage?.lines ?? []).filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4)),
            });
        } else image.contextCopies.push(...sources);
        break;
      }
      case 'USER':
        image.user = args;
        break;
      case 'WORKDIR':
        image.workdir = args;
        break;
      case 'ENTRYPOINT':
        image.entrypoint = JSON.parse(args) as string[];
        break;
      case 'CMD':
        image.cmd = JSON.parse(args) as string[];
        break;
      case 'ENV':
        image.env.push(args);
        break;
      case 'LABEL': {
        const label = /^(\S+?)="(.*)"$/.exec(args);
        if (label) image.labels[label[1]!] = label[2]!;
        break;
      }
    }
  }
  return image;
}

const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');

describe('the Dockerfile and npm run image build the same image', () => {
  const image = parseDockerfile(dockerfile);

  it('the same files from the repository', () => {
    assert.deepEqual([...image.contextCopies].sort(), [...APP_SOURCES].sort());
  });

  it('node_modules from a stage that runs the same npm ci --omit=dev', () => {
    assert.deepEqual(
      image.stageCopies.map((c) => c.source),
      [`${APP_DIR}/node_modules`],
    );
    assert.ok(
      image.stageCopies[0]!.runs.includes(`npm ${NPM_CI_ARGS.join(' ')}`),
      image.stageCopies[0]!.runs.join('\n'),
    );
  });

  it('the same user, working directory, entrypoint, command and NODE_ENV', () => {
    assert.equal(image.user, USER);
    assert.equal(image.workdir, APP_DIR);
    assert.deepEqual(image.entrypoint, ENTRYPOINT);
    assert.deepEqual(image.cmd, CMD);
    // PATH is the node base image's own; the builder sets it because it has no base image.
    assert.deepEqual(
      image.env,
      ENV.filter((e) => !e.startsWith('PATH=')),
    );
  });

  it('test files stay out of both: .dockerignore excludes what isTestFile() excludes', () => {
    const ignore = fs.readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    assert.ok(ignore.includes('**/*.test.ts'));
    assert.ok(isTestFile('relay/src/spool/store.test.ts') && !isTestFile('relay/src/spool/store.ts'));
  });

  it('every stage starts from the same base, pinned by digest', () => {
    assert.equal(image.bases.length, 2);
    for (const base of image.bases) assert.match(base, /^node:24-bookworm-slim@sha256:[0-9a-f]{64}$/);
    assert.equal(new Set(image.bases).size, 1);
    const unpinned = parseDockerfile(dockerfile.replace(/@sha256:[0-9a-f]{64}/, ''));
    assert.ok(
      unpinned.bases.some((b) => !/@sha256:/.test(b)),
      'the check sees an unpinned base',
    );
  });

  it('the same OCI labels: source, licenses and title fixed, version and revision from build arguments', () => {
    const fixed = ociLabels({ version: '${VERSION}', revision: '${REVISION}' });
    assert.deepEqual(image.labels, fixed);
    assert.equal(fixed['org.opencontainers.image.source'], SOURCE_URL);
    assert.ok(/^ARG VERSION=/m.test(dockerfile) && /^ARG REVISION=/m.test(dockerfile));
    const chart = fs.readFileSync(path.join(REPO_ROOT, 'charts/mailfleet/Chart.yaml'), 'utf8');
    assert.ok(chart.includes(`- ${SOURCE_URL}`), "the chart's sources name the same repository");
  });

  it('the comparison notices a difference: an extra COPY, another user', () => {
    const changed = parseDockerfile(
      dockerfile
        .replace('COPY bin ./bin', 'COPY bin ./bin\nCOPY test ./test')
        .replace('USER 1000:1000', 'USER 0'),
    );
    assert.notDeepEqual([...changed.contextCopies].sort(), [...APP_SOURCES].sort());
    assert.notEqual(changed.user, USER);
  });
});

describe('parseLdd', () => {
  const output = [
    '\tlinux-vdso.so.1 (0x00007ffd1d5f5000)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007fa4d77df000)',
    '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fa4d7400000)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007fa4d77f7000)',
  ].join('\n');
  it('lists each library with its path, the loader included and the vDSO left out', () => {
    assert.deepEqual(parseLdd(output), [
      { name: 'libdl.so.2', hostPath: '/lib/x86_64-linux-gnu/libdl.so.2' },
      { name: 'libstdc++.so.6', hostPath: '/lib/x86_64-linux-gnu/libstdc++.so.6' },
      { name: 'ld-linux-x86-64.so.2', hostPath: '/lib64/ld-linux-x86-64.so.2' },
    ]);
  });
});

describe('pathVariants', () => {
  const cases: [string, string[]][] = [
    [
      '/lib/x86_64-linux-gnu/libc.so.6',
      ['/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
    ],
    [
      '/usr/lib/x86_64-linux-gnu/libstdc++.so.6',
      ['/usr/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libstdc++.so.6'],
    ],
  ];
  for (const [file, expected] of cases) it(file, () => assert.deepEqual(pathVariants(file), expected));
});

describe('tarArgs', () => {
  it('sorted names, one fixed time, root-owned, no atime/ctime, no group or other write', () => {
    const args = tarArgs('/stage', '/out.tar', 1700000000);
    for (const expected of [
      '--sort=name',
      '--mtime=@1700000000',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mode=u+w,go-w,a+rX',
    ])
      assert.ok(args.includes(expected), expected);
    assert.ok(args.some((a) => a.includes('delete=atime,delete=ctime')));
  });
});
