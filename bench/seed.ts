import { createSql, type Sql } from '../src/db/client.js';
import { refreshAggregates } from '../src/db/refresher.js';

/**
 * Data for the benchmark, generated inside PostgreSQL with generate_series (one
 * statement per call), so seeding measures the database, not the load generator.
 */

/** `events` click/impression events of `users` distinct users in [fromMs, toMs). */
export async function seedAnalytics(sql: Sql, fromMs: number, toMs: number, events: number, users: number): Promise<void> {
  await sql`
    insert into events (time, kind, user_id)
    select
      ${new Date(fromMs)}::timestamptz + (i::float8 / ${events}) * (${toMs - fromMs}::float8 * interval '1 millisecond'),
      case when i % 4 = 0 then 'click' else 'impression' end,
      'h' || (i % ${users})
    from generate_series(0, ${events - 1}) as i
  `;
}

/** Exactly `users` distinct users, each seen twice, on the GMT day `dayMs`. */
export async function seedDistinctUsers(sql: Sql, dayMs: number, users: number, prefix: string): Promise<void> {
  await sql`
    insert into events (time, kind, user_id)
    select ${new Date(dayMs)}::timestamptz + (i % 86400) * interval '1 second', 'collect', ${prefix} || (i % ${users})
    from generate_series(0, ${users * 2 - 1}) as i
  `;
}

/** A day of mixed traffic: `events` events of every kind, 200,000 distinct users, 50 pages. */
export async function seedDay(sql: Sql, dayMs: number, events: number): Promise<void> {
  await sql`
    insert into events (time, kind, user_id, page)
    select
      ${new Date(dayMs)}::timestamptz + (i::float8 / ${events}) * interval '1 day',
      (array['collect', 'click', 'impression', 'pageview'])[1 + i % 4],
      case when i % 4 = 3 then null else 'v' || (i::int8 * 7919 % 200000) end,
      case when i % 4 = 3 then '/page/' || (i % 50) else '' end
    from generate_series(0, ${events - 1}) as i
  `;
}

/**
 * Materializes every aggregate now (timescaledb mode; postgres mode's tables are always
 * current), as the service's refresher would within a tick, taking turns with it. Reads
 * are exact either way: this makes them read materialized rows, as in steady state.
 */
export async function refreshAll(databaseUrl: string): Promise<void> {
  const sql = createSql(databaseUrl, { max: 1, applicationName: 'headcount-bench' });
  try {
    const [row]: [{ storage_mode: string }?] = await sql`select storage_mode from headcount_settings`;
    if (row?.storage_mode !== 'timescaledb') return;
    while (!(await refreshAggregates(sql)).ran) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await sql.end();
  }
}
