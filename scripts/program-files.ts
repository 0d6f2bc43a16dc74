// What the shipped programs are made of: the files the container image (Dockerfile and
// scripts/image.ts) copies next to the production node_modules. The import guard
// (test/unit/imports.test.ts) checks that code in these directories imports nothing else.

/** The directories of program code, relative to the repository root. */
export const PROGRAM_DIRS = ['bin', 'contract', 'operator/src', 'relay/src'] as const;

/** Single files the image needs besides PROGRAM_DIRS and node_modules. */
export const PROGRAM_FILES = ['package.json'] as const;

/** Files inside PROGRAM_DIRS that are not part of the programs (tests run from the repository). */
export function isTestFile(relativePath: string): boolean {
  return relativePath.endsWith('.test.ts');
}
