import { deadlineOf, type Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import { HOUR_MS } from '../time.js';

export interface HourSummary {
  uniqueUsers: number;
  clicks: number;
  impressions: number;
}

/** Clicks, impressions and the users behind either, of `site` in the hour [hourMs, hourMs + 1 h). */
export async function hourSummary(sql: Sql, site: string, hourMs: number): Promise<HourSummary> {
  const [row]: [HourSummary?] = await withDeadline(
    sql`
    select /* analytics/hourSummary */
      coalesce(round(hll_cardinality(hll_union_agg(users))), 0)::int8 as "uniqueUsers",
      coalesce(sum(events) filter (where kind = 'click'), 0)::int8 as clicks,
      coalesce(sum(events) filter (where kind = 'impression'), 0)::int8 as impressions
    from events_hourly
    where site = ${site}
      and bucket >= ${new Date(hourMs)}
      and bucket < ${new Date(hourMs + HOUR_MS)}
      and kind in ('click', 'impression')
      and page = ''
    `,
    deadlineOf(sql),
  );
  return row ?? { uniqueUsers: 0, clicks: 0, impressions: 0 };
}
