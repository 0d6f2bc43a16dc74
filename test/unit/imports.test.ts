// The import guard: the programs load only packages from `dependencies` (the image installs
// nothing else), never import test code or files outside the image, and have no import cycles.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import {
  crossProgramImports,
  importCycles,
  importsOutsidePrograms,
  packageOf,
  parseImports,
  readProgramFiles,
  undeclaredPackages,
} from '../../scripts/lint/imports.ts';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('parseImports', () => {
  const cases: { name: string; source: string; expect: { specifier: string; typeOnly: boolean }[] }[] = [
    {
      name: 'a value import',
      source: "import { Ajv } from 'ajv';",
      expect: [{ specifier: 'ajv', typeOnly: false }],
    },
    {
      name: 'a whole-clause type import is erased',
      source: "import type { X } from 'ajv';",
      expect: [{ specifier: 'ajv', typeOnly: true }],
    },
    {
      name: 'inline type specifiers still load the module',
      source: "import { type X } from 'ajv';",
      expect: [{ specifier: 'ajv', typeOnly: false }],
    },
    {
      name: 'a side-effect import',
      source: "import 'yaml';",
      expect: [{ specifier: 'yaml', typeOnly: false }],
    },
    {
      name: 're-exports, value and type',
      source: "export { a } from './a.ts';\nexport type { B } from './b.ts';",
      expect: [
        { specifier: './a.ts', typeOnly: false },
        { specifier: './b.ts', typeOnly: true },
      ],
    },
    {
      name: 'a dynamic import inside a function',
      source: "async function f() { return import('../relay/src/main.ts'); }",
      expect: [{ specifier: '../relay/src/main.ts', typeOnly: false }],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      assert.deepEqual(
        parseImports('x.ts', c.source).map(({ specifier, typeOnly }) => ({ specifier, typeOnly })),
        c.expect,
      );
    });
});

describe('packageOf', () => {
  const cases: [string, string | undefined][] = [
    ['node:fs', undefined],
    ['fs', undefined],
    ['./x.ts', undefined],
    ['ajv', 'ajv'],
    ['yaml/util', 'yaml'],
    ['@kubernetes/client-node', '@kubernetes/client-node'],
    ['@kubernetes/client-node/dist/config.js', '@kubernetes/client-node'],
  ];
  for (const [specifier, expected] of cases)
    it(`${specifier} -> ${expected ?? '(not a package)'}`, () =>
      assert.equal(packageOf(specifier), expected));
});

describe('the program code (bin/, contract/, operator/src, relay/src)', () => {
  const files = readProgramFiles(REPO_ROOT);

  it('is read: the CLI, both mains and the validator are among the files scanned', () => {
    const paths = files.map((f) => f.path);
    for (const expected of [
      'bin/mailfleet.ts',
      'operator/src/main.ts',
      'relay/src/main.ts',
      'operator/src/api/validate.ts',
    ])
      assert.ok(paths.includes(expected), expected);
    assert.ok(!paths.some((p) => p.endsWith('.test.ts')), 'test files are not program code');
  });

  it('loads only packages listed in package.json dependencies', () => {
    assert.deepEqual(undeclaredPackages(files, pkg.dependencies), []);
  });

  it('imports nothing from test/ or from outside the image file set', () => {
    assert.deepEqual(importsOutsidePrograms(files), []);
  });

  it('has no import cycles (type-only imports included)', () => {
    assert.deepEqual(importCycles(files), []);
  });

  it('the operator and the relay, tests included, share code only through contract/', () => {
    const all = readProgramFiles(REPO_ROOT, ['contract', 'operator', 'relay'], { tests: true });
    assert.ok(
      all.some((f) => f.path === 'operator/src/desired/state.test.ts'),
      'test files are read',
    );
    assert.ok(
      all.some(
        (f) => f.path.startsWith('operator/') && f.imports.some((i) => i.specifier.includes('contract/')),
      ),
      'the operator imports the contract',
    );
    assert.deepEqual(crossProgramImports(all), []);
  });

  it('dev/ and scripts/ (the control plane, `npm start`, the set-up) import nothing from test/', () => {
    const tools = readProgramFiles(REPO_ROOT, ['dev', 'scripts'], { tests: true });
    assert.ok(
      tools.some((f) => f.path === 'dev/controlplane/cluster.ts') &&
        tools.some((f) => f.path === 'scripts/start.ts'),
      'the control plane and npm start are read',
    );
    assert.deepEqual(crossProgramImports(tools), []);
  });
});

