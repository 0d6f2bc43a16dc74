// No unused exports in the program code (issue 18): a value a program file exports is imported
// somewhere in the repository (tests, scripts and benchmarks count), or it is not exported.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../dev/controlplane/cluster.ts';
import { isProgramFile, moduleFacts, readRepository, unusedExports } from '../../scripts/lint/exports.ts';

/**
 * Exports declared ahead of the code that will import them, each with the work that will. The
 * test fails once such an export is imported (remove it from here) or no longer exported.
 */
const AHEAD_OF_USE: Record<string, string> = {};

describe('unused exports', () => {
  const all = readRepository(REPO_ROOT);

  it('reads the repository: both programs, the contract and the tests', () => {
    for (const path of [
      'relay/src/relay.ts',
      'operator/src/main.ts',
      'contract/users.ts',
      'test/unit/exports.test.ts',
    ])
      assert.ok(
        all.some((m) => m.path === path),
        path,
      );
  });

  it('every value exported by program code is imported somewhere', () => {
    const unused = unusedExports(all, isProgramFile).map((u) => `${u.file} ${u.name}`);
    assert.deepEqual(
      unused.filter((u) => !(u in AHEAD_OF_USE)),
      [],
    );
    assert.deepEqual(
      Object.keys(AHEAD_OF_USE).filter((k) => !unused.includes(k)),
      [],
      'exports listed as ahead of use that are now imported or gone: remove them from AHEAD_OF_USE',
    );
  });
});

describe('the check on a fixture', () => {
  const modules = [
    moduleFacts(
      'relay/src/a.ts',
      [
        'export const used = 1;',
        'export const unused = 2;',
        'export function viaStar() {}',
        'export type OnlyAType = number;',
        "export { kept as renamed } from './b.ts';",
        "export * from './c.ts';",
      ].join('\n'),
    ),
    moduleFacts('relay/src/b.ts', 'export const kept = 1;\nexport const dropped = 2;\n'),
    moduleFacts('relay/src/c.ts', 'export const fromStar = 1;\nexport const notAsked = 2;\n'),
    moduleFacts('relay/src/d.ts', "export async function load() { return import('./e.ts'); }\n"),
    moduleFacts('relay/src/e.ts', 'export const anything = 1;\n'),
    moduleFacts(
      'test/unit/x.test.ts',
      "import { used, renamed, fromStar } from '../../relay/src/a.ts';\nimport { load } from '../../relay/src/d.ts';\n",
    ),
  ];
  it('reports a value nobody imports, through re-exports and export *, and not types or dynamic imports', () => {
    assert.deepEqual(
      unusedExports(modules, isProgramFile).map((u) => `${u.file}:${u.line} ${u.name}`),
      [
        'relay/src/a.ts:2 unused',
        'relay/src/a.ts:3 viaStar',
        'relay/src/b.ts:2 dropped',
        'relay/src/c.ts:2 notAsked',
      ],
    );
  });
});
