// Installs the npm dependencies when node_modules is missing or older than
// package-lock.json, so that `npm start` and `npm test` work on a fresh checkout.
// Plain Node, no dependencies: it runs before there are any.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lock = readFileSync(path.join(root, 'package-lock.json'));
const digest = createHash('sha256').update(lock).digest('hex');
const stamp = path.join(root, 'node_modules', '.headcount-lock-sha256');

if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== digest) {
  process.stderr.write('headcount: installing npm dependencies (npm ci)\n');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  writeFileSync(stamp, digest);
}
