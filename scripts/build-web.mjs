// Builds the dashboard (web/) into dist/web: one minified script and one stylesheet with
// content hashes in their names (served with a long max-age), each also precompressed
// (gzip, brotli), and index.html pointing at them (served with no-cache). Also the tracker
// (web/tracker.ts): dist/web/tracker.js with its .gz and .br, served as GET /script.js.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
rmSync(out, { recursive: true, force: true });

const result = await build({
  entryPoints: { app: path.join(root, 'web', 'main.ts') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});

const assets = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const find = (ext) => {
  const name = assets.find((a) => a.endsWith(ext));
  if (!name) throw new Error(`the dashboard build made no ${ext} file`);
  return name;
};
for (const name of assets) {
  const file = path.join(out, 'assets', name);
  const body = readFileSync(file);
  writeFileSync(`${file}.gz`, gzipSync(body, { level: 9 }));
  writeFileSync(`${file}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
}
const index = readFileSync(path.join(root, 'web', 'index.html'), 'utf8')
  .replace('%JS%', `/assets/${find('.js')}`)
  .replace('%CSS%', `/assets/${find('.css')}`);
writeFileSync(path.join(out, 'index.html'), index);
writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify({ script: find('.js'), style: find('.css'), assets }, null, 2)}\n`);

// The tracker: an entry of its own, a fixed name (GET /script.js; src/tracker/routes.ts).
await build({
  entryPoints: { tracker: path.join(root, 'web', 'tracker.ts') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2017'],
  outdir: out,
  logLevel: 'warning',
});
const tracker = path.join(out, 'tracker.js');
writeFileSync(`${tracker}.gz`, gzipSync(readFileSync(tracker), { level: 9 }));
writeFileSync(`${tracker}.br`, brotliCompressSync(readFileSync(tracker), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
