import { deadlineOf, type Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';

/** Page views of `page` of `site` per hour bucket in [fromMs, toMs); hours without views are absent. */
export async function pageViewsPerHour(
  sql: Sql,
  site: string,
  page: string,
  fromMs: number,
  toMs: number,
): Promise<Map<number, number>> {
  const rows = await withDeadline(
    sql<{ bucket: Date; views: number }[]>`
    select bucket, sum(events)::int8 as views /* pageviews/pageViewsPerHour */
    from events_hourly
    where site = ${site}
      and kind = 'pageview'
      and page = ${page}
      and bucket >= ${new Date(fromMs)}
      and bucket < ${new Date(toMs)}
    group by bucket
    `,
    deadlineOf(sql),
  );
  return new Map(rows.map((r) => [r.bucket.getTime(), r.views]));
}
