import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { refreshAggregates } from '../../src/db/refresher.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { createTestDatabase, modeAvailable, type TestDatabase } from '../helpers/db.js';
import { mixedEvents } from '../helpers/events.js';

const RELATIONS = ['events_minutely', 'events_hourly', 'events_daily', 'totals_hourly', 'totals_daily', 'users_daily'] as const;

/** Every row of every documented relation, sketches as their cardinality. */
const snapshot = async (sql: Sql) => {
  const all: Record<string, unknown> = {};
  for (const relation of RELATIONS) {
    // Its columns by name, not to_jsonb(r): Citus names the whole-row columns of a view
    // over distributed tables f1, f2, ... (users_daily).
    const columns = await sql<{ name: string }[]>`
      select attname as name from pg_attribute
      where attrelid = ${relation}::regclass and attnum > 0 and not attisdropped and attname <> 'users'
      order by attnum
    `;
    const row = columns.map((c) => `'${c.name}', r.${c.name}`).join(', ');
    all[relation] = await sql`
      select jsonb_build_object(${sql.unsafe(row)}) as row, round(hll_cardinality(r.users))::int8 as users
      from ${sql(relation)} r
      order by 1
    `;
  }
  all.unions = await sql`
    select site, kind, sum(events)::int8 as events, round(hll_cardinality(hll_union_agg(users)))::int8 as users
    from events_daily group by 1, 2 order by 1, 2
  `;
  return all;
};

// The comparison needs both modes: TimescaleDB must be installed.
describe.skipIf(!modeAvailable('timescaledb'))('both storage modes give the same answers for the same events', () => {
  let pg: TestDatabase;
  let ts: TestDatabase;
  let refresherSql: Sql;
  const events = mixedEvents(20_000, 45).map((e, i) => ({ ...e, site: i % 5 === 0 ? 'shop' : 'default' }));
  const write = async (rows: typeof events) => {
    // Several batches, as the writer would send them: aggregates are unions of per-batch sketches.
    for (let i = 0; i < rows.length; i += 3000) {
      await Promise.all([insertEvents(pg.sql, rows.slice(i, i + 3000)), insertEvents(ts.sql, rows.slice(i, i + 3000))]);
    }
  };

  beforeAll(async () => {
    [pg, ts] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('timescaledb')]);
    refresherSql = createSql(ts.url, { max: 1 });
    await write(events.slice(0, 10_000));
  });
  afterAll(async () => {
    await refresherSql?.end();
    await Promise.all([pg?.drop(), ts?.drop()]);
  });

  it('while the continuous aggregates are not materialized (real-time)', async () => {
    expect(await snapshot(ts.sql)).toEqual(await snapshot(pg.sql));
  });

  it('once materialized, and with back-dated writes below the watermark not yet re-materialized', async () => {
    await refreshAggregates(refresherSql);
    expect(await snapshot(ts.sql)).toEqual(await snapshot(pg.sql));
    await write(events.slice(10_000));
    expect((await ts.sql`select count(*)::int as n from headcount_stale_hours`)[0]!.n).toBeGreaterThan(100);
    expect(await snapshot(ts.sql)).toEqual(await snapshot(pg.sql));
    await refreshAggregates(refresherSql);
    expect((await ts.sql`select count(*)::int as n from headcount_stale_hours`)[0]!.n).toBe(0);
    expect(await snapshot(ts.sql)).toEqual(await snapshot(pg.sql));
  }, 90_000); // two databases, 20,000 events and every relation compared four times
});

// Needs Citus (npm run setup:citus): the suite's setup then runs a local Citus cluster.
describe.skipIf(!modeAvailable('citus'))('citus mode keeps every documented relation as postgres mode does', () => {
  let pg: TestDatabase;
  let cx: TestDatabase;
  beforeAll(async () => {
    [pg, cx] = await Promise.all([createTestDatabase('postgres'), createTestDatabase('citus')]);
  });
  afterAll(async () => {
    await Promise.all([pg?.drop(), cx?.drop()]);
  });

  it('for the same events, written in batches over many sites, ids resent', async () => {
    const events = mixedEvents(12_000, 45, 5).map((e, i) => ({ ...e, site: `site-${i % 23}`, id: `e${i}` }));
    for (let i = 0; i < events.length; i += 3000) {
      const rows = events.slice(i, i + 3000);
      // citus mode: no trigger; the writer's statement keeps the aggregates (as the service runs it).
      await Promise.all([insertEvents(pg.sql, rows), insertEvents(cx.sql, rows, { callInserted: true })]);
    }
    // A resend of some: stored once in both.
    await Promise.all([
      insertEvents(pg.sql, events.slice(0, 500)),
      insertEvents(cx.sql, events.slice(0, 500), { callInserted: true }),
    ]);
    const expected = await snapshot(pg.sql);
    expect((expected.unions as unknown[]).length).toBeGreaterThan(23);
    expect(await snapshot(cx.sql)).toEqual(expected);
  }, 120_000);
});
