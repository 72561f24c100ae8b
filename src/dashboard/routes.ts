import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import { HttpError } from '../http/errors.js';
import type { Logger } from '../log.js';
import { PAGE_SECURITY_HEADERS } from '../http/page-security.js';

/** Where `npm run build` puts the dashboard (scripts/build-web.mjs): the project's dist/web. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** What the build made: index.html and hashed assets, each also gzip- and brotli-compressed. */
export interface DashboardFiles {
  index: Buffer;
  etag: string;
  assets: Map<string, { type: string; identity: Buffer; gzip: Buffer; br: Buffer }>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The page's meta tag that tells its embed panel where the tracker is served (web/index.html). */
const SCRIPT_META = '<meta name="headcount-script" content="/script.js">';

/**
 * The built dashboard in `dir`, or undefined when it has not been built; its page names
 * `scriptPath` (TRACKER_SCRIPT_PATH) as the tracker's path when given.
 */
export function loadDashboard(dir: string, scriptPath?: string): DashboardFiles | undefined {
  const manifestFile = path.join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { assets: string[] };
  const built = readFileSync(path.join(dir, 'index.html'), 'utf8');
  // The path's pattern (config.ts) allows no quote or angle bracket: it cannot leave the attribute.
  const index = Buffer.from(scriptPath ? built.replace(SCRIPT_META, SCRIPT_META.replace('/script.js', scriptPath)) : built);
  const assets: DashboardFiles['assets'] = new Map();
  for (const name of manifest.assets) {
    const file = path.join(dir, 'assets', name);
    assets.set(name, {
      type: TYPES[path.extname(name)] ?? 'application/octet-stream',
      identity: readFileSync(file),
      gzip: readFileSync(`${file}.gz`),
      br: readFileSync(`${file}.br`),
    });
  }
  return { index, etag: `"${createHash('sha256').update(index).digest('base64url').slice(0, 27)}"`, assets };
}

/**
 * GET / (the dashboard, revalidated on every load: no-cache with an ETag) and
 * GET /assets/<name>-<hash>.<ext> (immutable: a new build makes new names). The files
 * are read once, at start.
 */
export function registerDashboard(router: Router, deps: { dir: string; scriptPath?: string | undefined; log: Logger }): void {
  const files = loadDashboard(deps.dir, deps.scriptPath);
  if (!files) deps.log.warn({ dir: deps.dir }, 'the dashboard is not built (npm run build): GET / answers 503');

  router.get('/', (ctx) => {
    if (!files) throw new HttpError(503, 'dashboard_not_built', 'the dashboard is not built: run npm run build');
    ctx.set({
      'Cache-Control': 'no-cache',
      ...PAGE_SECURITY_HEADERS,
    });
    ctx.status = 200;
    ctx.etag = files.etag;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = files.index;
  });

  router.get('/assets/:file', (ctx, next) => {
    const asset = files?.assets.get(ctx.params.file ?? '');
    if (!asset) return next();
    ctx.vary('Accept-Encoding');
    ctx.set({ 'Cache-Control': 'public, max-age=31536000, immutable', 'X-Content-Type-Options': 'nosniff' });
    ctx.type = asset.type;
    const encoding = ctx.acceptsEncodings('br', 'gzip', 'identity');
    if (encoding === 'br' || encoding === 'gzip') ctx.set('Content-Encoding', encoding);
    ctx.body = encoding === 'br' ? asset.br : encoding === 'gzip' ? asset.gzip : asset.identity;
    return undefined;
  });
}
