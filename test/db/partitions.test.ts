import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartitionMaintainer } from '../../src/db/partitions.js';
import { silentLogger } from '../../src/log.js';
import { DAY_MS } from '../../src/time.js';
import { createTestDatabase, first, type TestDatabase } from '../helpers/db.js';
import { compactDate, daysAgo, today } from '../helpers/time.js';

// Partitions are postgres mode's own retention; TimescaleDB drops chunks itself.
describe('day partitions, postgres mode', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    // Partitions as of now, as the service's maintenance makes them at start: the suite's
    // template may have been made before a UTC midnight (then the days ahead were counted
    // from the day before, and the last one of the window went to events_default).
    await db.sql`select headcount_maintain_partitions()`;
  });
  afterAll(async () => db?.drop());
  const partitions = async () =>
    (
      await db.sql`
        select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'events'::regclass order by 1
      `
    ).map((r) => r.relname as string);

  it('accepts events on every day of the retention window and up to the days ahead', async () => {
    await db.sql`
      insert into events (time, kind, user_id)
      select date_trunc('day', now() - interval '60 days', 'UTC') + d * interval '1 day', 'collect', 'u'
      from generate_series(0, 63) as d
    `;
    const { n } = first(await db.sql`select count(*)::int as n from events_daily`);
    expect(n).toBe(64);
    expect(first(await db.sql`select count(*)::int as n from events_default`).n).toBe(0);
  });

  it('drops the days that leave the window with their minutes and hours, keeps day sketches, adds days ahead', async () => {
    const tenDaysOn = new Date(Date.now() + 10 * DAY_MS);
    const [result] = await db.sql`select created, dropped from headcount_maintain_partitions(${tenDaysOn})`;
    expect(result!.dropped).toHaveLength(10);
    expect(result!.dropped).toContain(`events_p${compactDate(daysAgo(60))}`);
    expect(result!.created).toContain(`events_p${compactDate(today() + 13 * DAY_MS)}`);
    const parts = (await partitions()).filter((p) => p !== 'events_default');
    expect(parts[0]).toBe(`events_p${compactDate(daysAgo(50))}`);
    for (const relation of ['events_minutely', 'events_hourly', 'totals_hourly']) {
      const { oldest } = first(await db.sql`select min(bucket) as oldest from ${db.sql(relation)}`);
      expect(oldest).toEqual(new Date(daysAgo(50)));
    }
    // Day sketches are kept SKETCH_RETENTION_DAYS (400 by default), past the raw events.
    for (const relation of ['events_daily', 'totals_daily']) {
      const { oldest } = first(await db.sql`select min(bucket) as oldest from ${db.sql(relation)}`);
      expect(oldest).toEqual(new Date(daysAgo(60)));
    }
    const [later] = await db.sql`
      select dropped from headcount_maintain_partitions(${new Date(Date.now() + 400 * DAY_MS)}, 0, interval '400 days')
    `;
    expect(later!.dropped.length).toBeGreaterThan(0);
    const { n } = first(await db.sql`select count(*)::int as n from totals_daily where bucket < ${new Date(daysAgo(0))}`);
    expect(n).toBe(0);
  });

  it('takes a backfill of days before the window in a default partition, and keeps its day sketches', async () => {
    const old = daysAgo(300) + 3_600_000;
    await db.sql`insert into events (time, kind, user_id) values (${new Date(old)}, 'collect', 'a'), (${new Date(old)}, 'collect', 'b')`;
    expect(first(await db.sql`select count(*)::int as n from events_default`).n).toBe(2);
    await db.sql`select headcount_maintain_partitions()`;
    expect(first(await db.sql`select count(*)::int as n from events_default`).n).toBe(0);
    const [day] = await db.sql`
      select events, round(hll_cardinality(users))::int as users from totals_daily where bucket = ${new Date(daysAgo(300))}
    `;
    expect(day).toEqual({ events: 2, users: 2 });
  });

  it('lets one instance at a time maintain them (advisory lock)', async () => {
    const maintainer = new PartitionMaintainer(db.sql, 3_600_000, silentLogger);
    const other = await db.sql.reserve();
    try {
      await other`select pg_advisory_lock(${0x6865_6164})`;
      expect(await maintainer.runOnce()).toBe(false);
      await other`select pg_advisory_unlock(${0x6865_6164})`;
      expect(await maintainer.runOnce()).toBe(true);
    } finally {
      other.release();
    }
  });

  it('refuses updates and deletes, which the aggregates could not follow', async () => {
    await expect(db.sql`delete from events`).rejects.toMatchObject({ code: '0A000' });
    await expect(db.sql`update events set weight = 2`).rejects.toMatchObject({ code: '0A000' });
  });
});
