import { deadlineOf, type Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';

/**
 * Distinct users of `site` over whole GMT days [fromMs, toMs), every kind of event: one
 * union of the daily sketches (never a sum of daily counts).
 */
export async function distinctUsersOverDays(sql: Sql, site: string, fromMs: number, toMs: number): Promise<number> {
  const [row]: [{ users: number }?] = await withDeadline(
    sql`
    select coalesce(round(hll_cardinality(hll_union_agg(users))), 0)::int8 as users /* collect/distinctUsersOverDays */
    from totals_daily
    where site = ${site}
      and bucket >= ${new Date(fromMs)}
      and bucket < ${new Date(toMs)}
    `,
    deadlineOf(sql),
  );
  return row?.users ?? 0;
}
