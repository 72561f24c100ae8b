import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Sql } from '../../db/client.js';
import { sqlState } from '../../db/errors.js';
import { badRequest, UnavailableError } from '../../http/errors.js';
import { parseWith, queryOf } from '../../http/validate.js';
import { type AuthDeps, requireKey, siteFor } from '../auth/middleware.js';
import { exportChunks, resolveRange } from './queries.js';
import { ExportQuery } from './schemas.js';

/** Each export holds a pooled connection for as long as it streams: leave the rest to ingest and reads. */
const MAX_CONCURRENT_EXPORTS = 2;

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
export function registerExport(router: Router, deps: { sql: Sql; site: string; auth: AuthDeps }): void {
  let running = 0;
  router.get('/v1/export', requireKey('read', deps.auth), async (ctx) => {
    const q = parseWith(ExportQuery, queryOf(ctx), 'query');
    const site = siteFor(ctx, q.site, deps.site);
    const format = q.format ?? 'ndjson';
    let range: { fromMs: number; toMs: number };
    try {
      range = await resolveRange(deps.sql, q.from, q.to, q.timezone ?? 'UTC');
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
    if (running >= MAX_CONCURRENT_EXPORTS) {
      throw new UnavailableError('exports_busy', `${MAX_CONCURRENT_EXPORTS} exports are running; retry later`, 5);
    }
    running++;
    const body = Readable.from(exportChunks(deps.sql, { site, ...range, format }), { objectMode: false });
    body.once('close', () => running--);
    const filename = `headcount-${site}-${compact(range.fromMs)}-${compact(range.toMs)}.${format}`;
    ctx.set('Content-Disposition', `attachment; filename="${filename}"`);
    ctx.type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
    ctx.body = body;
  });
}
