import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { DimensionRoller } from '../../src/db/roller.js';
import { type EventRow, insertEvents } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import type { RuntimeConfig } from '../../src/runtime.js';
import { HOUR_MS } from '../../src/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { createTestDatabase, describeEachMode, describeEachModeWithCitus, first, type TestDatabase } from '../helpers/db.js';
import { eventually } from '../helpers/time.js';

/**
 * The roller waits for a batch worth rolling: a roll costs per value it touches, so
 * rolling every second at a few events a second cost ~40 times more PostgreSQL CPU per
 * event than rolling thousands at once (npm run bench:roller). It rolls the queue up once
 * it holds ROLLUP_MIN_ROWS events or ROLLUP_MAX_WAIT_MS after its last pass; meanwhile
 * reads add what is queued.
 */
describeEachModeWithCitus('the dimension roller', (mode) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const start = async (timing: Partial<RuntimeConfig>) => {
    t = await startTestApp(mode, { rollupIntervalMs: 50, ...timing });
    // Its first look runs a pass at once: let it end on the empty queue.
    await t.runtime.roller.stop();
    t.runtime.roller.start();
    return t;
  };
  const send = (app: TestApp, n: number, from: number) =>
    app.http.post('/v1/events').send({
      events: Array.from({ length: n }, (_, i) => ({
        user: `u${from + i}`,
        kind: 'visit',
        country: i % 2 ? 'DE' : 'FR',
        time: new Date(Date.now() - HOUR_MS + (from + i) * 1000).toISOString(),
      })),
    });
  const queued = async (app: TestApp) => first(await app.db.sql`select count(*)::int as n from headcount_pending`).n as number;
  /** Users per country over the last two hours, by /v1/stats. */
  const byCountry = async (app: TestApp): Promise<[string, number][]> => {
    const res = await app.http.get('/v1/stats').query({
      from: `${new Date(Date.now() - 2 * HOUR_MS).toISOString().slice(0, 13)}:00:00Z`,
      to: `${new Date(Date.now() + 60_000).toISOString().slice(0, 16)}Z`,
      group_by: 'country',
    });
    expect(res.status).toBe(200);
    return (res.body as { data: { country: string; users: number }[] }).data.map((r) => [r.country, r.users]);
  };

  it('leaves fewer than ROLLUP_MIN_ROWS queued until ROLLUP_MAX_WAIT_MS, and reads count them meanwhile', async () => {
    const app = await start({ rollupMinRows: 100, rollupMaxWaitMs: 600_000 });
    expect((await send(app, 10, 0)).status).toBe(200);
    // Ten looks later, still queued, and answered; and each look counted the queue (citus
    // mode's count failed at every look: /readyz then answered 503 background_job_failing).
    await new Promise((r) => setTimeout(r, 500));
    expect(await queued(app)).toBe(10);
    expect(app.runtime.roller.health.status()).toMatchObject({ ok: true, failuresInARow: 0 });
    expect(await byCountry(app)).toEqual([
      ['DE', 5],
      ['FR', 5],
    ]);
    // The 100th queued event makes the queue worth a pass.
    expect((await send(app, 90, 10)).status).toBe(200);
    expect((await eventually(() => queued(app), 0, 10_000)).value).toBe(0);
    expect(await byCountry(app)).toEqual([
      ['DE', 50],
      ['FR', 50],
    ]);
  });

  it('rolls up a short queue ROLLUP_MAX_WAIT_MS after its last pass', async () => {
    const app = await start({ rollupMinRows: 20_000, rollupMaxWaitMs: 300 });
    expect((await send(app, 10, 0)).status).toBe(200);
    expect((await eventually(() => queued(app), 0, 10_000)).value).toBe(0);
    expect(await byCountry(app)).toEqual([
      ['DE', 5],
      ['FR', 5],
    ]);
  });
});

