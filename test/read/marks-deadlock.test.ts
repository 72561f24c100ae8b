import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { clearMarks, readMarks } from '../../src/db/refresher.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { HOUR_MS } from '../../src/time.js';
import { backendPid, createTestDatabase, modeAvailable, type TestDatabase, waitsForLock } from '../helpers/db.js';
import { collectRow } from '../helpers/events.js';
import { eventually } from '../helpers/time.js';

/**
 * An insert below the watermark renews the stale marks of its hours, upserting them in
 * (site, hour) order (sql/timescaledb/headcount_apply_events.sql); a refresher pass
 * deletes the marks it saw (clearMarks). The delete locked its rows in its plan's order:
 * it deleted the mark of the later hour, then waited for the writer, which held the
 * earlier hour's mark and was waiting for the later one. "deadlock detected" failed the
 * writer's insert in a full run of the suite (test/v1/dimensions.test.ts, with the
 * service's refresher and roller running; 22 times in a minute of two writers and a
 * refresher looping).
 *
 * Made deterministic here with a third session holding the earlier mark: the writer
 * queues for it first, then the delete (which, unfixed, has deleted the later mark by
 * then); the third session lets go, and the writer takes the earlier mark and reaches
 * for the later one. Fixed, the delete takes the earlier mark first too: it queues behind
 * the writer and holds nothing the writer wants.
 *
 * timescaledb mode only: marks exist there alone (postgres mode keeps its aggregates
 * exact in the inserting transaction and has no refresher).
 */
describe.skipIf(!modeAvailable('timescaledb'))(
  'a refresher clearing stale marks while an insert renews them, timescaledb mode',
  () => {
    let db: TestDatabase;
    let holder: Sql;
    let refresher: Sql;
    let writer: Sql;
    beforeAll(async () => {
      db = await createTestDatabase('timescaledb');
      holder = createSql(db.url, { max: 1 });
      refresher = createSql(db.url, { max: 1 });
      writer = createSql(db.url, { max: 1 });
    });
    afterAll(async () => {
      await Promise.all([holder?.end(), refresher?.end(), writer?.end()]);
      await db?.drop();
    });

    it("locks the marks in the writers' order: both finish, and the renewed marks stay", async () => {
      const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
      const earlier = hour - 3 * HOUR_MS;
      const later = hour - 2 * HOUR_MS;
      await db.sql`update headcount_refresh_state set through = ${new Date(hour)}`;
      // The later hour's mark first: first in the table and in what the pass saw.
      await insertEvents(db.sql, [collectRow(later + 60_000, 'a')]);
      await insertEvents(db.sql, [collectRow(earlier + 60_000, 'a')]);
      const seen = (await readMarks(db.sql)).sort((x, y) => y.hour.getTime() - x.hour.getTime());
      expect(seen.map((m) => m.hour.getTime())).toEqual([later, earlier]);

      const writerPid = await backendPid(writer);
      const refresherPid = await backendPid(refresher);
      await holder`begin`;
      await holder`select from headcount_stale_hours where hour = ${new Date(earlier)} for update`;
      const write = insertEvents(writer, [collectRow(earlier + 120_000, 'b'), collectRow(later + 120_000, 'b')]);
      const written = write.then(
        () => 'stored',
        (err: unknown) => String(err),
      );
      expect((await eventually(() => waitsForLock(db.sql, writerPid, 'transactionid'), true, 10_000)).value).toBe(true);
      const clear = clearMarks(refresher, seen).then(
        (n) => n,
        (err: unknown) => String(err),
      );
      // Queued behind the writer for the earlier mark (unfixed: the later one deleted by then).
      expect((await eventually(() => waitsForLock(db.sql, refresherPid, 'tuple'), true, 10_000)).value).toBe(true);
      await holder`commit`;

      expect(await written).toBe('stored');
      // Both marks were renewed by the writer: neither is deleted.
      expect(await clear).toBe(0);
      const left = await readMarks(db.sql);
      expect(left.map((m) => m.hour.getTime()).sort()).toEqual([earlier, later]);
      for (const m of left) expect(m.version).toBeGreaterThan(Math.max(...seen.map((s) => s.version)));
    });
  },
);
