// The import guard as an ESLint rule (`mailfleet/program-imports`, eslint.config.js), so `npm run
// lint` and editors report it on the import line: in bin/, contract/, operator/src and relay/src (not tests),
// a package outside `dependencies`, a relative import outside those directories (test/ above all),
// or an import that closes a cycle. Same checks as test/unit/imports.test.ts (scripts/lint/imports.ts);
// unlike import/no-cycle it counts `import type` edges too.
import fs from 'node:fs';
import path from 'node:path';
import type { Rule } from 'eslint';
import { isTestFile } from '../program-files.ts';
import {
  crossProgramImports,
  importCycles,
  importsOutsidePrograms,
  parseImports,
  resolveRelative,
  undeclaredPackages,
} from './imports.ts';
import type { ProgramFile } from './imports.ts';
import { PROGRAM_DIRS } from '../program-files.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Parsed imports by file, reused while the file's mtime and size stay the same (one lint run
 * visits every program file, and each needs the whole graph). */
const parsed = new Map<string, { mtimeMs: number; size: number; file: ProgramFile }>();

function programFiles(): ProgramFile[] {
  const files: ProgramFile[] = [];
  for (const dir of PROGRAM_DIRS)
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      const relative = path.posix.join(dir, entry.split(path.sep).join('/'));
      if (!relative.endsWith('.ts') || isTestFile(relative)) continue;
      const stat = fs.statSync(path.join(ROOT, relative));
      const hit = parsed.get(relative);
      if (hit && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) {
        files.push(hit.file);
        continue;
      }
      const file = {
        path: relative,
        imports: parseImports(relative, fs.readFileSync(path.join(ROOT, relative), 'utf8')),
      };
      parsed.set(relative, { mtimeMs: stat.mtimeMs, size: stat.size, file });
      files.push(file);
    }
  return files;
}

function dependencies(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return pkg.dependencies ?? {};
}

const programImports: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Program code imports only production dependencies, never test code, and forms no cycle',
    },
    schema: [],
  },
  create(context) {
    const relative = path.relative(ROOT, context.filename).split(path.sep).join('/');
    const isProgram = PROGRAM_DIRS.some((dir) => relative.startsWith(`${dir}/`)) && !isTestFile(relative);
    if (!isProgram || !relative.endsWith('.ts')) return {};
    return {
      Program() {
        // This file as the editor has it now, the others as they are on disk.
        const self: ProgramFile = {
          path: relative,
          imports: parseImports(relative, context.sourceCode.text),
        };
        const others = programFiles().filter((f) => f.path !== relative);
        const problems = [...undeclaredPackages([self], dependencies()), ...importsOutsidePrograms([self])];
        const cycle = importCycles([self, ...others]).find((members) => members.includes(relative));
        if (cycle)
          for (const ref of self.imports) {
            const target = ref.specifier.startsWith('.')
              ? resolveRelative(relative, ref.specifier)
              : undefined;
            if (target && cycle.includes(target))
              problems.push({
                file: relative,
                line: ref.line,
                message: `imports '${ref.specifier}', closing an import cycle among ${cycle.join(', ')}`,
              });
          }
        for (const problem of problems)
          context.report({
            loc: { start: { line: problem.line, column: 0 }, end: { line: problem.line, column: 0 } },
            message: problem.message,
          });
      },
    };
  },
};

/** operator/ and relay/ (tests included) import each other only through contract/, which imports
 * neither (scripts/lint/imports.ts crossProgramImports). */
const programBoundaries: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: { description: 'The operator and the relay share code only through contract/' },
    schema: [],
  },
  create(context) {
    const relative = path.relative(ROOT, context.filename).split(path.sep).join('/');
    if (!relative.endsWith('.ts')) return {};
    return {
      Program() {
        const self: ProgramFile = {
          path: relative,
          imports: parseImports(relative, context.sourceCode.text),
        };
        for (const problem of crossProgramImports([self]))
          context.report({
            loc: { start: { line: problem.line, column: 0 }, end: { line: problem.line, column: 0 } },
            message: problem.message,
          });
      },
    };
  },
};

export const mailfleetPlugin = {
  rules: { 'program-imports': programImports, 'program-boundaries': programBoundaries },
};
