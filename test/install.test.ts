import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

interface LockedPackage {
  hasInstallScript?: boolean;
}
const read = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
const pkg = read('package.json') as { scarfSettings?: { enabled?: boolean } };
const lock = read('package-lock.json') as { packages: Record<string, LockedPackage> };

describe('install time', () => {
  // What `npm ci` runs besides copying files: a new entry here is a new choice to review.
  it('runs only the install scripts we know of: esbuild fetches its binary, @scarf/scarf is opted out', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([, p]) => p.hasInstallScript)
      .map(([where]) => where.replace(/^node_modules\//, ''))
      .sort();
    expect(withScripts).toEqual(['@scarf/scarf', 'esbuild']);
  });

  it('opts out of Scarf: swagger-ui-dist depends on it, and its postinstall reports every install unless told not to', () => {
    // @scarf/scarf's report.js stops when a package.json on the chain from the root says
    // enabled: false ("Scarf has been disabled via a package.json in the dependency chain").
    expect(pkg.scarfSettings?.enabled).toBe(false);
  });
});
