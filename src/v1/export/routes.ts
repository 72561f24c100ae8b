import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { ReadLimits } from '../../config.js';
import type { Sql } from '../../db/client.js';
import { sqlState } from '../../db/errors.js';
import { Slots } from '../slots.js';
import { paced } from './pace.js';
import { badRequest } from '../../http/errors.js';
import { parseWith, queryOf } from '../../http/validate.js';
import { type AuthDeps, requireKey } from '../auth/middleware.js';
import { siteToRead } from '../sites/known.js';
import { exportChunks, resolveRange } from './queries.js';
import { ExportQuery } from './schemas.js';

const compact = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

/**
 * GET /v1/export: the raw events of a range, streamed as the database returns them. The
 * status and headers leave before the first row: a failure later cuts the download
 * short (the chunked response never ends cleanly), which clients see as an error.
 */
export function registerExport(router: Router, deps: { sql: Sql; site: string; auth: AuthDeps; reads: ReadLimits }): void {
  // Each export holds a pooled connection for as long as it streams: at most
  // EXPORT_MAX_CONCURRENT (2) at once, none waiting for a slot.
  const limits = deps.reads.export;
  const slots = new Slots('exports', 'exports_busy', limits, 0, 5);
  router.get('/v1/export', requireKey('read', deps.auth), async (ctx) => {
    const q = parseWith(ExportQuery, queryOf(ctx), 'query');
    const { site, timezone } = await siteToRead(ctx, deps.sql, q.site, deps.site);
    const format = q.format ?? 'ndjson';
    let range: { fromMs: number; toMs: number };
    try {
      range = await resolveRange(deps.sql, q.from, q.to, q.timezone ?? timezone ?? 'UTC');
    } catch (err) {
      if (sqlState(err) === '22023' && err instanceof Error)
        throw badRequest('invalid_query', err.message, [{ parameter: 'timezone', message: err.message }]);
      throw err;
    }
    if (range.fromMs >= range.toMs) {
      throw badRequest('invalid_query', 'from must be before to (the range is half-open, [from, to))', [
        { parameter: 'to', message: 'must be after from' },
      ]);
    }
    const release = await slots.hold(ctx);
    const chunks = paced(exportChunks(deps.sql, { site, ...range, format }), limits, (reason) => {
      // Reset, not closed: what the kernel still holds for the client is dropped and the
      // client sees the download fail at once. The response's end ends the body stream,
      // which closes the cursor (the pooled connection goes back) and frees the slot.
      ctx.log.warn({ site, reason }, 'export ended');
      ctx.req.socket.resetAndDestroy();
    });
    const body = Readable.from(chunks, { objectMode: false });
    body.once('close', release);
    const filename = `headcount-${site}-${compact(range.fromMs)}-${compact(range.toMs)}.${format}`;
    ctx.set('Content-Disposition', `attachment; filename="${filename}"`);
    ctx.type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
    ctx.body = body;
  });
}
