// Unused exports of the program code (bin/, contract/, operator/src, relay/src): a value a program
// file exports that no file of the repository imports (tests, scripts and benchmarks count as
// users). An export nobody imports is dead code or a name that should be private to its file.
// Read with the TypeScript parser; `export *` and dynamic import() count as using every export of
// their target, and names re-exported under an `export { a } from` count as used in the target
// only when the re-export itself is imported.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { PROGRAM_DIRS, isTestFile } from '../program-files.ts';
import { resolveRelative } from './imports.ts';

/** What one file exports and which names it takes from which files. */
export type ModuleFacts = {
  path: string;
  /** Values this file declares and exports (`export const a`, `export function`, `export class`,
   * `export { a }`, `export default`). Types are left out: a type in an exported signature is
   * exported for its callers even when none names it. */
  exports: { name: string; line: number }[];
  /** Named uses of other files: target path -> names ('*' for all of them). */
  uses: Map<string, Set<string>>;
  /** `export { a as b } from './x'`: this file's b is x's a. */
  reexports: { name: string; from: string; as: string; line: number }[];
  /** `export * from './x'`: this file passes on everything of x. */
  starReexports: string[];
};

export function moduleFacts(fileName: string, source: string): ModuleFacts {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const facts: ModuleFacts = {
    path: fileName,
    exports: [],
    uses: new Map(),
    reexports: [],
    starReexports: [],
  };
  const line = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const use = (specifier: string, name: string) => {
    if (!specifier.startsWith('.')) return;
    const target = resolveRelative(fileName, specifier);
    const names = facts.uses.get(target) ?? new Set<string>();
    names.add(name);
    facts.uses.set(target, names);
  };
  const exported = (node: ts.Node) =>
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  const isDefault = (node: ts.Node) =>
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text;
      const clause = node.importClause;
      if (!clause) use(specifier, '*');
      else {
        if (clause.name) use(specifier, 'default');
        const bindings = clause.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) use(specifier, '*');
        if (bindings && ts.isNamedImports(bindings))
          for (const element of bindings.elements)
            use(specifier, (element.propertyName ?? element.name).text);
      }
    } else if (ts.isExportDeclaration(node)) {
      const specifier =
        node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)
          ? node.moduleSpecifier.text
          : undefined;
      if (node.exportClause && ts.isNamedExports(node.exportClause)) {
        for (const element of node.exportClause.elements) {
          if (node.isTypeOnly || element.isTypeOnly) continue;
          const as = element.name.text;
          const name = (element.propertyName ?? element.name).text;
          if (specifier?.startsWith('.'))
            facts.reexports.push({
              name,
              from: resolveRelative(fileName, specifier),
              as,
              line: line(element),
            });
          else if (!specifier) facts.exports.push({ name: as, line: line(element) });
        }
      } else if (specifier?.startsWith('.')) facts.starReexports.push(resolveRelative(fileName, specifier));
    } else if (ts.isExportAssignment(node)) {
      facts.exports.push({ name: 'default', line: line(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) use(argument.text, '*');
    } else if (exported(node)) {
      if (isDefault(node)) facts.exports.push({ name: 'default', line: line(node) });
      else if (ts.isVariableStatement(node))
        for (const declaration of node.declarationList.declarations) {
          if (ts.isIdentifier(declaration.name))
            facts.exports.push({ name: declaration.name.text, line: line(declaration) });
        }
      else if (
        (ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isEnumDeclaration(node)) &&
        node.name
      )
        facts.exports.push({ name: node.name.text, line: line(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return facts;
}

export type UnusedExport = { file: string; line: number; name: string };

/**
 * Exports of `programFiles` that no module in `all` uses. A use of a name through a re-export (or
 * through `export *`) is a use of the original.
 */
export function unusedExports(all: ModuleFacts[], programFiles: (file: string) => boolean): UnusedExport[] {
  const byPath = new Map(all.map((m) => [m.path, m]));
  const used = new Map<string, Set<string>>();
  const mark = (target: string, name: string, seen = new Set<string>()): void => {
    const key = `${target}\0${name}`;
    if (seen.has(key)) return;
    seen.add(key);
    const names = used.get(target) ?? new Set<string>();
    names.add(name);
    used.set(target, names);
    const module = byPath.get(target);
    if (!module) return;
    for (const r of module.reexports)
      if (name === '*' || r.as === name) mark(r.from, name === '*' ? '*' : r.name, seen);
    for (const from of module.starReexports) mark(from, name, seen);
  };
  for (const module of all)
    for (const [target, names] of module.uses) for (const name of names) mark(target, name);
  const unused: UnusedExport[] = [];
  for (const module of all) {
    if (!programFiles(module.path)) continue;
    const names = used.get(module.path) ?? new Set<string>();
    if (names.has('*')) continue;
    for (const e of [...module.exports, ...module.reexports.map((r) => ({ name: r.as, line: r.line }))])
      if (!names.has(e.name)) unused.push({ file: module.path, line: e.line, name: e.name });
  }
  return unused.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

/** Every .ts file of the repository that can import program code (tests, scripts, bench too). */
export function readRepository(root: string): ModuleFacts[] {
  const dirs = ['bin', 'contract', 'operator', 'relay', 'test', 'scripts', 'bench'];
  const facts: ModuleFacts[] = [];
  for (const dir of dirs) {
    if (!fs.existsSync(path.join(root, dir))) continue;
    for (const entry of fs.readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })) {
      const relative = path.posix.join(dir, entry.split(path.sep).join('/'));
      if (!relative.endsWith('.ts') || relative.includes('node_modules/')) continue;
      facts.push(moduleFacts(relative, fs.readFileSync(path.join(root, relative), 'utf8')));
    }
  }
  return facts;
}

/** Whether a repository path is program code (what the unused-export check looks at). */
export function isProgramFile(relative: string): boolean {
  // Declaration files (.d.ts) describe packages' exports; they are not ours to prune.
  return (
    PROGRAM_DIRS.some((dir) => relative.startsWith(`${dir}/`)) &&
    !isTestFile(relative) &&
    !relative.endsWith('.d.ts')
  );
}
