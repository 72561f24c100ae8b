import { afterAll, beforeAll, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachMode } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { daysAgo, isoDate } from '../helpers/time.js';

/**
 * Read-your-writes while the aggregates are re-materialized under the reads (issue 17,
 * item 0). Back-dated writes land below every watermark, on bucket edges (a day's,
 * an hour's, ten minutes' first instant: where a refresh split into batches used to
 * leave a bucket unmaterialized) and inside buckets, days apart (so that a refresh
 * covers many buckets); refresher passes run back to back (a 1 ms interval). After
 * each write, and on every later round, the day, month and /v1/stats day answers of
 * every day written so far are read at once: each must hold every acknowledged event,
 * exactly (small sets are exact in hll), whether its marks are still there or a pass
 * has just cleared them.
 */
describeEachMode('read-your-writes under back-to-back refresher passes', (mode) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(mode, { refreshIntervalMs: 1 });
    await t.db.reset();
    await t.materialize();
  });
  afterAll(async () => t?.close());

  const ROUNDS = Number(process.env.RACE_ROUNDS ?? 40);

  it('answers every day, month and stats read with every back-dated write, on bucket edges too', async () => {
    const random = prng(17);
    const usersByDay = new Map<number, Set<string>>();
    const distinct = (fromDay: number, toDay: number): number => {
      const all = new Set<string>();
      for (let day = fromDay; day <= toDay; day += DAY_MS) for (const u of usersByDay.get(day) ?? []) all.add(u);
      return all.size;
    };
    const failures: string[] = [];
    /**
     * On a failure, for whoever reads the run's log: the month read again at once, each
     * day of it against what was written, the stale marks, and (timescaledb) what
     * TimescaleDB's invalidation logs still hold.
     */
    const whatTheDatabaseHolds = async (day: number): Promise<string> => {
      const again = (await t.http.get('/monthly_uniques').query({ d: isoDate(day) })).text.trim();
      const days: string[] = [];
      for (let d = day - 29 * DAY_MS; d <= day; d += DAY_MS) {
        const want = usersByDay.get(d)?.size ?? 0;
        const got = Number((await t.http.get('/daily_uniques').query({ d: isoDate(d) })).text);
        if (want || got) days.push(`${isoDate(d)} ${got}/${want}`);
      }
      const marks = await t.db.sql`select site, hour, version from headcount_stale_hours order by hour`;
      const logs =
        mode === 'timescaledb'
          ? await t.db.sql`
              select 'materialization' as log, materialization_id as id, lowest_modified_value as low, greatest_modified_value as high
              from _timescaledb_catalog.continuous_aggs_materialization_invalidation_log
              union all
              select 'hypertable', hypertable_id, lowest_modified_value, greatest_modified_value
              from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
            `
          : [];
      const state = mode === 'timescaledb' ? await t.db.sql`select * from headcount_refresh_state` : [];
      return `  month read again: ${again}; days (got/written): ${days.join(', ')}; marks: ${JSON.stringify(marks)}; invalidations: ${JSON.stringify(logs)}; refresh state: ${JSON.stringify(state)}`;
    };
    for (let round = 0; round < ROUNDS && failures.length === 0; round++) {
      const edge = daysAgo(2 + Math.floor(random() * 25)) + [0, 7 * HOUR_MS, 13 * HOUR_MS + 40 * 60_000][round % 3]!;
      const inside = daysAgo(30 + Math.floor(random() * 25)) + Math.floor(random() * DAY_MS);
      const events = [edge, inside].map((at, i) => ({ user: `r${round}-${i}`, at }));
      const res = await t.http.post('/v1/events').send({
        events: events.map((e) => ({ user: e.user, time: new Date(e.at).toISOString(), kind: 'visit' })),
      });
      expect(res.status).toBe(200);
      for (const e of events) {
        const day = Math.floor(e.at / DAY_MS) * DAY_MS;
        usersByDay.set(day, (usersByDay.get(day) ?? new Set()).add(e.user));
      }
      // Every day written so far, right after the write and while passes run: four days at
      // a time (the service runs at most four stats queries at once per key, src/v1/slots.ts),
      // each day's three reads at once.
      const days = [...usersByDay.keys()];
      for (let i = 0; i < days.length; i += 4) {
        await Promise.all(
          days.slice(i, i + 4).map(async (day) => {
            const [daily, monthly, stats] = await Promise.all([
              t.http.get('/daily_uniques').query({ d: isoDate(day) }),
              t.http.get('/monthly_uniques').query({ d: isoDate(day) }),
              t.http.get('/v1/stats').query({ from: isoDate(day), to: isoDate(day + DAY_MS), granularity: 'day' }),
            ]);
            const want = { daily: usersByDay.get(day)!.size, monthly: distinct(day - 29 * DAY_MS, day) };
            const got = {
              daily: Number(daily.text),
              monthly: Number(monthly.text),
              stats: (stats.body.data?.[0]?.users as number | undefined) ?? `${stats.status} ${JSON.stringify(stats.body)}`,
            };
            if (got.daily !== want.daily || got.monthly !== want.monthly || got.stats !== want.daily) {
              failures.push(`round ${round}, day ${isoDate(day)}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
              failures.push(await whatTheDatabaseHolds(day));
            }
          }),
        );
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);
});

/**
 * The same on fresh databases, where the first refresher pass materializes writes that
 * were never marked stale (nothing was materialized, `through` had not moved: they lie
 * above every watermark) and moves every watermark over them while the reads run. In
 * production the same happens to the writes of the current 10 minutes at each boundary.
 * Each round starts an app on a new database (its refresher's first pass at once, then
 * back to back), writes a week of events, and reads them at once: /v1/stats per UTC and
 * Asia/Kolkata day and as one total, and the day and month answers of the seed API. Before
 * headcount_stats was volatile, the /v1/stats reads lost what the pass had just
 * materialized (test/read/stats-snapshot-race.test.ts shows that interleaving alone).
 */
describeEachMode('read-your-writes while the first refresher pass of a fresh database runs', (mode) => {
  const ROUNDS = Number(process.env.FRESH_RACE_ROUNDS ?? 12);

  it('answers every read of a week written at once with all of it', async () => {
    const failures: string[] = [];
    const random = prng(20);
    const firstDay = daysAgo(9);
    for (let round = 0; round < ROUNDS && failures.length === 0; round++) {
      const t = await startTestApp(mode, { refreshIntervalMs: 1 });
      try {
        // 7 UTC days, a few events each, on hour and day edges and inside hours.
        const times = Array.from({ length: 28 }, (_, i) => {
          const day = firstDay + (i % 7) * DAY_MS;
          return (
            day +
            [0, 5 * HOUR_MS, 18 * HOUR_MS + 30 * 60_000, 23 * HOUR_MS + 59 * 60_000][i % 4]! +
            Math.floor(random() * 60) * 1000
          );
        });
        const users = times.map((_, i) => `f${round}-${i % 9}`);
        const res = await t.http.post('/v1/events').send({
          events: times.map((at, i) => ({ user: users[i], time: new Date(at).toISOString(), kind: 'visit' })),
        });
        expect(res.status).toBe(200);
        const week = { from: isoDate(firstDay), to: isoDate(firstDay + 7 * DAY_MS) };
        const lastDay = firstDay + 6 * DAY_MS;
        const [utcDays, kolkataDays, total, daily, monthly] = await Promise.all([
          t.http.get('/v1/stats').query({ ...week, granularity: 'day' }),
          t.http.get('/v1/stats').query({ ...week, granularity: 'day', timezone: 'Asia/Kolkata' }),
          t.http.get('/v1/stats').query({ ...week, granularity: 'total' }),
          t.http.get('/daily_uniques').query({ d: isoDate(lastDay) }),
          t.http.get('/monthly_uniques').query({ d: isoDate(lastDay) }),
        ]);
        const sum = (r: { body: { data?: { events: number }[] } }) => (r.body.data ?? []).reduce((n, row) => n + row.events, 0);
        // Kolkata's week starts and ends 5.5 hours before the UTC one (nothing is written before it).
        const inKolkataWeek = times.filter((at) => at < lastDay + 18.5 * HOUR_MS).length;
        const got = {
          utcDays: sum(utcDays),
          kolkataDays: sum(kolkataDays),
          total: sum(total),
          totalUsers: total.body.data?.[0]?.users,
          daily: Number(daily.text),
          monthly: Number(monthly.text),
        };
        const want = {
          utcDays: times.length,
          kolkataDays: inKolkataWeek,
          total: times.length,
          totalUsers: new Set(users).size,
          daily: new Set(users.filter((_, i) => times[i]! >= lastDay)).size,
          monthly: new Set(users).size,
        };
        if (JSON.stringify(got) !== JSON.stringify(want))
          failures.push(`round ${round}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
      } finally {
        await t.close();
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);
});
