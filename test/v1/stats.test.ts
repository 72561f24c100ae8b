import type { TransactionSql } from 'postgres';
import { describe, expect, it } from 'vitest';
import { type EventRow, insertEvents } from '../../src/ingest/writer.js';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first, withAdminOf } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';
import { addDays, localDate, localLabel, localMidnight, nextDstDay } from '../helpers/zones.js';

const MINUTE_MS = 60_000;

interface Row {
  bucket: string;
  users: number;
  events: number;
  kind?: string;
  page?: string;
}
const data = (res: { body: unknown }): Row[] => (res.body as { data: Row[] }).data;

/** Exact distinct users and events per local date of `zone`. */
function expectedPerDay(events: { timeMs: number; user: string }[], zone: string, dates: string[]) {
  return dates.map((d) => {
    const of = events.filter((e) => localDate(e.timeMs, zone) === d);
    return { users: new Set(of.map((e) => e.user)).size, events: of.length };
  });
}

/**
 * Events around every local midnight of `dates` (and the one after the last): a minute
 * and an hour either side, on the dot, and half an hour after (where +05:30 and +05:45
 * days start inside a UTC hour). Users recur across days.
 */
function aroundMidnights(zone: string, dates: string[]): { timeMs: number; user: string }[] {
  const offsets = [-61, -31, -1, 0, 1, 14, 29, 31, 46, 59, 61].map((m) => m * MINUTE_MS);
  const events: { timeMs: number; user: string }[] = [];
  [...dates, addDays(dates.at(-1)!, 1)].forEach((d, day) => {
    offsets.forEach((off, i) => events.push({ timeMs: localMidnight(d, zone) + off, user: `u${(day * 3 + i) % 13}` }));
  });
  return events;
}

