import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { clearMarks, LEVELS, readMarks, REFRESH_LOCK_KEY, refreshAggregate, refreshAggregates } from '../../src/db/refresher.js';
import { type EventRow, insertEvents } from '../../src/ingest/writer.js';
import { HOUR_MS } from '../../src/time.js';
import { createTestDatabase, first, modeAvailable, type TestDatabase } from '../helpers/db.js';
import { collectRow } from '../helpers/events.js';
import { daysAgo, today } from '../helpers/time.js';

const event = (timeMs: number, userId: string): EventRow => collectRow(timeMs, userId);
const watermark = async (sql: Sql, aggregate: string) =>
  (first(await sql`select headcount_watermark(${aggregate}::regclass) as mark`).mark as Date).getTime();
const sumOf = async (sql: Sql, relation: string, bucketMs: number) =>
  Number(
    first(await sql`select coalesce(sum(events), 0)::int8 as n from ${sql(relation)} where bucket = ${new Date(bucketMs)}`).n,
  );
/**
 * A POSIX zone on UTC+1 (daylight time) from its year's start until noon of the UTC day
 * `dayMs`, on UTC after: there, that day + interval '1 day' spans 25 hours. Its days are
 * counted from 0 with 29 February ("n"): "Jn" skips 29 February, so in a leap year the
 * change came a day late, the day was 24 hours long, and the time-zone test passed with
 * the '1 day' it guards against.
 */
function dstEndingOn(dayMs: number): string {
  const dayOfYear = Math.round((dayMs - Date.UTC(new Date(dayMs).getUTCFullYear(), 0, 1)) / 86_400_000);
  return `XST0XDT,0/0,${dayOfYear}/12`;
}
const marks = async (sql: Sql) =>
  (await sql`select hour from headcount_stale_hours order by hour`).map((r) => (r.hour as Date).getTime());

