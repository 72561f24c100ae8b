import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { refreshAggregates } from '../../src/db/refresher.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { HOUR_MS } from '../../src/time.js';
import { backendPid, createTestDatabase, first, modeAvailable, type TestDatabase, waitsForLock, withAdmin } from '../helpers/db.js';
import { collectRow } from '../helpers/events.js';
import { eventually } from '../helpers/time.js';

const TEN_MINUTES = 600_000;

/**
 * TimescaleDB 2.28 decides at commit whether a write invalidates the continuous
 * aggregates: only if its time lies below the hypertable's invalidation threshold as it
 * reads it then. A refresh moves the threshold (its first transaction) and then
 * materializes (its third) without waiting for writers that read the old threshold: a
 * write whose time lies between the old and the new threshold, that read the old one at
 * commit and became visible after the refresh's materialization, is neither materialized
 * nor logged. The refresher moves "through" before the threshold, so such a write (made
 * just after a 10-minute boundary with a time just before it) is marked stale; the next
 * pass then found no invalidation for it and cleared the mark: the write was gone from
 * every aggregate for good (issue 17, item 0).
 *
 * Made deterministic here: the write is a prepared transaction (TimescaleDB logs at
 * PREPARE what it would log at COMMIT, and the rows stay invisible until COMMIT PREPARED),
 * and the pass is held, after it moved "through" and before its first refresh, by a lock
 * on the catalog table every refresh registers in.
 */
describe.skipIf(!modeAvailable('timescaledb'))('a write that commits across the refresh moving the invalidation threshold, timescaledb mode', () => {
  let db: TestDatabase;
  let refresher: Sql;
  let writer: Sql;
  let prepared = false;
  beforeAll(async () => {
    db = await createTestDatabase('timescaledb');
    refresher = createSql(db.url, { max: 1 });
    writer = createSql(db.url, { max: 1 });
    prepared = Number(first(await db.sql`select current_setting('max_prepared_transactions') as n`).n) > 0;
  });
  afterAll(async () => {
    await Promise.all([refresher?.end(), writer?.end()]);
    await db?.drop();
  });

  it('is materialized before its stale mark is cleared', async () => {
    expect(prepared, 'the test server needs max_prepared_transactions > 0 (test/helpers/global-setup.ts)').toBe(true);
    const through = Math.floor(Date.now() / TEN_MINUTES) * TEN_MINUTES;
    // Another site's event in the last 10 minutes before the boundary: the first pass puts
    // the 10-minute watermark at the boundary, so a bucket before it is answered from
    // what is materialized.
    await insertEvents(db.sql, [collectRow(through - 60_000, 'sentinel', 'busy')]);
    const written = through - 3 * TEN_MINUTES;

    const refresherPid = await backendPid(refresher);
    const writerPid = await backendPid(writer);
    const database = new URL(db.url).pathname.slice(1);
    let pass!: Promise<unknown>;
    let write!: Promise<unknown>;
    await withAdmin(async (admin) => {
      await admin`begin`;
      await admin`lock table _timescaledb_catalog.continuous_aggs_jobs_refresh_ranges in access exclusive mode`;
      // The first pass of a new database: it moves "through" from -infinity to the boundary
      // and waits before its first refresh (the threshold is still at its minimum).
      pass = refreshAggregates(refresher);
      expect((await eventually(() => waitsForLock(db.sql, refresherPid, 'relation'), true, 10_000)).value).toBe(true);
      // The write comes after the move (its hour is marked stale) and is prepared.
      write = (async () => {
        await writer`begin`;
        await insertEvents(writer, [collectRow(written, 'straddler')]);
        await writer`prepare transaction 'straddler'`;
      })();
      // Fixed, the write waits for the pass (its trigger's lock); unfixed, it prepares at once.
      const heldOrPrepared = async () =>
        (await waitsForLock(db.sql, writerPid, 'advisory')) ||
        (await db.sql`select from pg_prepared_xacts where gid = 'straddler'`).length > 0;
      expect((await eventually(heldOrPrepared, true, 10_000)).value).toBe(true);
      await admin`commit`;
    }, database);
    await pass;
    await write;
    await db.sql`commit prepared 'straddler'`;
    expect((await db.sql`select from headcount_stale_hours where site = 'default'`).length).toBe(1);

    await refreshAggregates(refresher);
    expect((await db.sql`select from headcount_stale_hours where site = 'default'`).length).toBe(0);
    const hour = Math.floor(written / HOUR_MS) * HOUR_MS;
    const [row] = await db.sql`
      select coalesce(sum(events), 0)::int as events from events_hourly where site = 'default' and bucket = ${new Date(hour)}
    `;
    expect(row!.events).toBe(1);
  });
});
