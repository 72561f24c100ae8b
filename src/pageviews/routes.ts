import type Router from '@koa/router';
import type { Sql } from '../db/client.js';
import { type BodyLimits, readJsonBody } from '../http/body.js';
import { parseWith, queryOf } from '../http/validate.js';
import type { GroupCommitWriter } from '../ingest/writer.js';
import { floorHour, HOUR_MS } from '../time.js';
import { pageViewsPerHour } from './queries.js';
import { PageViewMultiBody, PageViewSingleBody, pageViewRows, ReportQuery } from './schemas.js';

const REPORT_HOURS = 24;

/** The page-view API of seed 003, on the site `deps.site`. */
export function registerPageViews(
  router: Router,
  deps: { sql: Sql; writer: GroupCommitWriter; site: string; bodies: BodyLimits },
): void {
  router.post('/page-views/single', async (ctx) => {
    const body = parseWith(PageViewSingleBody, await readJsonBody(ctx, deps.bodies), 'body');
    await deps.writer.write([
      { site: deps.site, timeMs: body.timestamp, kind: 'pageview', userId: null, page: body.page, weight: 1 },
    ]);
    ctx.body = { success: true };
  });

  router.post('/page-views/multi', async (ctx) => {
    const views = parseWith(PageViewMultiBody, await readJsonBody(ctx, deps.bodies, { rows: { count: pageViewRows } }), 'body');
    // One unit for the writer: the whole request commits in one transaction, or not at all.
    await deps.writer.write(views.map((v) => ({ ...v, site: deps.site })));
    ctx.body = { success: true };
  });

  router.get('/report', async (ctx) => {
    const q = parseWith(ReportQuery, queryOf(ctx), 'query');
    // The 24 complete GMT hours before the hour holding `now`.
    const to = floorHour(q.now ?? Date.now());
    const from = to - REPORT_HOURS * HOUR_MS;
    const views = await pageViewsPerHour(deps.sql, deps.site, q.page, from, to);
    const data = Array.from({ length: REPORT_HOURS }, (_, i) => {
      const hour = from + i * HOUR_MS;
      return { h: new Date(hour).getUTCHours(), v: views.get(hour) ?? 0 };
    });
    if (q.order === 'desc') data.reverse();
    ctx.body = { data: q.take === undefined ? data : data.slice(0, q.take) };
  });
}
