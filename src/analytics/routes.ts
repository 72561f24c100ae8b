import type Router from '@koa/router';
import type { Sql } from '../db/client.js';
import { parseWith, queryOf } from '../http/validate.js';
import type { EventRow, GroupCommitWriter } from '../ingest/writer.js';
import { floorHour } from '../time.js';
import { hourSummary } from './queries.js';
import { AnalyticsReadQuery, AnalyticsWriteQuery } from './schemas.js';

/** The event a `POST /analytics` stores (also built by src/hot-routes.ts). */
export const analyticsEvent = (site: string, q: AnalyticsWriteQuery): EventRow => ({
  site,
  timeMs: q.timestampMs,
  kind: q.event,
  userId: q.user,
  page: '',
  weight: 1,
});

/** The analytics API of seeds 001 (user_analytics), 002 (narrative) and 004 (Tapad), on the site `deps.site`. */
export function registerAnalytics(router: Router, deps: { sql: Sql; writer: GroupCommitWriter; site: string }): void {
  router.post('/analytics', async (ctx) => {
    const q = parseWith(AnalyticsWriteQuery, queryOf(ctx), 'query');
    await deps.writer.write([analyticsEvent(deps.site, q)]);
    ctx.status = 204;
  });

  router.get('/analytics', async (ctx) => {
    const q = parseWith(AnalyticsReadQuery, queryOf(ctx), 'query');
    const s = await hourSummary(deps.sql, deps.site, floorHour(q.timestamp));
    ctx.type = 'text/plain';
    ctx.body = `unique_users,${s.uniqueUsers}\nclicks,${s.clicks}\nimpressions,${s.impressions}\n`;
  });
}
