import type Router from '@koa/router';
import type { Sql } from '../../db/client.js';
import { badRequest } from '../../http/errors.js';
import { parseWith, queryOf } from '../../http/validate.js';
import { type AuthDeps, requireKey, siteFor } from '../auth/middleware.js';
import { readStats, StatsArgumentError } from './queries.js';
import { StatsQuery } from './schemas.js';

/** GET /v1/stats: distinct users and events per local bucket (see headcount_stats). */
export function registerStats(router: Router, deps: { sql: Sql; site: string; auth: AuthDeps }): void {
  router.get('/v1/stats', requireKey('read', deps.auth), async (ctx) => {
    const q = parseWith(StatsQuery, queryOf(ctx), 'query');
    try {
      ctx.body = await readStats(deps.sql, {
        site: siteFor(ctx, q.site, deps.site),
        from: q.from,
        to: q.to,
        granularity: q.granularity ?? 'total',
        timezone: q.timezone ?? 'UTC',
        kinds: q.kind ?? null,
        pages: q.page ?? null,
        groupBy: q.group_by ?? null,
        limit: q.limit ?? 10,
      });
    } catch (err) {
      if (err instanceof StatsArgumentError) {
        throw badRequest('invalid_query', err.message, [{ parameter: err.parameter, message: err.message }]);
      }
      throw err;
    }
  });
}