// Continuous aggregates and their refresher exist only in timescaledb mode.
describe.skipIf(!modeAvailable('timescaledb'))('continuous aggregate refresher, timescaledb mode', () => {
  let db: TestDatabase;
  let conn: Sql;
  const pass = () => refreshAggregates(conn);

  beforeAll(async () => {
    db = await createTestDatabase('timescaledb');
    conn = createSql(db.url, { max: 1 });
  });
  afterAll(async () => {
    await conn?.end();
    await db?.drop();
  });
  beforeEach(async () => db.reset());

  it('materializes every level up to the current 10 minutes, hour and day, and moves "through" there', async () => {
    await insertEvents(db.sql, [event(daysAgo(3) + HOUR_MS, 'a'), event(Date.now(), 'b')]);
    await pass();
    const tenMinutes = Math.floor(Date.now() / 600_000) * 600_000;
    const state = first(await db.sql`select through, materialized_through from headcount_refresh_state`);
    expect((state.through as Date).getTime()).toBe(tenMinutes);
    expect((state.materialized_through as Date).getTime()).toBe(tenMinutes);
    // A watermark is the end of the last materialized bucket that holds data.
    expect(await watermark(db.sql, 'events_10m_cagg')).toBe(Math.floor((daysAgo(3) + HOUR_MS) / 600_000) * 600_000 + 600_000);
    expect(await watermark(db.sql, 'events_hourly_cagg')).toBe(daysAgo(3) + 2 * HOUR_MS);
    expect(await watermark(db.sql, 'events_daily_cagg')).toBe(daysAgo(2));
    expect(await watermark(db.sql, 'totals_daily_cagg')).toBe(daysAgo(2));
    expect(await sumOf(db.sql, 'events_hourly_cagg', daysAgo(3) + HOUR_MS)).toBe(1);
    expect(await sumOf(db.sql, 'totals_daily_cagg', daysAgo(3))).toBe(1);
  });

  it('marks the hour of a write below "through" in the writing transaction, and the relations answer it at once', async () => {
    await insertEvents(db.sql, [event(daysAgo(20) + 5 * HOUR_MS, 'early')]);
    await pass();
    const late = daysAgo(20) + 5 * HOUR_MS + 17 * 60_000;
    await insertEvents(db.sql, [event(late, 'late'), event(Date.now(), 'now')]);
    // The continuous aggregate itself hides the row until a refresh; the relation does not.
    expect(await sumOf(db.sql, 'events_hourly_cagg', daysAgo(20) + 5 * HOUR_MS)).toBe(1);
    expect(await marks(db.sql)).toEqual([daysAgo(20) + 5 * HOUR_MS]);
    expect(await sumOf(db.sql, 'events_hourly', daysAgo(20) + 5 * HOUR_MS)).toBe(2);
    expect(await sumOf(db.sql, 'events_daily', daysAgo(20))).toBe(2);
    expect(await sumOf(db.sql, 'totals_hourly', daysAgo(20) + 5 * HOUR_MS)).toBe(2);
    expect(await sumOf(db.sql, 'totals_daily', daysAgo(20))).toBe(2);
    const result = await pass();
    expect(result.marksCleared).toBe(1);
    expect(await marks(db.sql)).toEqual([]);
    expect(await sumOf(db.sql, 'events_hourly_cagg', daysAgo(20) + 5 * HOUR_MS)).toBe(2);
    expect(await sumOf(db.sql, 'events_daily_cagg', daysAgo(20))).toBe(2);
    expect(await sumOf(db.sql, 'totals_daily_cagg', daysAgo(20))).toBe(2);
  });

  it('does no refresh when nothing was written below "through" and no boundary passed', async () => {
    await insertEvents(db.sql, [event(Date.now(), 'a')]);
    await pass();
    await insertEvents(db.sql, [event(Date.now(), 'b')]);
    const result = await pass();
    // The write lies above "through": real-time, nothing to materialize. (Unless the
    // 10 minutes ended in between: then the pass rightly refreshes.)
    const started = first(await db.sql`select materialized_through as m from headcount_refresh_state`).m as Date;
    if (started.getTime() === Math.floor(Date.now() / 600_000) * 600_000) {
      expect(result).toEqual({ ran: true, marksCleared: 0, refreshed: 0 });
    }
    expect(await marks(db.sql)).toEqual([]);
  });

  it('lets one instance at a time refresh (advisory lock)', async () => {
    const other = createSql(db.url, { max: 1 });
    try {
      await other`select pg_advisory_lock(${REFRESH_LOCK_KEY})`;
      expect((await pass()).ran).toBe(false);
      await other`select pg_advisory_unlock(${REFRESH_LOCK_KEY})`;
      expect((await pass()).ran).toBe(true);
    } finally {
      await other.end();
    }
  });

  it('materializes a backfill older than the retention window in a window of its own day, and no refresh wipes it', async () => {
    const old = daysAgo(300) + 3 * HOUR_MS;
    await insertEvents(db.sql, [event(Date.now(), 'recent')]);
    await pass();
    await insertEvents(db.sql, [event(old, 'u1'), event(old + 60_000, 'u2')]);
    await pass();
    expect(await sumOf(db.sql, 'totals_daily_cagg', daysAgo(300))).toBe(2);
    // Retention drops minutes and hours of that day (and logs the dropped range as
    // invalidated); the day sketch must outlive them through any later pass.
    await db.sql`select drop_chunks('events', older_than => now() - interval '60 days')`;
    await db.sql`select drop_chunks('events_minutely_parts', older_than => now() - interval '60 days')`;
    for (const agg of ['events_10m_cagg', 'events_hourly_cagg', 'totals_10m_cagg', 'totals_hourly_cagg'])
      await db.sql`select drop_chunks(${agg}::regclass, older_than => now() - interval '60 days')`;
    expect(first(await db.sql`select count(*)::int as n from events_minutely where bucket < now() - interval '60 days'`).n).toBe(
      0,
    );
    await insertEvents(db.sql, [event(daysAgo(2), 'another mark')]);
    await pass();
    await db.sql`call refresh_continuous_aggregate('totals_daily_cagg', now() - interval '60 days', ${new Date(today())}::timestamptz)`;
    expect(await sumOf(db.sql, 'totals_daily', daysAgo(300))).toBe(2);
    expect(await sumOf(db.sql, 'events_daily', daysAgo(300))).toBe(2);
    const { users } = first(
      await db.sql`select round(hll_cardinality(users))::int as users from users_daily where bucket = ${new Date(daysAgo(300))}`,
    );
    expect(users).toBe(2);
  });

  it('keeps a mark that a write renewed after the pass noted it', async () => {
    const hour = daysAgo(5) + 2 * HOUR_MS;
    await insertEvents(db.sql, [event(hour, 'first')]);
    await pass();
    await insertEvents(db.sql, [event(hour + 60_000, 'second')]);
    const noted = await readMarks(db.sql);
    expect(noted).toHaveLength(1);
    // A write after the pass read the marks renews the one of its hour; the refresh the
    // pass ran may not have seen that write, so the mark must stay.
    await insertEvents(db.sql, [event(hour + 120_000, 'third')]);
    expect(await clearMarks(db.sql, noted)).toBe(0);
    expect(await marks(db.sql)).toEqual([hour]);
    expect(await sumOf(db.sql, 'events_hourly', hour)).toBe(3);
    expect(await clearMarks(db.sql, await readMarks(db.sql))).toBe(1);
  });

  it('keeps a mark while TimescaleDB still holds an invalidation of one of its buckets in the refreshed windows', async () => {
    await pass();
    const hour = daysAgo(6) + 3 * HOUR_MS;
    await insertEvents(db.sql, [event(hour, 'late')]);
    const noted = await readMarks(db.sql);
    expect(noted).toHaveLength(1);
    const through = { tenMinutes: new Date(today()), hour: new Date(today()), day: new Date(today()) };
    // Only the 10-minute level is refreshed: the hour and the day still hold the write
    // as an invalidation, and their rows do not have it yet.
    for (const aggregate of LEVELS[0].aggregates) await refreshAggregate(conn, aggregate, daysAgo(30), today());
    expect(await clearMarks(db.sql, noted, through)).toBe(0);
    expect(await sumOf(db.sql, 'totals_daily', daysAgo(6))).toBe(1);
    for (const level of LEVELS.slice(1)) {
      for (const aggregate of level.aggregates) await refreshAggregate(conn, aggregate, daysAgo(30), today());
    }
    expect(await clearMarks(db.sql, noted, through)).toBe(1);
    expect(await sumOf(db.sql, 'totals_daily', daysAgo(6))).toBe(1);
    expect(await sumOf(db.sql, 'events_hourly', hour)).toBe(1);
  });

  it('answers a stale day as a UTC day whatever the session time zone (a psql user with DST)', async () => {
    const day = daysAgo(10);
    const zone = dstEndingOn(day);
    await insertEvents(db.sql, [
      event(day - 3_600_000, 'before'),
      event(day + 23 * HOUR_MS, 'last'),
      event(day + 24 * HOUR_MS, 'next'),
    ]);
    await pass();
    await insertEvents(db.sql, [event(day + 60_000, 'stale')]); // marks the day stale
    expect(await marks(db.sql)).toEqual([day]);
    const [row] = await db.sql.begin(async (tx) => {
      await tx.unsafe(`set local timezone = '${zone}'`);
      return tx`
        select
          (select sum(events)::int from events_daily where bucket = ${new Date(day)}) as n,
          extract(epoch from ${new Date(day)}::timestamptz + interval '1 day' - ${new Date(day)}::timestamptz)::int / 3600 as "dayHours"
      `;
    });
    expect(row?.dayHours).toBe(25); // the zone does make that day 25 hours long: the test can fail
    expect(row?.n).toBe(2); // 'before' and 'next' are other UTC days
  });

  it('has a zone whose daylight time makes the test day 25 hours long on any date, leap years too', async () => {
    const days = ['2027-01-01', '2027-02-28', '2027-03-01', '2027-12-31', '2028-02-28', '2028-02-29', '2028-03-01', '2028-12-31'];
    for (const iso of days) {
      const day = Date.parse(`${iso}T00:00:00Z`);
      const [row] = await db.sql.begin(async (tx) => {
        await tx.unsafe(`set local timezone = '${dstEndingOn(day)}'`);
        return tx`select extract(epoch from ${new Date(day)}::timestamptz + interval '1 day' - ${new Date(day)}::timestamptz)::int / 3600 as hours`;
      });
      expect({ iso, hours: row?.hours }).toEqual({ iso, hours: 25 });
    }
  });
});