describe('the guard catches each mistake on a fixture tree', () => {
  const fixture = (sources: Record<string, string>, dirs?: string[]) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfleet-imports-'));
    for (const [file, source] of Object.entries(sources)) {
      fs.mkdirSync(path.join(root, path.dirname(file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), source);
    }
    for (const dir of ['bin', 'contract', 'operator/src', 'relay/src', 'test'])
      fs.mkdirSync(path.join(root, dir), { recursive: true });
    try {
      return dirs ? readProgramFiles(root, dirs, { tests: true }) : readProgramFiles(root);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  };

  it('a devDependency imported at run time (fast-check in the operator)', () => {
    assert.ok(pkg.devDependencies['fast-check'], 'fast-check is a devDependency of this package');
    const files = fixture({
      'operator/src/uses-dev.ts': "import fc from 'fast-check';\nexport const x = fc;\n",
      'operator/src/uses-dev.test.ts': "import fc from 'fast-check';\n",
      'relay/src/ok.ts':
        "import type { Arbitrary } from 'fast-check';\nimport { parse } from 'yaml';\nexport type A = Arbitrary<1>;\nexport const p = parse;\n",
    });
    assert.deepEqual(undeclaredPackages(files, pkg.dependencies), [
      {
        file: 'operator/src/uses-dev.ts',
        line: 1,
        message: "imports 'fast-check' but 'fast-check' is not in package.json dependencies",
      },
    ]);
  });

  it('program code importing a test helper, a test file or a script', () => {
    const files = fixture({
      'relay/src/a.ts': [
        "import { startSink } from '../../test/helpers/relay/peers.ts';",
        "import './b.test.ts';",
        "import { x } from '../../scripts/x.ts';",
        "import { ok } from '../../operator/src/ok.ts';",
      ].join('\n'),
      'operator/src/ok.ts': 'export const ok = 1;\n',
    });
    assert.deepEqual(
      importsOutsidePrograms(files).map((p) => `${p.file}:${p.line} ${p.message}`),
      [
        "relay/src/a.ts:1 imports '../../test/helpers/relay/peers.ts': program code imports test code",
        "relay/src/a.ts:2 imports './b.test.ts': program code imports a test file",
        "relay/src/a.ts:3 imports '../../scripts/x.ts': outside the image's program directories (bin, contract, operator/src, relay/src)",
      ],
    );
  });

  it('one program importing the other, the contract importing either, or dev/ or scripts/ importing test/', () => {
    const files = fixture(
      {
        'operator/src/a.ts':
          "import type { X } from '../../relay/src/x.ts';\nimport { c } from '../../contract/c.ts';\n",
        'operator/src/a.test.ts': "import { validate } from '../../relay/src/validate.ts';\n",
        'relay/src/b.ts':
          "import { meta } from '../../operator/src/desired/meta.ts';\nimport { c } from '../../contract/c.ts';\n",
        'contract/c.ts': "import { r } from '../relay/src/r.ts';\nexport const c = r;\n",
        'test/unit/both.test.ts': "import '../../operator/src/a.ts';\nimport '../../relay/src/b.ts';\n",
        'dev/local.ts':
          "import { startSink } from '../test/helpers/relay/peers.ts';\nimport '../operator/src/a.ts';\n",
        'scripts/start.ts':
          "import '../dev/local.ts';\nimport { startCluster } from '../test/helpers/operator/harness.ts';\n",
      },
      ['contract', 'dev', 'operator', 'relay', 'scripts', 'test'],
    );
    assert.deepEqual(
      crossProgramImports(files).map((p) => `${p.file}:${p.line} ${p.message}`),
      [
        "contract/c.ts:1 imports '../relay/src/r.ts': contract/ may not import relay/ (share it through contract/)",
        "dev/local.ts:1 imports '../test/helpers/relay/peers.ts': dev/ may not import test/ (`npm start` runs dev/; move what it needs into dev/)",
        "operator/src/a.test.ts:1 imports '../../relay/src/validate.ts': operator/ may not import relay/ (share it through contract/)",
        "operator/src/a.ts:1 imports '../../relay/src/x.ts': operator/ may not import relay/ (share it through contract/)",
        "relay/src/b.ts:1 imports '../../operator/src/desired/meta.ts': relay/ may not import operator/ (share it through contract/)",
        "scripts/start.ts:2 imports '../test/helpers/operator/harness.ts': scripts/ may not import test/ (what npm runs needs no test code; share it through dev/)",
      ],
    );
  });

  it('a cycle through a type-only import, as relay.ts <-> drain.ts had', () => {
    const files = fixture({
      'relay/src/relay.ts':
        "import { drain } from './drain.ts';\nexport class Relay {}\nexport const d = drain;\n",
      'relay/src/drain.ts':
        "import type { Relay } from './relay.ts';\nexport function drain(r: Relay) { return r; }\n",
      'relay/src/x/a.ts': "import { b } from './b.ts';\nexport const a = b;\n",
      'relay/src/x/b.ts': "import { c } from './c.ts';\nexport const b = c;\n",
      'relay/src/x/c.ts': "import { a } from './a.ts';\nexport const c = a;\n",
      'relay/src/leaf.ts': "import { a } from './x/a.ts';\nexport const leaf = a;\n",
    });
    assert.deepEqual(importCycles(files), [
      ['relay/src/drain.ts', 'relay/src/relay.ts'],
      ['relay/src/x/a.ts', 'relay/src/x/b.ts', 'relay/src/x/c.ts'],
    ]);
  });
});

describe('the same guard as an ESLint rule (mailfleet/program-imports in eslint.config.js)', () => {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const lint = async (file: string, source: string) => {
    const [result] = await eslint.lintText(source, { filePath: path.join(REPO_ROOT, file) });
    return (result?.messages ?? [])
      .filter((m) => m.ruleId === 'mailfleet/program-imports')
      .map((m) => `${m.line}: ${m.message}`);
  };
  const drain = fs.readFileSync(path.join(REPO_ROOT, 'relay/src/drain.ts'), 'utf8');
  const cases: { name: string; file: string; source: string; expect: string[] }[] = [
    { name: 'relay/src/drain.ts as it is: clean', file: 'relay/src/drain.ts', source: drain, expect: [] },
    {
      name: 'drain.ts importing the Relay type again: the cycle is reported on that line',
      file: 'relay/src/drain.ts',
      source: `import type { Relay } from './relay.ts';\nexport type R = Relay;\n${drain}`,
      expect: [
        "1: imports './relay.ts', closing an import cycle among relay/src/drain.ts, relay/src/relay.ts",
      ],
    },
    {
      name: 'a devDependency in the operator',
      file: 'operator/src/uses-dev.ts',
      source: "import fc from 'fast-check';\nexport const x = fc;\n",
      expect: ["1: imports 'fast-check' but 'fast-check' is not in package.json dependencies"],
    },
    {
      name: 'a test helper in the relay',
      file: 'relay/src/uses-test.ts',
      source: "import { startSink } from '../../test/helpers/relay/peers.ts';\nexport const s = startSink;\n",
      expect: ["1: imports '../../test/helpers/relay/peers.ts': program code imports test code"],
    },
    {
      name: 'test files may import devDependencies',
      file: 'relay/src/uses-dev.test.ts',
      source: "import fc from 'fast-check';\nexport const x = fc;\n",
      expect: [],
    },
  ];
  for (const c of cases) it(c.name, async () => assert.deepEqual(await lint(c.file, c.source), c.expect));

  it('mailfleet/program-boundaries reports an operator test importing the relay, on its line', async () => {
    const source =
      "import assert from 'node:assert';\nimport { validateConfig } from '../../../relay/src/config/validate.ts';\nassert.ok(validateConfig);\n";
    const [result] = await eslint.lintText(source, {
      filePath: path.join(REPO_ROOT, 'operator/src/desired/x.test.ts'),
    });
    assert.deepEqual(
      (result?.messages ?? [])
        .filter((m) => m.ruleId === 'mailfleet/program-boundaries')
        .map((m) => `${m.line}: ${m.message}`),
      [
        "2: imports '../../../relay/src/config/validate.ts': operator/ may not import relay/ (share it through contract/)",
      ],
    );
  });
});
