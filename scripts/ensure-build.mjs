// Compiles src/ into dist/ (tsc -p tsconfig.json) when a source is newer than the last
// build, so that `npm run keys`, `migrate` and `psql` start in about a second instead of
// waiting for the compiler each time. `--force` always compiles (npm run build).
// Plain Node, no dependencies: it runs before the project is built.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');

/** The newest modification time (ms) of a file or of any file under a folder. */
function newestMtimeMs(file) {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted or renamed source changes its folder's time
  for (const entry of readdirSync(file)) newest = Math.max(newest, newestMtimeMs(path.join(file, entry)));
  return newest;
}

// What tsc's output depends on: the sources, the compiler options, the compiler itself.
const inputs = ['src', 'tsconfig.json', 'package-lock.json'].map((name) => path.join(root, name));
const force = process.argv.includes('--force');
const stale = force || !existsSync(stamp) || inputs.some((input) => newestMtimeMs(input) > statSync(stamp).mtimeMs);

if (stale) {
  // The stamp takes the time the compiler started: a source saved while it runs is newer
  // than the stamp, so the next call compiles again.
  const startedAt = new Date();
  if (!force) process.stderr.write('headcount: compiling src/ into dist/ (a source is newer than the last build)\n');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  writeFileSync(stamp, '');
  utimesSync(stamp, startedAt, startedAt);
}
