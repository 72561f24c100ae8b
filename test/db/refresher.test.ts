import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { LateEventRefresher } from '../../src/db/refresher.js';
import { GroupCommitWriter } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { HOUR_MS } from '../../src/time.js';
import { createTestDatabase, modeAvailable, type TestDatabase } from '../helpers/db.js';
import { daysAgo, hoursAgo } from '../helpers/time.js';

const runPolicy = async (sql: Sql, view: string) => {
  const [job] = await sql`
    select job_id from timescaledb_information.jobs
    where hypertable_name = ${view} and proc_name = 'policy_refresh_continuous_aggregate'
  `;
  await sql`call run_job(${job!.job_id}::int)`;
};
const hourCount = async (sql: Sql, hourMs: number) =>
  Number((await sql`select coalesce(sum(events), 0)::int8 as n from events_hourly where bucket = ${new Date(hourMs)}`)[0]!.n);
const dayCount = async (sql: Sql, dayMs: number) =>
  Number((await sql`select coalesce(sum(events), 0)::int8 as n from events_daily where bucket = ${new Date(dayMs)}`)[0]!.n);

// Continuous aggregates and their watermark exist only with TimescaleDB.
describe.skipIf(!modeAvailable('timescaledb'))('back-dated events in timescaledb mode', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('timescaledb');
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => db.reset());

  it('a fresh database hides no old bucket once the policies have run', async () => {
    const days = [2, 10, 40, 59];
    for (const d of days)
      await db.sql`insert into events (time, kind, user_id) values (${new Date(daysAgo(d) + HOUR_MS)}, 'collect', 'u')`;
    await runPolicy(db.sql, 'events_hourly');
    await runPolicy(db.sql, 'events_daily');
    for (const d of days) {
      expect(await hourCount(db.sql, daysAgo(d) + HOUR_MS)).toBe(1);
      expect(await dayCount(db.sql, daysAgo(d))).toBe(1);
    }
  });

  it('a row below the watermark is hidden until its bucket is refreshed; the refresher refreshes just that', async () => {
    await db.sql`insert into events (time, kind, user_id) values (${new Date(hoursAgo(3))}, 'collect', 'anchor')`;
    await runPolicy(db.sql, 'events_hourly');
    await runPolicy(db.sql, 'events_daily');
    const refresher = new LateEventRefresher(db.sql, 60_000, silentLogger); // never ticks by itself here
    const writer = new GroupCommitWriter(
      db.sql,
      { maxBatchRows: 100, maxQueueRows: 1000, flushDelayMs: 0, maxInflightFlushes: 2, retryAfterSeconds: 1 },
      silentLogger,
      (rows) => refresher.note(rows),
    );
    const late = daysAgo(20) + 5 * HOUR_MS;
    await writer.write([{ timeMs: late, kind: 'collect', userId: 'late', page: '', weight: 1 }]);
    // This is TimescaleDB's behaviour that the refresher exists for.
    expect(await hourCount(db.sql, late)).toBe(0);

    // Rows between the watermark and now stay real-time: refreshing must not hide them.
    const recent = hoursAgo(1) + 60_000;
    await writer.write([{ timeMs: recent, kind: 'collect', userId: 'recent', page: '', weight: 1 }]);
    const [before] = await db.sql`select headcount_watermark('events_hourly') as mark`;

    await refresher.flush();
    expect(await hourCount(db.sql, late)).toBe(1);
    expect(await dayCount(db.sql, daysAgo(20))).toBe(1);
    expect(await hourCount(db.sql, hoursAgo(1))).toBe(1);
    const [after] = await db.sql`select headcount_watermark('events_hourly') as mark`;
    expect(after!.mark).toEqual(before!.mark);
    await writer.close();
  });
});
