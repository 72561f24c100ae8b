import { readFileSync } from 'node:fs';

/**
 * This release's version: package.json's, the one place it is written (CHANGELOG.md says
 * what each changed). Read at run time, from src/ or dist/ alike (both sit one folder
 * below package.json): tsc keeps files outside src/ out of dist/.
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
