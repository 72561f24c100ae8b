import type Router from '@koa/router';
import type { Sql } from '../db/client.js';
import type { EventRow, GroupCommitWriter } from '../ingest/writer.js';
import { parseWith, queryOf } from '../http/validate.js';
import { DAY_MS, floorDay } from '../time.js';
import { distinctUsersOverDays } from './queries.js';
import { CollectQuery, UniquesQuery } from './schemas.js';

/** Days in a `/monthly_uniques` window: the 30 GMT days ending on and including `d`. */
const MONTH_DAYS = 30;

/** The event a `GET /collect` stores (also built by src/hot-routes.ts). */
export const collectEvent = (site: string, q: CollectQuery): EventRow => ({
  site,
  timeMs: q.d ?? Date.now(),
  kind: 'collect',
  userId: q.cid,
  page: '',
  weight: 1,
});

/** The collect API of seed 000, on the site `deps.site`. */
export function registerCollect(router: Router, deps: { sql: Sql; writer: GroupCommitWriter; site: string }): void {
  router.get('/collect', async (ctx) => {
    const q = parseWith(CollectQuery, queryOf(ctx), 'query');
    await deps.writer.write([collectEvent(deps.site, q)]);
    ctx.status = 200;
    ctx.body = '';
  });

  router.get('/daily_uniques', async (ctx) => {
    const day = parseWith(UniquesQuery, queryOf(ctx), 'query').d ?? floorDay(Date.now());
    const users = await distinctUsersOverDays(deps.sql, deps.site, day, day + DAY_MS);
    ctx.type = 'text/plain';
    ctx.body = `${users}\n`;
  });

  router.get('/monthly_uniques', async (ctx) => {
    const day = parseWith(UniquesQuery, queryOf(ctx), 'query').d ?? floorDay(Date.now());
    const users = await distinctUsersOverDays(deps.sql, deps.site, day - (MONTH_DAYS - 1) * DAY_MS, day + DAY_MS);
    ctx.type = 'text/plain';
    ctx.body = `${users}\n`;
  });
}
