import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { createTestDatabase, modeAvailable, type TestDatabase } from '../helpers/db.js';
import { mixedEvents } from '../helpers/events.js';

const snapshot = async (sql: Sql, relation: 'events_hourly' | 'events_daily') =>
  sql`
    select bucket, kind, page, events, round(hll_cardinality(users))::int8 as users
    from ${sql(relation)}
    order by bucket, kind, page
  `;

const dailyUsers = async (sql: Sql) =>
  sql`select bucket, round(hll_cardinality(users))::int8 as users from users_daily order by bucket`;

const unions = async (sql: Sql) =>
  sql`
    select kind, sum(events)::int8 as events, round(hll_cardinality(hll_union_agg(users)))::int8 as users
    from events_daily
    group by kind
    order by kind
  `;

// The comparison needs both modes: TimescaleDB must be installed.
describe.skipIf(!modeAvailable('timescaledb'))('both storage modes give the same answers for the same events', () => {
  let pg: TestDatabase;
  let ts: TestDatabase;
  const events = mixedEvents(20_000, 45);

  beforeAll(async () => {
    [pg, ts] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('timescaledb')]);
    // Several batches, as the writer would send them: the postgres aggregates are then
    // unions of per-batch sketches, the timescaledb ones sketches of all rows at once.
    for (let i = 0; i < events.length; i += 3000) {
      await Promise.all([insertEvents(pg.sql, events.slice(i, i + 3000)), insertEvents(ts.sql, events.slice(i, i + 3000))]);
    }
  });
  afterAll(async () => Promise.all([pg?.drop(), ts?.drop()]));

  it('while the continuous aggregates are not materialized (real-time)', async () => {
    expect(await snapshot(ts.sql, 'events_hourly')).toEqual(await snapshot(pg.sql, 'events_hourly'));
    expect(await snapshot(ts.sql, 'events_daily')).toEqual(await snapshot(pg.sql, 'events_daily'));
    expect(await unions(ts.sql)).toEqual(await unions(pg.sql));
    expect(await dailyUsers(ts.sql)).toEqual(await dailyUsers(pg.sql));
  });

  it('after the refresh policies have materialized them', async () => {
    for (const view of ['events_minutely', 'events_hourly', 'events_daily', 'users_daily']) {
      const [job] = await ts.sql`
        select job_id from timescaledb_information.jobs
        where hypertable_name = ${view} and proc_name = 'policy_refresh_continuous_aggregate'
      `;
      await ts.sql`call run_job(${job!.job_id}::int)`;
    }
    const [marks] = await ts.sql`select headcount_watermark('events_hourly') as h, headcount_watermark('events_daily') as d`;
    expect(marks!.h).not.toBeNull();
    expect(marks!.d).not.toBeNull();
    expect(await snapshot(ts.sql, 'events_hourly')).toEqual(await snapshot(pg.sql, 'events_hourly'));
    expect(await snapshot(ts.sql, 'events_daily')).toEqual(await snapshot(pg.sql, 'events_daily'));
    expect(await unions(ts.sql)).toEqual(await unions(pg.sql));
    expect(await dailyUsers(ts.sql)).toEqual(await dailyUsers(pg.sql));
  });
});
