import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp, useTestApp } from '../helpers/app.js';
import type { Sql } from '../../src/db/client.js';
import { describeEachModeWithCitus, insertIntoEvents } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';
import { addDays, localLabel, localMidnight, nextDstDay } from '../helpers/zones.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

interface Sent {
  user: string;
  at: number;
  kind?: string;
  page?: string;
  country?: string;
}
const body = (events: Sent[]) => ({
  events: events.map((e) => ({
    kind: e.kind ?? 'pageview',
    user: e.user,
    time: new Date(e.at).toISOString(),
    ...(e.page === undefined ? {} : { page: e.page }),
    ...(e.country === undefined ? {} : { country: e.country }),
  })),
});

describeEachModeWithCitus('GET /v1/stats: visits', (mode) => {
  const t = useTestApp(mode);
  const send = async (events: Sent[], app: { http: TestApp['http'] } = t) => {
    const res = await app.http.post('/v1/events').send(body(events));
    expect(res.body).toMatchObject({ accepted: events.length, rejected: [] });
  };
  const data = async (query: Record<string, string>) => {
    const res = await t.http.get('/v1/stats').query(query);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { data: Record<string, unknown>[] }).data;
  };

  // A UTC day three days ago; +05:45 midnights fall at 18:15 UTC.
  const D = daysAgo(3);
  const at = (hh: number, mm: number) => D + hh * 60 * MINUTE + mm * MINUTE;
  const sessions: Sent[] = [
    // u1: 18:00 /a, 18:20 /b (one visit, 20 minutes), 19:00 /c (40 minutes later: another).
    { user: 'u1', at: at(18, 0), page: '/a' },
    { user: 'u1', at: at(18, 20), page: '/b' },
    { user: 'u1', at: at(19, 0), page: '/c' },
    // u2: 18:14 /a then a signup on /pricing at 18:30: one page view and an engagement event.
    { user: 'u2', at: at(18, 14), page: '/a' },
    { user: 'u2', at: at(18, 30), kind: 'signup', page: '/pricing' },
    // u3 (DE): 18:16 /b alone: a bounce.
    { user: 'u3', at: at(18, 16), page: '/b', country: 'DE' },
  ];
  const kathmandu = (date: string) => ({
    from: date,
    to: addDays(date, 2),
    granularity: 'day',
    timezone: '+05:45',
    metrics: 'visits,bounce_rate,visit_duration,pageviews_per_visit',
  });
  const localDay = isoDate(D); // D 18:00 UTC is D 23:45 at +05:45; 18:15 UTC starts D + 1 there.

  it('counts hand-computed visits in the local day where they start (+05:45), and UTC', async () => {
    await send(sessions);
    expect(await data(kathmandu(localDay))).toEqual([
      // u1's first visit (18:00, 1200 s, 2 views) and u2's (18:14, 960 s, 1 view + signup).
      {
        bucket: `${localDay}T00:00:00+05:45`,
        visits: 2,
        bounce_rate: 0,
        visit_duration: { mean: 1080, median: 1080 },
        pageviews_per_visit: 1.5,
      },
      // u1's second (19:00) and u3's (18:16): one instant each, bounces.
      {
        bucket: `${addDays(localDay, 1)}T00:00:00+05:45`,
        visits: 2,
        bounce_rate: 1,
        visit_duration: { mean: 0, median: 0 },
        pageviews_per_visit: 1,
      },
    ]);
    expect(
      await data({ from: localDay, to: addDays(localDay, 1), metrics: 'users,events,visits,bounce_rate,visit_duration' }),
    ).toEqual([
      {
        bucket: `${localDay}T00:00:00+00:00`,
        users: 3,
        events: 6,
        visits: 4,
        bounce_rate: 0.5,
        visit_duration: { mean: 540, median: 480 },
      },
    ]);
  });

  it('merges two visits when a back-dated event fills the gap between them', async () => {
    await send(sessions);
    // Sent later, dated 18:40: 20 minutes after u1's 18:20 and before its 19:00.
    await send([{ user: 'u1', at: at(18, 40), page: '/d' }]);
    expect(await data(kathmandu(localDay))).toEqual([
      {
        bucket: `${localDay}T00:00:00+05:45`,
        visits: 2,
        bounce_rate: 0,
        visit_duration: { mean: (3600 + 960) / 2, median: (3600 + 960) / 2 },
        pageviews_per_visit: 2.5,
      },
      {
        bucket: `${addDays(localDay, 1)}T00:00:00+05:45`,
        visits: 1,
        bounce_rate: 1,
        visit_duration: { mean: 0, median: 0 },
        pageviews_per_visit: 1,
      },
    ]);
    const range = { from: localDay, to: addDays(localDay, 1) };
    expect(await data({ ...range, metrics: 'visits', group_by: 'entry_page' })).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/a', visits: 2 },
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/b', visits: 1 },
    ]);
    expect(await data({ ...range, metrics: 'visits', group_by: 'exit_page' })).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, exit_page: '/b', visits: 1 },
      { bucket: `${localDay}T00:00:00+00:00`, exit_page: '/c', visits: 1 },
      { bucket: `${localDay}T00:00:00+00:00`, exit_page: '/pricing', visits: 1 },
    ]);
    expect(await data({ ...range, metrics: 'visits,bounce_rate', filter: 'country==DE' })).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, visits: 1, bounce_rate: 1 },
    ]);
  });

  it('extends a long visit from before its start, and merges at both ends of a batch whose events lie hours apart', async () => {
    // u9: a visit from 08:00 to 11:00 (an event every 20 minutes), one at 14:00, one at 20:00.
    const long = Array.from({ length: 10 }, (_, i) => ({ user: 'u9', at: at(8, 20 * i), page: `/l${i}` }));
    await send([...long, { user: 'u9', at: at(14, 0), page: '/m' }, { user: 'u9', at: at(20, 0), page: '/n' }]);
    // One batch: 07:45 (15 minutes before the long visit, which ends hours after that
    // event's window) and 20:25 (extends the 20:00 visit); the 14:00 visit between stays.
    await send([
      { user: 'u9', at: at(7, 45), page: '/first' },
      { user: 'u9', at: at(20, 25), page: '/last' },
    ]);
    const visits = await t.db.sql<{ started: Date; ended: Date; pageviews: string; entry_page: string; exit_page: string }[]>`
      select started, ended, pageviews::text, entry_page, exit_page from headcount_visits where user_id = 'u9' order by started
    `;
    expect(visits.map((v) => [v.started.getTime(), v.ended.getTime(), Number(v.pageviews), v.entry_page, v.exit_page])).toEqual([
      [at(7, 45), at(11, 0), 11, '/first', '/l9'],
      [at(14, 0), at(14, 0), 1, '/m', '/m'],
      [at(20, 0), at(20, 25), 2, '/n', '/last'],
    ]);
  });

  it('extends a visit with an event sent before its first, and the same visits whatever the order of arrival', async () => {
    const reversed = [...sessions].reverse();
    for (const e of reversed) await send([e]);
    const inOrder = await data(kathmandu(localDay));
    expect(inOrder[0]).toMatchObject({ visits: 2, visit_duration: { mean: 1080, median: 1080 } });
    await send([{ user: 'u2', at: at(17, 50), page: '/home' }]);
    expect(await data({ from: localDay, to: addDays(localDay, 1), metrics: 'visits', group_by: 'entry_page' })).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/a', visits: 1 },
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/b', visits: 1 },
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/c', visits: 1 },
      { bucket: `${localDay}T00:00:00+00:00`, entry_page: '/home', visits: 1 },
    ]);
  });

  it('makes one visit of two transactions with events of the same visitor at once (the second waits for the first)', async () => {
    const start = at(10, 0); // 10:40 and 10:50 in one transaction, 11:05 and 11:15 in the other
    const insert = (tx: Sql, minutes: number[]) =>
      insertIntoEvents(
        tx,
        mode,
        tx`
          insert into events (site, time, kind, user_id, page, weight)
          select 'default', ${new Date(start).toISOString()}::timestamptz + m * interval '1 minute', 'pageview', 'same', '/' || m, 1
          from unnest(${minutes}::int[]) m
        `,
      );
    // Another visitor's event first, committed: the day's chunk exists before (in
    // timescaledb mode the second transaction would wait for the first's new chunk).
    await send([{ user: 'other', at: at(1, 0) }]);
    let secondDone = false;
    let second: Promise<unknown> = Promise.resolve();
    await t.db.sql.begin(async (tx) => {
      await insert(tx as unknown as Sql, [40, 50]);
      second = t.db.sql.begin((tx2) => insert(tx2 as unknown as Sql, [65, 75])).then(() => (secondDone = true));
      // Until the second transaction waits for a lock or is done. Its events are in another
      // UTC hour, so in timescaledb mode only the visitor's lock makes it wait; in postgres
      // mode the site's day totals (totals_daily) do too, before the visits are read.
      for (;;) {
        const [row]: [{ waiting: boolean }?] = await t.db.sql`
          select exists (select from pg_locks where not granted) as waiting
        `;
        if (row?.waiting || secondDone) break;
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    await second;
    expect(
      await data({ from: localDay, to: addDays(localDay, 1), metrics: 'visits,visit_duration,pageviews_per_visit' }),
    ).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, visits: 2, visit_duration: { mean: 1050, median: 1050 }, pageviews_per_visit: 2.5 },
    ]);
  });

  // The plan of headcount_track_visits, which citus mode does not use (its visits are
  // tracked by sql/citus/headcount_track_visits_sites.sql, on the workers' shards).
  it.skipIf(mode === 'citus')(
    'keeps the same visits once headcount_visits has statistics (small batches then share one plan)',
    async () => {
      // 1,200 visits of another site, analyzed: headcount_track_visits then plans batches of
      // up to 100 events once for all (force_generic_plan), larger ones each for its own.
      await t.db.sql`
      insert into events (site, time, kind, user_id, page, weight)
      select 'filler', ${new Date(at(0, 0)).toISOString()}::timestamptz + (i % 600) * interval '1 minute', 'pageview', 'f' || i, '/', 1
      from generate_series(1, 1200) i
    `;
      await t.db.sql`analyze headcount_visits`;
      const [stats] = await t.db.sql<
        [{ rows: number }]
      >`select reltuples::int as rows from pg_class where oid = 'headcount_visits'::regclass`;
      expect(stats.rows).toBeGreaterThanOrEqual(1000);
      // One event at a time (each its own batch), in no order, then one batch over hours.
      for (const e of [...sessions].reverse()) await send([e]);
      await send([{ user: 'u1', at: at(18, 40), page: '/d' }]);
      const long = Array.from({ length: 10 }, (_, i) => ({ user: 'u9', at: at(8, 20 * i), page: `/l${i}` }));
      for (const e of long) await send([e]);
      await send([
        { user: 'u9', at: at(7, 45), page: '/first' },
        { user: 'u9', at: at(20, 25), page: '/last' },
      ]);
      const visits = await t.db.sql<
        { user: string; started: Date; ended: Date; pageviews: number; entry_page: string; exit_page: string }[]
      >`
      select user_id as user, started, ended, pageviews::int, entry_page, exit_page
      from headcount_visits where site = 'default' order by user_id, started
    `;
      expect(visits.map((v) => [v.user, v.started.getTime(), v.ended.getTime(), v.pageviews, v.entry_page, v.exit_page])).toEqual(
        [
          ['u1', at(18, 0), at(19, 0), 4, '/a', '/c'],
          ['u2', at(18, 14), at(18, 30), 1, '/a', '/pricing'],
          ['u3', at(18, 16), at(18, 16), 1, '/b', '/b'],
          ['u9', at(7, 45), at(11, 0), 11, '/first', '/l9'],
          ['u9', at(20, 25), at(20, 25), 1, '/last', '/last'],
        ],
      );
      // The setting is the session's own again after a write.
      const [mode] = await t.db.sql.begin(async (tx) => {
        await tx`insert into events (site, time, kind, user_id, page, weight) values ('default', now(), 'pageview', 'u7', '/', 1)`;
        return tx<[{ plan_cache_mode: string }]>`show plan_cache_mode`;
      });
      expect(mode.plan_cache_mode).toBe('auto');
    },
  );

  it('holds at most 256 visitor locks for a batch of 5,000 visitors (the shared lock table is for every session)', async () => {
    const locks = await t.db.sql.begin(async (tx) => {
      await insertIntoEvents(
        tx,
        mode,
        tx`
          insert into events (site, time, kind, user_id, page, weight)
          select 'default', ${new Date(at(2, 0)).toISOString()}::timestamptz + (i % 60) * interval '1 minute', 'pageview', 'many' || i, '/', 1
          from generate_series(1, 5000) i
        `,
      );
      const [row] = await tx<[{ n: number }]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and classid = 1986622313 and pid = pg_backend_pid()
      `;
      return row.n;
    });
    expect(locks).toBeGreaterThan(200);
    expect(locks).toBeLessThanOrEqual(256);
    expect(await data({ from: localDay, to: addDays(localDay, 1), metrics: 'visits' })).toEqual([
      { bucket: `${localDay}T00:00:00+00:00`, visits: 5000 },
    ]);
  });

  it('counts a visit in the local day where it starts across a DST change', async () => {
    const zone = ['America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'America/Santiago', 'Pacific/Auckland'].find((z) => {
      try {
        return nextDstDay(isoDate(daysAgo(55)), z, 50) !== undefined;
      } catch {
        return false;
      }
    });
    if (!zone) return; // no DST change in these zones within the back-dating window this time of year
    const d = nextDstDay(isoDate(daysAgo(55)), zone, 50);
    const next = localMidnight(addDays(d, 1), zone);
    await send([
      { user: 'late', at: localMidnight(d, zone) - MINUTE }, // the day before
      { user: 'early', at: localMidnight(d, zone) + MINUTE },
      // 30 minutes before the next midnight, 40 minutes long: counted on d.
      { user: 'across', at: next - 30 * MINUTE },
      { user: 'across', at: next - 10 * MINUTE },
      { user: 'across', at: next + 10 * MINUTE },
    ]);
    const rows = await data({
      from: addDays(d, -1),
      to: addDays(d, 2),
      granularity: 'day',
      timezone: zone,
      metrics: 'visits,visit_duration',
    });
    expect(rows).toEqual([
      { bucket: localLabel(localMidnight(addDays(d, -1), zone), zone), visits: 1, visit_duration: { mean: 0, median: 0 } },
      { bucket: localLabel(localMidnight(d, zone), zone), visits: 2, visit_duration: { mean: 1200, median: 1200 } },
      { bucket: localLabel(next, zone), visits: 0, visit_duration: { mean: null, median: null } },
    ]);
  });

  it('refuses what visits cannot answer, with the parameter named', async () => {
    const range = { from: localDay, to: addDays(localDay, 1) };
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ metrics: 'visits,sessions' }, 'metrics', /sessions is not a metric/],
      [{ metrics: 'visits', filter: 'page==/a' }, 'filter', /not page/],
      [{ metrics: 'visits', group_by: 'kind' }, 'group_by', /not kind/],
      [{ metrics: 'visits', kind: 'pageview' }, 'kind', /do not take kind/],
      [{ metrics: 'users,visits', group_by: 'country' }, 'group_by', /one kind of metric/],
      [{ group_by: 'entry_page' }, 'group_by', /dimensions of visits/],
    ];
    for (const [q, parameter, message] of cases) {
      const res = await t.http.get('/v1/stats').query({ ...range, ...q });
      expect(res.status, JSON.stringify(q)).toBe(400);
      expect(res.body.error.details?.[0]?.parameter ?? res.body.error.details?.[0]?.path, JSON.stringify(q)).toBe(parameter);
      expect(res.body.error.message).toMatch(message);
    }
  });
});

describeEachModeWithCitus('GET /v1/stats: visits across instances', (mode) => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp(mode);
    b = await startTestApp(mode, {}, a.db);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it("shows one instance's writes in the other's very next read of visits", async () => {
    const T = Date.now() - 2 * DAY;
    const from = isoDate(T);
    const to = addDays(from, 2);
    for (let i = 1; i <= 3; i++) {
      // Each write extends the same visit by 10 minutes (a different instance each time).
      const writer = i % 2 ? a : b;
      const res = await writer.http.post('/v1/events').send(body([{ user: 'rw', at: T + i * 10 * MINUTE, page: `/${i}` }]));
      expect(res.body).toMatchObject({ accepted: 1 });
      const reader = i % 2 ? b : a;
      const read = await reader.http.get('/v1/stats').query({ from, to, metrics: 'visits,visit_duration,bounce_rate' });
      expect(read.body.data).toEqual([
        {
          bucket: `${from}T00:00:00+00:00`,
          visits: 1,
          visit_duration: { mean: (i - 1) * 600, median: (i - 1) * 600 },
          bounce_rate: i === 1 ? 1 : 0,
        },
      ]);
    }
  });
});
