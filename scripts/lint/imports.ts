// The import graph of the program code (bin/, contract/, operator/src, relay/src), read with the
// TypeScript parser, and the pure checks the import guard runs on it: every package a program loads
// at run time is in package.json `dependencies` (the image installs only those), relative imports
// stay inside the image's file set (never test/), there are no import cycles (STYLE.md), and the
// operator and the relay import each other's code only through contract/.
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { PROGRAM_DIRS, isTestFile } from '../program-files.ts';

export type ImportRef = {
  /** The specifier as written: './x.ts', 'node:fs', '@kubernetes/client-node/dist/config.js'. */
  specifier: string;
  /** `import type` / `export type`: erased by type stripping, never loaded at run time. */
  typeOnly: boolean;
  line: number;
};

/** Every static import, re-export and literal dynamic import() in one TypeScript source. */
export function parseImports(fileName: string, source: string): ImportRef[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const refs: ImportRef[] = [];
  const add = (node: ts.Node, specifier: ts.Expression | undefined, typeOnly: boolean) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
    refs.push({ specifier: specifier.text, typeOnly, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      // `import { type A } from 'x'` keeps an `import {} from 'x'` under verbatimModuleSyntax,
      // so only a whole-clause `import type` counts as erased.
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ?? false);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return refs;
}

/** The npm package a bare specifier loads ('@scope/name/sub' -> '@scope/name'), or undefined
 * for relative paths and Node builtins. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  if (specifier.startsWith('node:') || isBuiltin(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** One program file: its path relative to the repository root and what it imports. */
export type ProgramFile = { path: string; imports: ImportRef[] };

export type Problem = { file: string; line: number; message: string };

/** Packages loaded at run time that the production install (`npm ci --omit=dev`) lacks. */
export function undeclaredPackages(files: ProgramFile[], dependencies: Record<string, string>): Problem[] {
  const problems: Problem[] = [];
  for (const file of files)
    for (const ref of file.imports) {
      const pkg = packageOf(ref.specifier);
      if (pkg === undefined || ref.typeOnly || Object.hasOwn(dependencies, pkg)) continue;
      problems.push({
        file: file.path,
        line: ref.line,
        message: `imports '${ref.specifier}' but '${pkg}' is not in package.json dependencies`,
      });
    }
  return problems;
}

/** Resolves a relative specifier of `from` to a repository-relative path (posix separators). */
export function resolveRelative(from: string, specifier: string): string {
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
}

function inProgramDirs(relativePath: string, dirs: readonly string[]): boolean {
  return dirs.some((dir) => relativePath.startsWith(`${dir}/`));
}

/** Relative imports that leave the program's file set: test/ (helpers, fixtures) or anything else
 * the image does not contain, and test files themselves. Type-only imports count too: the file
 * would still be missing from a type check of the shipped tree. */
export function importsOutsidePrograms(
  files: ProgramFile[],
  dirs: readonly string[] = PROGRAM_DIRS,
): Problem[] {
  const problems: Problem[] = [];
  for (const file of files)
    for (const ref of file.imports) {
      if (packageOf(ref.specifier) !== undefined || !ref.specifier.startsWith('.')) continue;
      const target = resolveRelative(file.path, ref.specifier);
      const why = target.startsWith('test/')
        ? 'program code imports test code'
        : !inProgramDirs(target, dirs)
          ? `outside the image's program directories (${dirs.join(', ')})`
          : isTestFile(target)
            ? 'program code imports a test file'
            : undefined;
      if (why)
        problems.push({ file: file.path, line: ref.line, message: `imports '${ref.specifier}': ${why}` });
    }
  return problems;
}

/** The parts of the repository whose imports are fenced: each program, the contract both programs
 * import (contract/), and what npm runs besides the tests: dev/ (the control plane, local pods and
 * peers of `npm start`, which the tests import too) and scripts/. */
const BOUNDARIES: { dir: string; mayNotImport: readonly string[]; because: string }[] = [
  { dir: 'operator/', mayNotImport: ['relay/'], because: 'share it through contract/' },
  { dir: 'relay/', mayNotImport: ['operator/'], because: 'share it through contract/' },
  { dir: 'contract/', mayNotImport: ['operator/', 'relay/'], because: 'share it through contract/' },
  { dir: 'dev/', mayNotImport: ['test/'], because: '`npm start` runs dev/; move what it needs into dev/' },
  {
    dir: 'scripts/',
    mayNotImport: ['test/'],
    because: 'what npm runs needs no test code; share it through dev/',
  },
];

/** Imports across the programs' boundary: the operator and the relay share only contract/ (the
 * users-file hash drifted when the operator imported relay internals), and the contract depends on
 * neither. Test files count too (a test of one program that needs the other belongs in test/).
 * dev/ and scripts/ (`npm start`, the set-up, the image build) run without test/: `npm start` once
 * ran on test helpers. */
export function crossProgramImports(files: ProgramFile[]): Problem[] {
  const problems: Problem[] = [];
  for (const file of files) {
    const boundary = BOUNDARIES.find((b) => file.path.startsWith(b.dir));
    if (!boundary) continue;
    for (const ref of file.imports) {
      if (!ref.specifier.startsWith('.')) continue;
      const target = resolveRelative(file.path, ref.specifier);
      const other = boundary.mayNotImport.find((dir) => target.startsWith(dir));
      if (other)
        problems.push({
          file: file.path,
          line: ref.line,
          message: `imports '${ref.specifier}': ${boundary.dir} may not import ${other} (${boundary.because})`,
        });
    }
  }
  return problems;
}

/** Import cycles among the given files (type-only imports included: STYLE.md forbids cycles, and
 * a type cycle is the first step to a value cycle). Each cycle is listed once, as the files of
 * one strongly connected component, sorted. Tarjan's algorithm. */
export function importCycles(files: ProgramFile[]): string[][] {
  const edges = new Map<string, string[]>();
  const known = new Set(files.map((f) => f.path));
  for (const file of files)
    edges.set(
      file.path,
      file.imports
        .filter((ref) => ref.specifier.startsWith('.'))
        .map((ref) => resolveRelative(file.path, ref.specifier))
        .filter((target) => known.has(target)),
    );
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const strongConnect = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        strongConnect(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfLoop = component.length === 1 && (edges.get(node) ?? []).includes(node);
    if (component.length > 1 || selfLoop) cycles.push(component.sort());
  };
  for (const file of [...known].sort()) if (!index.has(file)) strongConnect(file);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Reads every .ts file under the given directories of `root`, test files only if asked. */
export function readProgramFiles(
  root: string,
  dirs: readonly string[] = PROGRAM_DIRS,
  options: { tests?: boolean } = {},
): ProgramFile[] {
  const files: ProgramFile[] = [];
  for (const dir of dirs) {
    for (const entry of fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
      const relative = path.posix.join(dir, entry.split(path.sep).join('/'));
      if (!relative.endsWith('.ts') || (isTestFile(relative) && !options.tests)) continue;
      files.push({
        path: relative,
        imports: parseImports(relative, fs.readFileSync(path.join(root, relative), 'utf8')),
      });
    }
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}