/**
 * Reads of the last minutes union the parts inserts appended since the last fold, so the
 * roller folds them every FOLD_INTERVAL_MS, whatever ROLLUP_INTERVAL_MS, and between the
 * batches of a pass, which over a long queue takes seconds; but only while its instance's
 * writer stores rows: idle, every ROLLUP_INTERVAL_MS.
 */
describeEachModeWithCitus("the roller's folds", (mode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(mode);
  });
  afterAll(async () => db?.drop());
  const appended = async () =>
    first(await db.sql`select count(*)::int as n from events_minutely_parts where part <> 0`).n as number;
  /** As the writer inserts (citus mode: no trigger, the statement adds to the aggregates). */
  const insert = (events: EventRow[]) => insertEvents(db.sql, events, { callInserted: mode === 'citus' });
  const rows = (n: number, from: number): EventRow[] =>
    Array.from({ length: n }, (_, i) => ({
      site: 'f',
      timeMs: Date.now(),
      kind: 'view',
      userId: `u${from + i}`,
      page: '/',
      weight: 1,
    }));

  it('folds every FOLD_INTERVAL_MS while it looks at the queue only every ROLLUP_INTERVAL_MS', async () => {
    await db.reset();
    let foldedKeys = 0;
    const roller = new DimensionRoller(
      db.sql,
      { intervalMs: 600_000, minRows: 1, maxWaitMs: 0, foldIntervalMs: 50, foldMinWrites: 1 },
      silentLogger,
      () => {},
      (keys) => (foldedKeys += keys),
    );
    roller.start();
    try {
      // Its first look ran a pass; the next is ten minutes away.
      await new Promise((r) => setTimeout(r, 200));
      const before = foldedKeys;
      for (let i = 0; i < 3; i++) await insert(rows(5, 5 * i));
      // Folded: the parts are gone, and folds wrote keys since the inserts (counted by the
      // folds, not seen between them: on a loaded machine a fold came before the parts
      // were looked at, one CI run).
      expect((await eventually(appended, 0, 5_000)).value).toBe(0);
      expect(foldedKeys).toBeGreaterThan(before);
      // Folded, not rolled: the queue waits for the next look.
      expect(first(await db.sql`select count(*)::int as n from headcount_pending`).n).toBe(15);
    } finally {
      await roller.stop();
    }
  });

  /**
   * A roller told its writer's writes (`written`), folding every 50 ms once it stored
   * `foldMinWrites` writes and looking at the queue every ten minutes, started; `body`
   * runs once its first look has folded (and run a pass), with the folds since.
   */
  async function withCountedWrites(
    foldMinWrites: number,
    body: (roller: { written: (n: number) => void; foldsSince: () => number }) => Promise<void>,
  ): Promise<void> {
    await db.reset();
    let written = 0;
    let folds = 0;
    const roller = new DimensionRoller(
      db.sql,
      { intervalMs: 600_000, minRows: 1, maxWaitMs: 0, foldIntervalMs: 50, foldMinWrites, written: () => written },
      silentLogger,
      () => {},
      () => folds++,
    );
    roller.start();
    try {
      await new Promise((r) => setTimeout(r, 200));
      const before = folds;
      await body({ written: (n) => (written += n), foldsSince: () => folds - before });
    } finally {
      await roller.stop();
    }
  }

  it('folds every FOLD_INTERVAL_MS only while the writer stores rows', async () => {
    await withCountedWrites(1, async ({ written, foldsSince }) => {
      // Inserts of another instance (or psql): this writer stored nothing.
      for (let i = 0; i < 3; i++) await insert(rows(5, 5 * i));
      await new Promise((r) => setTimeout(r, 600));
      expect(foldsSince()).toBe(0);
      expect(await appended()).toBeGreaterThan(0);
      // This writer stores rows: folded within a fold interval or so.
      written(1);
      expect((await eventually(appended, 0, 5_000)).value).toBe(0);
      expect(foldsSince()).toBeGreaterThan(0);
    });
  });

  it('folds before its next look only once the writer stored FOLD_MIN_WRITES writes since the last fold', async () => {
    await withCountedWrites(3, async ({ written, foldsSince }) => {
      for (let i = 0; i < 2; i++) {
        await insert(rows(5, 5 * i));
        written(1);
      }
      // Two writes of three: not folded, however many fold intervals go by.
      await new Promise((r) => setTimeout(r, 600));
      expect(foldsSince()).toBe(0);
      expect(await appended()).toBeGreaterThan(0);
      await insert(rows(5, 10));
      written(1);
      expect((await eventually(appended, 0, 5_000)).value).toBe(0);
      expect(foldsSince()).toBe(1);
    });
  });

  it('folds between the batches of a pass', async () => {
    await db.reset();
    const folds: number[] = [];
    const roller = new DimensionRoller(
      db.sql,
      { intervalMs: 600_000, minRows: 1, maxWaitMs: 0, foldIntervalMs: 0, foldMinWrites: 1, rollBatchRows: 5 },
      silentLogger,
      () => {},
      (keys) => folds.push(keys),
    );
    for (let i = 0; i < 6; i++) await insert(rows(5, 5 * i));
    expect(await appended()).toBeGreaterThan(0);
    expect(await roller.pass()).toBe(30);
    expect(folds.length).toBeGreaterThan(0);
    expect(folds[0]).toBeGreaterThan(0);
    expect(await appended()).toBe(0);
  });
});

