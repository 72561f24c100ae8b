import type Router from '@koa/router';
import type { ReadLimits } from '../../config.js';
import type { Sql } from '../../db/client.js';
import { badRequest } from '../../http/errors.js';
import { parseWith, queryOf } from '../../http/validate.js';
import { type AuthDeps, requireKey } from '../auth/middleware.js';
import { statsRange } from '../range.js';
import { siteToRead } from '../sites/known.js';
import { Slots } from '../slots.js';
import { costGuard } from './cost.js';
import { readStats, StatsArgumentError, statsDeadlineMs } from './queries.js';
import { StatsQuery } from './schemas.js';

/** GET /v1/stats: distinct users and events per local bucket (see headcount_stats). */
export function registerStats(
  router: Router,
  deps: { sql: Sql; site: string; auth: AuthDeps; reads: ReadLimits; retryAfterSeconds: number },
): void {
  // A request that finds no slot waits for one up to a stats query's own deadline: while
  // the database is slow or down the first ones answer 503 database_unavailable at
  // theirs, before a waiter would be refused. Per key, four at once: what the dashboard
  // asks. A heavy request (more than STATS_HEAVY_ROWS rows) also needs a heavy slot: half
  // of them at once, one per key, so that one key cannot keep PostgreSQL's cores busy.
  const limits = deps.reads.stats;
  const wait = statsDeadlineMs(deps.sql);
  const slots = new Slots('stats queries', 'stats_busy', limits, wait, deps.retryAfterSeconds);
  const heavySlots = new Slots(
    `heavy stats queries (over ${limits.heavyRows} rows)`,
    'stats_busy',
    { maxConcurrent: Math.max(1, Math.floor(limits.maxConcurrent / 2)), maxConcurrentPerKey: 1 },
    wait,
    deps.retryAfterSeconds,
  );
  router.get('/v1/stats', requireKey('read', deps.auth), async (ctx) => {
    const q = parseWith(StatsQuery, queryOf(ctx), 'query');
    const target = await siteToRead(ctx, deps.sql, q.site, deps.site);
    const timezone = q.timezone ?? target.timezone ?? 'UTC';
    const req = {
      site: target.site,
      ...statsRange(q, timezone, Date.now()),
      granularity: q.granularity ?? 'total',
      timezone,
      kinds: q.kind ?? null,
      pages: q.page ?? null,
      groupBy: q.group_by === undefined ? null : q.group_by.split(',').map((name) => name.trim()),
      limit: q.limit ?? 10,
      filters: q.filter ?? null,
      compare: q.compare ?? null,
      maxRawRows: limits.maxRawRows,
      metrics: q.metrics ?? ['users', 'events'],
    };
    const rows = costGuard(req, limits.maxRows);
    const releaseHeavy = rows > limits.heavyRows ? await heavySlots.hold(ctx) : () => {};
    let release = (): void => {};
    try {
      release = await slots.hold(ctx);
      ctx.body = await readStats(deps.sql, req);
    } catch (err) {
      if (err instanceof StatsArgumentError) {
        const code = err.tooExpensive ? 'too_expensive' : 'invalid_query';
        throw badRequest(code, err.message, [{ parameter: err.parameter, message: err.message }]);
      }
      throw err;
    } finally {
      release();
      releaseHeavy();
    }
  });
}
