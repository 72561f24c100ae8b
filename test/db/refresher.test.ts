import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { AggregateRefresher } from '../../src/db/refresher.js';
import { GroupCommitWriter } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { createTestDatabase, first, modeAvailable, type TestDatabase } from '../helpers/db.js';
import { daysAgo, hoursAgo, thisHour, today } from '../helpers/time.js';

const runPolicy = async (sql: Sql, view: string) => {
  const job = first(
    await sql`
      select job_id from timescaledb_information.jobs
      where hypertable_name = ${view} and proc_name = 'policy_refresh_continuous_aggregate'
    `,
  );
  await sql`call run_job(${job.job_id}::int)`;
};
const count = async (sql: Sql, view: 'events_minutely' | 'events_hourly' | 'events_daily', bucketMs: number) =>
  Number(first(await sql`select coalesce(sum(events), 0)::int8 as n from ${sql(view)} where bucket = ${new Date(bucketMs)}`).n);
const watermark = async (sql: Sql, view: string) =>
  (first(await sql`select headcount_watermark(${view}::regclass) as mark`).mark as Date).getTime();

// Continuous aggregates and their watermarks exist only with TimescaleDB.
describe.skipIf(!modeAvailable('timescaledb'))('continuous aggregate refresh, timescaledb mode', () => {
  let db: TestDatabase;
  let refresher: AggregateRefresher;
  let writer: GroupCommitWriter;
  const write = (timeMs: number, userId: string) => writer.write([{ timeMs, kind: 'collect', userId, page: '', weight: 1 }]);

  beforeAll(async () => {
    db = await createTestDatabase('timescaledb');
    refresher = new AggregateRefresher(db.sql, 3_600_000, silentLogger); // ticks only when flushed here
    writer = new GroupCommitWriter(
      db.sql,
      { maxBatchRows: 100, maxQueueRows: 1000, flushDelayMs: 0, maxInflightFlushes: 1, retryAfterSeconds: 1 },
      silentLogger,
    );
  });
  afterAll(async () => {
    await writer?.close();
    await db?.drop();
  });
  beforeEach(async () => db.reset());

  it('a fresh database hides no old bucket once the policies have run', async () => {
    const days = [2, 10, 40, 59];
    for (const d of days)
      await db.sql`insert into events (time, kind, user_id) values (${new Date(daysAgo(d) + HOUR_MS)}, 'collect', 'u')`;
    for (const view of ['events_minutely', 'events_hourly', 'events_daily']) await runPolicy(db.sql, view);
    for (const d of days) {
      expect(await count(db.sql, 'events_hourly', daysAgo(d) + HOUR_MS)).toBe(1);
      expect(await count(db.sql, 'events_daily', daysAgo(d))).toBe(1);
    }
  });

  it('keeps the current minute, hour and day materialized, so reads of a busy hour aggregate no raw rows', async () => {
    await write(Date.now(), 'a');
    await refresher.flush();
    expect(await watermark(db.sql, 'events_minutely')).toBeGreaterThan(Date.now());
    expect(await watermark(db.sql, 'events_hourly')).toBe(thisHour() + HOUR_MS);
    expect(await watermark(db.sql, 'events_daily')).toBe(today() + DAY_MS);
    const plan = (
      await db.sql.unsafe(`explain select sum(events) from events_hourly where bucket = '${new Date(thisHour()).toISOString()}'`)
    )
      .map((r) => Object.values(r)[0])
      .join('\n');
    expect(await count(db.sql, 'events_hourly', thisHour())).toBe(1);
    // The real-time branch scans raw rows above the minute watermark only: none.
    expect(plan).toMatch(/_materialized_hypertable/);
    await write(Date.now(), 'b');
    expect(await count(db.sql, 'events_hourly', thisHour())).toBe(1); // not yet refreshed
    await refresher.flush();
    expect(await count(db.sql, 'events_hourly', thisHour())).toBe(2);
  });

  it('refreshes the buckets of a back-dated row at every level', async () => {
    await write(Date.now(), 'now');
    await refresher.flush();
    const late = daysAgo(20) + 5 * HOUR_MS + 17 * 60_000;
    await write(late, 'late');
    // TimescaleDB hides a row written below the watermark until its bucket is refreshed.
    expect(await count(db.sql, 'events_hourly', late - 17 * 60_000)).toBe(0);
    await refresher.flush();
    expect(await count(db.sql, 'events_minutely', late)).toBe(1);
    expect(await count(db.sql, 'events_hourly', late - 17 * 60_000)).toBe(1);
    expect(await count(db.sql, 'events_daily', daysAgo(20))).toBe(1);
  });

  it('after downtime starts its windows at the watermark, hiding nothing written meanwhile', async () => {
    await db.sql`insert into events (time, kind, user_id) values (${new Date(hoursAgo(3))}, 'collect', 'old')`;
    for (const view of ['events_minutely', 'events_hourly', 'events_daily']) await runPolicy(db.sql, view);
    const markBefore = await watermark(db.sql, 'events_minutely');
    expect(markBefore).toBeLessThan(Date.now());
    // Written while no refresher ran, above the watermark (real-time rows).
    const meanwhile = Math.max(markBefore + 60_000, thisHour() - HOUR_MS + 60_000);
    await db.sql`insert into events (time, kind, user_id) values (${new Date(meanwhile)}, 'collect', 'meanwhile')`;
    await refresher.flush();
    expect(await count(db.sql, 'events_minutely', Math.floor(meanwhile / 60_000) * 60_000)).toBe(1);
    expect(
      (await count(db.sql, 'events_daily', today())) +
        (today() > meanwhile ? await count(db.sql, 'events_daily', today() - DAY_MS) : 0),
    ).toBeGreaterThanOrEqual(1);
  });
});