// Without citus mode: these insert into events by SQL, which citus mode's events (no
// trigger) do not add to the aggregates.
describeEachMode("the roller's quarter hours", (mode) => {
  it("rolls every event into its site's, kind's and UTC quarter hour's row and that quarter's row of every kind (*), and expires them with the raw events", async () => {
    const t = await startTestApp(mode);
    try {
      await t.runtime.roller.stop();
      const quarter = Math.floor((Date.now() - 2 * HOUR_MS) / (15 * 60_000)) * 15 * 60_000;
      await t.db.sql`
        insert into events (site, time, kind, user_id)
        select 'q', ${new Date(quarter)}::timestamptz + i * interval '1 minute', (array['a', 'b'])[1 + i % 2], 'u' || i % 7
        from generate_series(0, 29) i
      `;
      await t.db.sql`select headcount_roll_up()`;
      expect(
        await t.db.sql`
          select extract(epoch from bucket)::int8 * 1000 as ms, kind, events::int, round(hll_cardinality(users))::int as users
          from kinds_15m where site = 'q' order by bucket, kind
        `,
      ).toEqual([
        { ms: quarter, kind: '*', events: 15, users: 7 },
        { ms: quarter, kind: 'a', events: 8, users: 7 },
        { ms: quarter, kind: 'b', events: 7, users: 7 },
        { ms: quarter + 15 * 60_000, kind: '*', events: 15, users: 7 },
        { ms: quarter + 15 * 60_000, kind: 'a', events: 7, users: 7 },
        { ms: quarter + 15 * 60_000, kind: 'b', events: 8, users: 7 },
      ]);
      // A quarter older than the raw events' retention goes with the next expiry.
      await t.db.sql`
        insert into kinds_15m (site, bucket, kind, events, users)
        select 'q', now() - s.retention - interval '1 day', 'a', 1, k.users from headcount_settings s, kinds_15m k limit 1
      `;
      expect(first(await t.db.sql`select headcount_expire_dimensions()::int as n`).n).toBeGreaterThanOrEqual(1);
      expect(first(await t.db.sql`select count(*)::int as n from kinds_15m where site = 'q'`).n).toBe(6);
    } finally {
      await t.close();
    }
  });
});

