import { readFileSync } from 'node:fs';

/**
 * This release's version: package.json's, the one place it is written (CHANGELOG.md says
 * what each changed). Read at run time, from src/ or dist/ alike (both sit one folder
 * below package.json): tsc keeps files outside src/ out of dist/.
 */
const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
  scripts: { start: string };
};

export const VERSION: string = PACKAGE.version;

/**
 * Node's flags in `npm start` (package.json's `start`: `node <flags> dist/server.js`), for
 * what runs the service as npm start does (the tests' processes, the benchmarks); the
 * Dockerfile's CMD repeats them (test/version.test.ts holds it to them).
 */
export const START_NODE_FLAGS: readonly string[] = PACKAGE.scripts.start
  .split(/\s+/)
  .filter((word) => word.startsWith('--'));
