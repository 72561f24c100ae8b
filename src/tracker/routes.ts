import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type Router from '@koa/router';
import { HttpError } from '../http/errors.js';
import type { Logger } from '../log.js';

/** The tracker as built (scripts/build-web.mjs: dist/web/tracker.js, .gz and .br beside it). */
interface Script {
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
  etag: string;
}

function loadScript(dir: string): Script | undefined {
  const file = path.join(dir, 'tracker.js');
  if (!existsSync(file)) return undefined;
  const identity = readFileSync(file);
  return {
    identity,
    gzip: readFileSync(`${file}.gz`),
    br: readFileSync(`${file}.br`),
    etag: `"${createHash('sha256').update(identity).digest('base64url').slice(0, 27)}"`,
  };
}

/**
 * GET /script.js and GET `scriptPath` (TRACKER_SCRIPT_PATH: blockers match well-known
 * names): the tracker, for any site to load (Cross-Origin-Resource-Policy: cross-origin),
 * cached for an hour and revalidated by its ETag, so a new version reaches pages within
 * the hour.
 */
export function registerTracker(router: Router, deps: { dir: string; scriptPath: string | undefined; log: Logger }): void {
  const script = loadScript(deps.dir);
  if (!script) deps.log.warn({ dir: deps.dir }, 'the tracker is not built (npm run build): GET /script.js answers 503');
  const paths = ['/script.js', ...(deps.scriptPath && deps.scriptPath !== '/script.js' ? [deps.scriptPath] : [])];
  for (const at of paths) {
    router.get(at, (ctx) => {
      if (!script) throw new HttpError(503, 'tracker_not_built', 'the tracker is not built: run npm run build');
      ctx.vary('Accept-Encoding');
      ctx.set({
        'Cache-Control': 'public, max-age=3600',
        'Cross-Origin-Resource-Policy': 'cross-origin',
        'X-Content-Type-Options': 'nosniff',
      });
      ctx.status = 200;
      ctx.etag = script.etag;
      if (ctx.fresh) {
        ctx.status = 304;
        return;
      }
      ctx.type = 'text/javascript; charset=utf-8';
      const encoding = ctx.acceptsEncodings('br', 'gzip', 'identity');
      if (encoding === 'br' || encoding === 'gzip') ctx.set('Content-Encoding', encoding);
      ctx.body = encoding === 'br' ? script.br : encoding === 'gzip' ? script.gzip : script.identity;
    });
  }
}