describeEachMode("the roller's parts", (mode) => {
  it('appends each roll as parts of its own without rewriting the rows it adds to, and folds them into part 0 when due, the answers unchanged', async () => {
    const t = await startTestApp(mode);
    try {
      await t.runtime.roller.stop();
      const hour = Math.floor((Date.now() - 2 * HOUR_MS) / HOUR_MS) * HOUR_MS;
      const add = (users: string[], country: string) => t.db.sql`
        insert into events (site, time, kind, user_id, country)
        select 'p', ${new Date(hour)}::timestamptz + i * interval '1 minute', 'view', u, ${country}
        from unnest(${users}::text[]) with ordinality x(u, i)
      `;
      const roll = async () => first(await t.db.sql`select headcount_roll_up() as n`).n as number;
      /** The rows of DE's key of kind * in each table that has it, with their row versions. */
      const rows = (table: string) => t.db.sql<{ part: string; xmin: string; events: number }[]>`
        select part::text, xmin::text, events::int from ${t.db.sql(table)}
        where site = 'p' and dims = 'country' and kind = '*' and vals = '{DE}' order by part
      `;
      // In a repeatable read transaction, as the service reads: read alone, a call that a
      // refresher pass overlaps is refused (headcount_check_snapshot), as happened once in CI.
      const answer = async () =>
        t.db.sql.begin(
          'isolation level repeatable read, read only',
          (tx) => tx`
            select array_to_json(group_values) as g, users::int, events::int
            from headcount_stats('p', ${new Date(hour)}::timestamptz, ${new Date(hour + HOUR_MS)}::timestamptz, group_by => 'country')
          `,
        );
      const quarters = async () =>
        (await t.db.sql`select part::text from kinds_15m where site = 'p' and kind = '*'`).map((r) =>
          r.part === '0' ? 'folded' : 'part',
        );

      await add(['a', 'b', 'c'], 'DE');
      await add(['x'], 'FR');
      expect(await roll()).toBe(4);
      const [first1] = await rows('dimensions_daily');
      expect(first1).toMatchObject({ events: 3 });
      expect(first1!.part).not.toBe('0');

      // A second roll adds a part of its own: the first is not rewritten (same row version).
      await add(['a', 'd'], 'DE');
      expect(await roll()).toBe(2);
      for (const table of ['dimensions_daily', 'dimensions_hourly']) {
        const [one, two] = await rows(table);
        expect(await rows(table), table).toHaveLength(2);
        expect(one, table).toMatchObject({ events: 3 });
        expect(two, table).toMatchObject({ events: 2 });
        if (table === 'dimensions_daily') expect(one).toEqual(first1);
      }
      expect(await quarters()).toEqual(['part', 'part']);
      const before = await answer();
      expect(before).toEqual([
        { g: ['DE'], users: 4, events: 5 },
        { g: ['FR'], users: 1, events: 1 },
      ]);

      // Not due: parts seconds old, two rolls' worth.
      expect(first(await t.db.sql`select headcount_fold_parts()::int as n`).n).toBe(0);
      expect(first(await t.db.sql`select headcount_fold_parts(interval '1 hour', 3)::int as n`).n).toBe(0);
      // Due by count (2 rolls' parts), then into the part 0 rows a fold made before.
      expect(first(await t.db.sql`select headcount_fold_parts(interval '1 hour', 2)::int as n`).n).toBeGreaterThan(0);
      for (const table of ['dimensions_daily', 'dimensions_hourly']) {
        expect(await rows(table), table).toEqual([expect.objectContaining({ part: '0', events: 5 })]);
      }
      expect(await quarters()).toEqual(['folded']);
      expect(await answer()).toEqual(before);
      expect(first(await t.db.sql`select count(*)::int as n from dimensions_daily where part <> 0`).n).toBe(0);

      await add(['e', 'a'], 'DE');
      expect(await roll()).toBe(2);
      expect(first(await t.db.sql`select headcount_fold_parts(interval '0')::int as n`).n).toBeGreaterThan(0);
      for (const table of ['dimensions_daily', 'dimensions_hourly']) {
        expect(await rows(table), table).toEqual([expect.objectContaining({ part: '0', events: 7 })]);
      }
      expect(await answer()).toEqual([
        { g: ['DE'], users: 5, events: 7 },
        { g: ['FR'], users: 1, events: 1 },
      ]);
    } finally {
      await t.close();
    }
  });
});