describeEachModeWithCitus('GET /v1/stats', (mode) => {
  const t = useTestApp(mode);
  const send = async (site: string, events: { timeMs: number; user: string }[], kind = 'visit') => {
    const res = await t.http
      .post('/v1/events')
      .send({ events: events.map((e) => ({ site, kind, user: e.user, time: new Date(e.timeMs).toISOString() })) });
    expect(res.body).toMatchObject({ accepted: events.length, rejected: [] });
  };
  const stats = (query: Record<string, string | number | string[]>) => t.http.get('/v1/stats').query(query);
  /**
   * `read` in a repeatable read transaction, and how many scans of raw events it started
   * (`scans`) or rows of them it read (`rows`): pg_stat_xact_user_tables before and after,
   * in that transaction (it holds what the backend has not flushed yet, earlier
   * transactions' counts too). Not in citus mode (undefined): the reads run on the
   * workers, whose statistics the coordinator's session does not see; the tests there
   * check what the answer rests on otherwise.
   */
  const withRawReads = <T>(what: 'scans' | 'rows', read: (sql: TransactionSql) => Promise<T>) =>
    t.db.sql.begin('isolation level repeatable read', async (sql): Promise<readonly [T, number | undefined]> => {
      if (mode === 'citus') return [await read(sql), undefined] as const;
      const counted = async () => {
        const [row] = await sql<[{ n: number }]>`
          select coalesce(sum(${what === 'scans' ? sql`coalesce(seq_scan, 0) + coalesce(idx_scan, 0)` : sql`coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)`}), 0)::int as n
          from pg_stat_xact_user_tables
          where relid = 'events'::regclass or relid in (select inhrelid from pg_inherits where inhparent = 'events'::regclass)
        `;
        return row.n;
      };
      const before = await counted();
      const result = await read(sql);
      return [result, (await counted()) - before] as const;
    });

  describe('time zones', () => {
    // A week of local days that ended two days ago: inside retention, in the past everywhere.
    const firstDate = isoDate(daysAgo(10));
    const dates = Array.from({ length: 7 }, (_, i) => addDays(firstDate, i));

    for (const [zone, alias] of [
      ['Asia/Kolkata', '+05:30'],
      ['Asia/Kathmandu', '+05:45'],
      ['UTC', '+00:00'],
    ] as const) {
      it(`counts each local day of ${zone} exactly, and the week as one union`, async () => {
        const site = zone.toLowerCase().replace('/', '-');
        const events = aroundMidnights(zone, dates);
        await send(site, events);
        const query = { site, from: dates[0]!, to: addDays(dates[6]!, 1), granularity: 'day', timezone: zone };
        const days = await stats(query);
        expect(days.status).toBe(200);
        expect(days.body.meta).toEqual({
          site,
          from: localLabel(localMidnight(dates[0]!, zone), zone),
          to: localLabel(localMidnight(addDays(dates[6]!, 1), zone), zone),
          timezone: zone,
          granularity: 'day',
          approximate: false,
          relative_standard_error: 0.0081,
        });
        expect(data(days).map((r: { bucket: string }) => r.bucket)).toEqual(
          dates.map((d) => localLabel(localMidnight(d, zone), zone)),
        );
        expect(data(days).map((r: { users: number; events: number }) => ({ users: r.users, events: r.events }))).toEqual(
          expectedPerDay(events, zone, dates),
        );

        const week = await stats({ ...query, granularity: 'total' });
        const inWeek = events.filter((e) => dates.includes(localDate(e.timeMs, zone)));
        expect(week.body.data).toEqual([
          {
            bucket: localLabel(localMidnight(dates[0]!, zone), zone),
            users: new Set(inWeek.map((e) => e.user)).size,
            events: inWeek.length,
          },
        ]);
        const sumOfDays = data(days).reduce((n: number, r: { users: number }) => n + r.users, 0);
        expect(week.body.data[0].users).toBeLessThan(sumOfDays);

        // The offset reads the same calendar (these zones have no DST).
        const byOffset = await stats({ ...query, timezone: alias });
        expect(byOffset.body.data).toEqual(days.body.data);

        // Hours of the zone: one local day in 24 buckets, each exact.
        const hours = await stats({ ...query, to: dates[1]!, granularity: 'hour' });
        expect(hours.body.data).toHaveLength(24);
        const startOfDay = localMidnight(dates[0]!, zone);
        data(hours).forEach((r: { bucket: string; users: number; events: number }, h: number) => {
          const of = events.filter((e) => e.timeMs >= startOfDay + h * HOUR_MS && e.timeMs < startOfDay + (h + 1) * HOUR_MS);
          expect(r, `hour ${h}`).toEqual({
            bucket: localLabel(startOfDay + h * HOUR_MS, zone),
            users: new Set(of.map((e) => e.user)).size,
            events: of.length,
          });
        });

        // psql gets the same answer from the same function, in a repeatable read
        // transaction as the service reads (under read committed, a refresher pass that
        // moves a watermark while it reads makes it refuse with 40001: docs/storage.md).
        const fromSql = await t.db.sql.begin(
          'isolation level repeatable read, read only',
          (sql) => sql`
            select bucket_label as bucket, users, events
            from headcount_stats(${site}, headcount_day_start(${dates[0]!}::date, ${zone}), headcount_day_start(${addDays(dates[6]!, 1)}::date, ${zone}), 'day', ${zone})
          `,
        );
        expect(fromSql.map((r) => ({ ...r }))).toEqual(days.body.data);
      });
    }

    it('gives a DST day of America/New_York its 23 or 25 hours', async () => {
      // The next DST change from 50 days ago on, maybe still ahead: written straight to the
      // database (the API refuses the future), as the writer would.
      const dst = nextDstDay(isoDate(daysAgo(50)), 'America/New_York');
      const zone = 'America/New_York';
      const around = [addDays(dst, -1), dst, addDays(dst, 1)];
      const events = aroundMidnights(zone, around);
      // And every hour of the DST day, on the half hour.
      const start = localMidnight(dst, zone);
      const length = localMidnight(addDays(dst, 1), zone) - start;
      for (let ms = start + 30 * MINUTE_MS; ms < start + length; ms += HOUR_MS) events.push({ timeMs: ms, user: `h${ms % 7}` });
      const rows: EventRow[] = events.map((e) => ({
        site: 'ny',
        timeMs: e.timeMs,
        kind: 'visit',
        userId: e.user,
        page: '',
        weight: 1,
      }));
      await insertEvents(t.db.sql, rows, { callInserted: mode === 'citus' });

      const days = await stats({ site: 'ny', from: around[0]!, to: addDays(dst, 2), granularity: 'day', timezone: zone });
      expect(days.status).toBe(200);
      expect(data(days).map((r: { bucket: string }) => r.bucket)).toEqual(
        around.map((d) => localLabel(localMidnight(d, zone), zone)),
      );
      expect(data(days).map((r: { users: number; events: number }) => ({ users: r.users, events: r.events }))).toEqual(
        expectedPerDay(events, zone, around),
      );
      const hours = await stats({ site: 'ny', from: dst, to: addDays(dst, 1), granularity: 'hour', timezone: zone });
      expect([23, 25]).toContain(length / HOUR_MS);
      expect(hours.body.data).toHaveLength(length / HOUR_MS);
      data(hours).forEach((r: { bucket: string; events: number }, h: number) => {
        expect(r.bucket).toBe(localLabel(start + h * HOUR_MS, zone));
        expect(r.events, r.bucket).toBe(
          events.filter((e) => e.timeMs >= start + h * HOUR_MS && e.timeMs < start + (h + 1) * HOUR_MS).length,
        );
      });
      // Two labels repeat the local hour (autumn) or one skips it (spring): the offsets tell them apart.
      expect(new Set(data(hours).map((r: { bucket: string }) => r.bucket)).size).toBe(length / HOUR_MS);
    });
  });

  it('reads the minutes of a page in an Asia/Kolkata hour from raw events or from minute sketches, whichever is cheaper, exactly', async () => {
    // Two sites, the same local hour (two UTC half hours; filtered on page, so all minutes:
    // quarter hours hold no pages): 'sparse' has an event a minute (fewer raw events than
    // 10 x its minute rows: read raw), 'dense' 40 users a minute of one kind and page
    // (read from events_minutely).
    const zone = 'Asia/Kolkata';
    const start = localMidnight(isoDate(daysAgo(3)), zone) + 5 * HOUR_MS;
    const minutes = Array.from({ length: 60 }, (_, m) => start + m * MINUTE_MS);
    const sparse = minutes.map((timeMs, m) => ({ timeMs, user: `s${m % 17}` }));
    const dense = minutes.flatMap((timeMs, m) =>
      Array.from({ length: 40 }, (_, i) => ({ timeMs: timeMs + i * 1000, user: `d${(m * 7 + i) % 90}` })),
    );
    await send('sparse', sparse);
    await send('dense', dense);

    // Citus mode cannot count the scans (see withRawReads): there the dense site's raw
    // events go, and its answer must stand on the minute sketches alone.
    if (mode === 'citus') await withAdminOf(t.db, (admin) => admin`delete from events where site = 'dense'`);
    for (const [site, events, raw] of [
      ['sparse', sparse, true],
      ['dense', dense, false],
    ] as const) {
      // Were raw events read?
      const [answer, eventScans] = await withRawReads('scans', async (sql) => {
        const rows = await sql`
          select bucket_label as bucket, users::int, events::int
          from headcount_stats(${site}, ${new Date(start)}, ${new Date(start + HOUR_MS)}, 'hour', ${zone}, filters => array['page!=/none'])
        `;
        return rows.map((r) => ({ ...r }));
      });
      expect(answer, site).toEqual([
        { bucket: localLabel(start, zone), users: new Set(events.map((e) => e.user)).size, events: events.length },
      ]);
      if (eventScans === undefined) continue;
      if (raw) expect(eventScans, site).toBeGreaterThan(0);
      else expect(eventScans, site).toBe(0);
    }
  });

  it('answers the UTC quarter hours of +05:30 and +05:45 hours from kinds_15m and the queue, exactly, without minutes or raw events', async () => {
    // A local hour of Asia/Kolkata is two UTC half hours, one of Asia/Kathmandu a quarter
    // and three quarters: whole UTC quarter hours, read from kinds_15m (rolled up) or from
    // the queue (not yet), not from events_minutely or raw events.
    const base = Date.parse(`${isoDate(daysAgo(4))}T00:00:00Z`);
    const events = Array.from({ length: 120 }, (_, i) => ({ timeMs: base + i * 47_000, user: `q${i % 23}` }));
    const zones = ['Asia/Kolkata', 'Asia/Kathmandu'] as const;
    const read = async (site: string, zone: string) => {
      const [rows, scans] = await withRawReads('rows', async (sql) =>
        (
          await sql<{ bucket: string; users: number; events: number }[]>`
            select bucket, users::int, events::int
            from headcount_stats(${site}, ${new Date(base - HOUR_MS)}, ${new Date(base + 2 * HOUR_MS)}, 'hour', ${zone})
          `
        ).map((r) => ({ ...r })),
      );
      return { rows, scans };
    };
    const exact = (zone: string) => {
      // The local hours (on the zone's 15-minute grid) from base - 1 h to base + 2 h.
      const offsetMs = zone === 'Asia/Kolkata' ? 330 * 60_000 : 345 * 60_000;
      const first = Math.ceil((base - HOUR_MS + offsetMs) / HOUR_MS) * HOUR_MS - offsetMs;
      const starts = [
        base - HOUR_MS,
        ...[0, 1, 2].map((h) => first + h * HOUR_MS).filter((s) => s > base - HOUR_MS && s < base + 2 * HOUR_MS),
      ];
      return starts.map((s, i) => {
        const e = starts[i + 1] ?? base + 2 * HOUR_MS;
        const inside = events.filter((x) => x.timeMs >= s && x.timeMs < e);
        return { users: new Set(inside.map((x) => x.user)).size, events: inside.length };
      });
    };
    /** Every zone's hours exact; how many raw events each read scanned. */
    const exactInEveryZone = async () => {
      const scans: (number | undefined)[] = [];
      for (const zone of zones) {
        const answer = await read('quarters', zone);
        expect(
          answer.rows.map(({ users, events }) => ({ users, events })),
          zone,
        ).toEqual(exact(zone));
        scans.push(answer.scans);
      }
      return scans;
    };
    // Queued: the app's roller is stopped until the roll below.
    await t.runtime.roller.stop();
    try {
      await send('quarters', events);
      expect(first(await t.db.sql`select count(*)::int as n from headcount_pending where site = 'quarters'`).n).toBe(
        events.length,
      );
      await exactInEveryZone();
      await t.db.sql`select headcount_roll_up(100000)`;
    } finally {
      t.runtime.roller.start();
    }
    expect(first(await t.db.sql`select count(*)::int as n from headcount_pending where site = 'quarters'`).n).toBe(0);
    // Without the site's minutes the answers stand: quarter hours alone hold them.
    await t.db.sql`delete from events_minutely_parts where site = 'quarters'`;
    if (mode === 'citus') {
      // No raw reads to count there (see withRawReads): the raw events go instead.
      await withAdminOf(t.db, (admin) => admin`delete from events where site = 'quarters'`);
      expect(await exactInEveryZone()).toEqual([undefined, undefined]);
    } else expect(await exactInEveryZone()).toEqual([0, 0]);
    // What a quarter of kinds_15m holds is what the answer counts: rows of a quarter
    // without events, of every kind (*, 7 events) and of kind visit (5), each in its local
    // hour for the reads that take it (the kind filtered or not).
    await t.db.sql`
      insert into kinds_15m (site, bucket, kind, events, users)
      select 'quarters', ${new Date(base + 105 * 60_000)}, k.kind, k.events,
             hll_add_agg(hll_hash_text('ghost', p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
      from headcount_sketch_parameters() p, (values ('*', 7), ('visit', 5)) k(kind, events)
      group by k.kind, k.events
    `;
    const ghost = await read('quarters', 'Asia/Kolkata');
    expect(ghost.rows.reduce((n, r) => n + r.events, 0)).toBe(events.length + 7);
    const [visits] = await t.db.sql<{ events: number }[]>`
      select sum(events)::int as events
      from headcount_stats('quarters', ${new Date(base - HOUR_MS)}, ${new Date(base + 2 * HOUR_MS)}, 'hour', 'Asia/Kolkata', kinds => array['visit'])
    `;
    expect(visits?.events).toBe(events.length + 5);
  });

  it('reads the raw minutes of a filtered Asia/Kolkata day by range, not every partition or chunk of events', async () => {
    // An event with a country on each of 12 days; a Kolkata day filtered on country reads
    // its two half UTC hours raw (the rollups have whole hours and days): only the
    // partitions or chunks holding those minutes are scanned.
    const zone = 'Asia/Kolkata';
    const days = Array.from({ length: 12 }, (_, i) => isoDate(daysAgo(14 - i)));
    const res = await t.http.post('/v1/events').send({
      events: days.map((d, i) => ({
        site: 'chunks',
        kind: 'visit',
        user: `c${i}`,
        country: 'DE',
        time: new Date(localMidnight(d, zone) + HOUR_MS).toISOString(),
      })),
    });
    expect(res.body).toMatchObject({ accepted: days.length, rejected: [] });
    const day = days[6]!;
    const [answer, scanned] = await t.db.sql.begin('isolation level repeatable read', async (sql) => {
      const scans = async () =>
        (
          await sql<{ relname: string; n: number }[]>`
          select relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as n from pg_stat_xact_user_tables
          where relid in (select inhrelid from pg_inherits where inhparent = 'events'::regclass)
        `
        ).reduce((m, r) => m.set(r.relname, Number(r.n)), new Map<string, number>());
      const before = await scans();
      const rows = await sql`
        select users::int, events::int
        from headcount_stats('chunks', headcount_day_start(${day}::date, ${zone}), headcount_day_start(${addDays(day, 1)}::date, ${zone}),
                             'total', ${zone}, filters => array['country==DE'])
      `;
      const after = await scans();
      return [rows.map((r) => ({ ...r })), [...after].filter(([name, n]) => n > (before.get(name) ?? 0)).length] as const;
    });
    expect(answer).toEqual([{ users: 1, events: 1 }]);
    // Two UTC days at most (daily partitions; TimescaleDB's chunks are no smaller). Not
    // counted in citus mode: the workers scan, out of this session's statistics.
    if (mode === 'citus') return;
    expect(scanned).toBeGreaterThan(0);
    expect(scanned).toBeLessThanOrEqual(2);
  });

  it('filters by kind and page, groups by kind with the top N by users, zero-filled', async () => {
    const day = daysAgo(3);
    const e = (user: string, kind: string, page: string, h: number) => ({
      user,
      kind,
      page,
      time: new Date(day + h * HOUR_MS).toISOString(),
    });
    const res = await t.http.post('/v1/events').send({
      events: [
        e('a', 'click', '/x', 1),
        e('b', 'click', '/y', 1),
        e('c', 'click', '/x', 2),
        e('a', 'view', '/x', 1),
        e('d', 'buy', '/x', 5),
      ],
    });
    expect(res.body.accepted).toBe(5);
    const range = { from: isoDate(day), to: isoDate(day + DAY_MS) };
    expect((await stats({ ...range, kind: 'click' })).body.data).toEqual([
      { bucket: `${isoDate(day)}T00:00:00+00:00`, users: 3, events: 3 },
    ]);
    expect((await stats({ ...range, kind: ['click', 'view'], page: '/x' })).body.data[0]).toMatchObject({ users: 2, events: 3 });
    const grouped = await stats({
      ...range,
      group_by: 'kind',
      limit: 2,
      granularity: 'hour',
      to: new Date(day + 3 * HOUR_MS).toISOString(),
    });
    expect(grouped.status).toBe(200);
    expect(grouped.body.data).toEqual([
      { bucket: `${isoDate(day)}T00:00:00+00:00`, kind: 'click', users: 0, events: 0 },
      { bucket: `${isoDate(day)}T00:00:00+00:00`, kind: 'view', users: 0, events: 0 },
      { bucket: `${isoDate(day)}T01:00:00+00:00`, kind: 'click', users: 2, events: 2 },
      { bucket: `${isoDate(day)}T01:00:00+00:00`, kind: 'view', users: 1, events: 1 },
      { bucket: `${isoDate(day)}T02:00:00+00:00`, kind: 'click', users: 1, events: 1 },
      { bucket: `${isoDate(day)}T02:00:00+00:00`, kind: 'view', users: 0, events: 0 },
    ]);
    const pages = await stats({ ...range, group_by: 'page' });
    expect(pages.body.data).toEqual([
      { bucket: `${isoDate(day)}T00:00:00+00:00`, page: '/x', users: 3, events: 4 },
      { bucket: `${isoDate(day)}T00:00:00+00:00`, page: '/y', users: 1, events: 1 },
    ]);
    const none = await stats({ ...range, group_by: 'page', kind: 'nothing' });
    expect(none.body.data).toEqual([]);
  });

  it('says when a count left exact mode', async () => {
    const day = daysAgo(4);
    const events = Array.from({ length: 2000 }, (_, i) => ({
      user: `user-${i}`,
      kind: 'visit',
      time: new Date(day + (i % 1440) * MINUTE_MS).toISOString(),
    }));
    expect((await t.http.post('/v1/events').send({ events })).body.accepted).toBe(2000);
    const res = await stats({ from: isoDate(day), to: isoDate(day + DAY_MS) });
    expect(res.body.meta.approximate).toBe(true);
    expect(Math.abs(res.body.data[0].users - 2000)).toBeLessThan(2000 * 0.03);
    const hour = await stats({ from: new Date(day).toISOString(), to: new Date(day + HOUR_MS).toISOString() });
    expect(hour.body).toMatchObject({ meta: { approximate: false }, data: [{ users: 120, events: 120 }] });
  });

  it('answers a year of day sketches after the raw events are gone', async () => {
    const old = daysAgo(300);
    // Written straight to the database (the API refuses events older than retention).
    const rows: EventRow[] = Array.from({ length: 40 }, (_, i) => ({
      site: 'default',
      timeMs: old + (i % 4) * DAY_MS + i * MINUTE_MS,
      kind: i % 2 ? 'click' : 'view',
      userId: `old-${i % 25}`,
      page: '',
      weight: 1,
    }));
    await insertEvents(t.db.sql, rows, { callInserted: mode === 'citus' });
    const year = { from: isoDate(daysAgo(365)), to: isoDate(daysAgo(0)), granularity: 'total' };
    const days = { from: isoDate(old - DAY_MS), to: isoDate(old + 5 * DAY_MS), granularity: 'day' };
    const before = { year: (await stats(year)).body, days: (await stats(days)).body };
    expect(before.year.data).toEqual([{ bucket: `${isoDate(daysAgo(365))}T00:00:00+00:00`, users: 25, events: 40 }]);
    expect(data({ body: before.days }).map((r) => r.users)).toEqual([0, 10, 10, 10, 10, 0]);

    // Retention passes: raw events, minutes and hours of those days go; day sketches stay.
    if (mode === 'timescaledb') {
      await t.materialize();
      for (const relation of [
        'events',
        'events_minutely_parts',
        'events_10m_cagg',
        'events_hourly_cagg',
        'totals_10m_cagg',
        'totals_hourly_cagg',
      ]) {
        await t.db.sql`select drop_chunks(${relation}::regclass, older_than => now() - interval '60 days')`;
      }
      await t.materialize();
    } else {
      await t.db.sql`select headcount_maintain_partitions()`;
    }
    expect(first(await t.db.sql`select count(*)::int as n from events where time < now() - interval '60 days'`).n).toBe(0);
    expect(first(await t.db.sql`select count(*)::int as n from events_hourly where bucket < now() - interval '60 days'`).n).toBe(
      0,
    );
    expect((await stats(year)).body).toEqual(before.year);
    expect((await stats(days)).body).toEqual(before.days);
    expect(data(await stats({ ...days, granularity: 'week' })).reduce((n, r) => n + r.events, 0)).toBe(40);

    // What needs minutes or hours there is refused, naming what is possible.
    for (const query of [
      { ...days, granularity: 'hour' },
      { ...days, timezone: 'Asia/Kolkata' },
      { ...year, from: `${isoDate(daysAgo(365))}T12:00:00Z` },
    ]) {
      const res = await stats(query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error.message).toMatch(/raw retention.*granularity day, week, month or total with timezone UTC/);
      expect(res.body.error.details).toEqual([{ parameter: 'from', message: res.body.error.message }]);
    }
    const tooOld = await stats({ ...year, from: isoDate(daysAgo(500)) });
    expect(tooOld.status).toBe(400);
    expect(tooOld.body.error.message).toMatch(/sketch retention/);
  });

  it('refuses bad parameters with 400 naming each', async () => {
    const ok = { from: isoDate(daysAgo(2)), to: isoDate(daysAgo(1)) };
    const cases: [Record<string, string | string[]>, string, RegExp][] = [
      [{ to: ok.to }, 'from', /required/],
      [{ ...ok, from: '2026-11-23T10:00:00' }, 'from', /with its zone/],
      [{ ...ok, from: 'yesterday' }, 'from', /ISO 8601/],
      [{ ...ok, to: ok.from }, 'to', /before to/],
      [{ ...ok, granularity: 'year' }, 'granularity', /minute or hour or day/],
      [{ ...ok, timezone: 'Mars/Olympus' }, 'timezone', /not a time zone/],
      [{ ...ok, timezone: 'UTC+3' }, 'timezone', /neither an IANA/],
      [{ ...ok, timezone: '+19:00' }, 'timezone', /offset from -18:00/],
      // Files of the server's zone database that are no IANA zone: the machine's own zone,
      // a placeholder, a template, other layouts (PostgreSQL reads them all).
      ...['localtime', 'Factory', 'posixrules', 'posix/Europe/Paris', 'right/UTC', 'posix', 'LOCALTIME'].map(
        (zone): [Record<string, string>, string, RegExp] => [
          { ...ok, timezone: zone },
          'timezone',
          /not a time zone of the IANA/,
        ],
      ),
      [{ ...ok, kind: 'Bad Kind' }, 'kind', /event kind/],
      [{ ...ok, kind: ['view', 'Bad Kind'] }, 'kind["1"]', /event kind/],
      [{ ...ok, group_by: 'user' }, 'group_by', /user is not a dimension: kind, page, referrer/],
      [{ ...ok, limit: '0' }, 'limit', /1 to 1000/],
      [{ ...ok, site: 'Shop!' }, 'site', /site name/],
      [{ ...ok, period: '7d' }, 'period', /cannot be given with from/],
      [{ ...ok, from: new Date(daysAgo(4)).toISOString(), granularity: 'minute' }, 'to', /48 hours/],
      [{ ...ok, granularity: 'day', from: '2000-01-01', to: '2030-01-01' }, 'from', /sketch retention/],
      [{ ...ok, colour: 'red' }, 'query', /unknown parameter colour/],
      [{ ...ok, granularity: ['day', 'hour'] }, 'granularity', /once/],
    ];
    for (const [query, parameter, message] of cases) {
      const res = await stats(query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
      expect(res.body.error.details, JSON.stringify(query)).toContainEqual({
        parameter,
        message: expect.stringMatching(message),
      });
    }
    // psql: the function refuses the same names (SQLSTATE 22023, COLUMN timezone).
    for (const zone of ['localtime', 'Factory', 'posixrules', 'posix/Asia/Kolkata', 'right/UTC']) {
      const refused = await t.db
        .sql`select * from headcount_stats('default', date_trunc('minute', now()) - interval '1 day', date_trunc('minute', now()), 'total', ${zone})`.then(
        () => undefined,
        (err: { code?: string; column_name?: string; message: string }) => err,
      );
      expect(refused, zone).toMatchObject({
        code: '22023',
        column_name: 'timezone',
        message: expect.stringMatching(/not a time zone of the IANA/),
      });
    }
    // IANA names, canonical or aliases, and offsets stay accepted.
    for (const timezone of ['UTC', 'Etc/UTC', 'Asia/Kolkata', 'Asia/Calcutta', 'US/Eastern', 'Europe/Kyiv', '+05:45', 'GMT']) {
      expect((await stats({ ...ok, timezone })).status, timezone).toBe(200);
    }
    const minutes = await stats({
      from: new Date(daysAgo(2)).toISOString(),
      to: new Date(daysAgo(0)).toISOString(),
      granularity: 'minute',
    });
    expect(minutes.status).toBe(200);
    expect(minutes.body.data).toHaveLength(2880);
  });
});
