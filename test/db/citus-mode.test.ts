import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createSql } from '../../src/db/client.js';
import { prepareCitusDatabase, prepareDatabase } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { startTestApp, statsAnswers, type TestApp } from '../helpers/app.js';
import { citusDatabaseUrl, dropCitusDatabase, first, modeAvailable } from '../helpers/db.js';
import { mixedEvents, prng } from '../helpers/events.js';
import { daysAgo, eventually, isoDate } from '../helpers/time.js';

const citus = () => inject('databaseServer').citus!;

// Needs Citus (npm run setup:citus): the suite's setup then runs a local Citus cluster.
// Skipped without it, and named in the run's summary; TEST_REQUIRE_MODES=citus makes a
// missing Citus an error of the setup instead.
describe.skipIf(!modeAvailable('citus'))('storage mode citus', () => {
  describe('the migrations on a Citus coordinator', () => {
    const name = `headcount_test_citus_auto_${randomBytes(4).toString('hex')}`;
    let url: string;
    beforeAll(async () => {
      await prepareCitusDatabase(citus(), name);
      url = citusDatabaseUrl(name);
    });
    afterAll(() => dropCitusDatabase(name));

    it('choose citus with STORAGE_MODE=auto where the database has the citus extension, and distribute the schema', async () => {
      await migrate({ databaseUrl: url, storageMode: 'auto', log: silentLogger });
      const sql = createSql(url, { max: 1 });
      try {
        expect((await sql`select storage_mode from headcount_settings`)[0]).toEqual({ storage_mode: 'citus' });
        const tables = await sql<{ name: string; kind: string; column: string | null; together: boolean }[]>`
          select p.logicalrelid::text as name, p.partmethod::text as kind,
                 column_to_column_name(p.logicalrelid, p.partkey) as column,
                 p.colocationid = (select colocationid from pg_dist_partition where logicalrelid = 'events'::regclass) as together
          from pg_dist_partition p
          where p.logicalrelid::text not like 'events\\_p%' and p.logicalrelid::text <> 'events_default'
          order by 1
        `;
        const bySite = tables.filter((t) => t.kind === 'h');
        expect(bySite.every((t) => t.column === 'site' && t.together)).toBe(true);
        expect(bySite.map((t) => t.name)).toEqual([
          'dimensions_daily',
          'dimensions_hourly',
          'dimensions_weekly',
          'events',
          'events_daily_parts',
          'events_hourly_parts',
          'events_minutely_parts',
          'headcount_pending',
          'headcount_rollup_days',
          'headcount_rollup_weeks',
          'headcount_visit_locks',
          'headcount_visit_spans',
          'headcount_visit_units',
          'headcount_visits',
          'kinds_15m',
          'totals_daily_parts',
          'totals_hourly_parts',
        ]);
        expect(tables.filter((t) => t.kind === 'n').map((t) => t.name)).toEqual([
          'headcount_api_keys',
          'headcount_rollups',
          'headcount_settings',
          'headcount_sites',
        ]);
        // The day partitions are distributed with events, and no table of theirs has a trigger.
        const [parts] = await sql<{ local: number }[]>`
          select count(*)::int as local from pg_inherits i
          where i.inhparent = 'events'::regclass and not exists (select from pg_dist_partition p where p.logicalrelid = i.inhrelid)
        `;
        expect(parts).toEqual({ local: 0 });
        const triggers = await sql`
          select tgname from pg_trigger t join pg_dist_partition p on p.logicalrelid = t.tgrelid where not t.tgisinternal
        `;
        expect(triggers).toEqual([]);
      } finally {
        await sql.end();
      }
    });

    it('go down to tables of the coordinator, rows and all, and up again', async () => {
      const sql = createSql(url, { max: 1 });
      try {
        await sql`insert into headcount_sites (site) values ('kept')`;
        expect(await migrate({ databaseUrl: url, storageMode: 'auto', direction: 'down', count: 7, log: silentLogger })).toEqual([
          '1797350400000_events_site_time',
          '1797264000000_visit_locks',
          '1797177600000_event_parts',
          '1797091200000_visit_unit_tids',
          '1797004800000_visit_staging',
          '1796918400000_replica_identities',
          '1796832000000_citus',
        ]);
        expect((await sql`select storage_mode from headcount_settings`)[0]).toEqual({ storage_mode: 'postgres' });
        expect((await sql`select count(*)::int as n from pg_dist_partition`)[0]).toEqual({ n: 0 });
        expect(await sql`select site from headcount_sites`).toEqual([{ site: 'kept' }]);
        const key = sql`select count(*)::int as n from pg_attribute where attrelid = 'headcount_pending'::regclass and attname = 'id' and not attisdropped`;
        expect((await key)[0]).toEqual({ n: 0 });
        expect(await migrate({ databaseUrl: url, storageMode: 'auto', log: silentLogger })).toEqual([
          '1796832000000_citus',
          '1796918400000_replica_identities',
          '1797004800000_visit_staging',
          '1797091200000_visit_unit_tids',
          '1797177600000_event_parts',
          '1797264000000_visit_locks',
          '1797350400000_events_site_time',
        ]);
        expect((await sql`select storage_mode from headcount_settings`)[0]).toEqual({ storage_mode: 'citus' });
        expect(await sql`select site from headcount_sites`).toEqual([{ site: 'kept' }]);
      } finally {
        await sql.end();
      }
    }, 120_000);
  });

  describe('moving a postgres-mode database onto Citus (docs/storage.md)', () => {
    const name = `headcount_test_citus_move_${randomBytes(4).toString('hex')}`;
    afterAll(() => dropCitusDatabase(name));

    it('distributes its tables with their rows: every answer the same after, and writes go on', async () => {
      // A database as one PostgreSQL has it: no citus extension, postgres mode, events in it.
      await prepareDatabase(citus().coordinator.adminUrl, name, { password: citus().appPassword, timescaledb: false });
      const url = citusDatabaseUrl(name);
      await migrate({ databaseUrl: url, storageMode: 'postgres', log: silentLogger });
      const sql = createSql(url, { max: 2 });
      try {
        const events = mixedEvents(3000, 20).map((e, i) => ({
          ...e,
          site: `s${i % 7}`,
          dimensions: { country: ['PL', 'IN'][i % 2]! },
        }));
        await insertEvents(sql, events);
        const answers = async () =>
          sql`
            select s.site, x.*
            from unnest(array['s0', 's3', 's6']) s(site),
                 headcount_stats(s.site, date_trunc('day', now(), 'UTC') - interval '21 days', date_trunc('day', now(), 'UTC') + interval '1 day',
                                 'day', 'Asia/Kolkata', group_by => 'country') x
            order by 1, x.bucket, x.group_values
          `;
        const before = await answers();
        expect(before.length).toBeGreaterThan(50);
        // The procedure: the superuser makes it a Citus database on every node, then the
        // citus migration runs again, told to distribute.
        await prepareCitusDatabase(citus(), name);
        expect(await migrate({ databaseUrl: url, storageMode: 'citus', direction: 'down', count: 7, log: silentLogger })).toEqual(
          [
            '1797350400000_events_site_time',
            '1797264000000_visit_locks',
            '1797177600000_event_parts',
            '1797091200000_visit_unit_tids',
            '1797004800000_visit_staging',
            '1796918400000_replica_identities',
            '1796832000000_citus',
          ],
        );
        expect(await migrate({ databaseUrl: url, storageMode: 'citus', log: silentLogger })).toEqual([
          '1796832000000_citus',
          '1796918400000_replica_identities',
          '1797004800000_visit_staging',
          '1797091200000_visit_unit_tids',
          '1797177600000_event_parts',
          '1797264000000_visit_locks',
          '1797350400000_events_site_time',
        ]);
        expect((await sql`select storage_mode from headcount_settings`)[0]).toEqual({ storage_mode: 'citus' });
        const [local] = await sql<
          { n: number }[]
        >`select count(*)::int as n from citus_shards where table_name = 'events'::regclass`;
        expect(local!.n).toBeGreaterThan(0);
        expect(await answers()).toEqual(before);
        // The writer's statement keeps the aggregates from now on.
        const more = mixedEvents(500, 20, 7).map((e) => ({ ...e, site: 's3' }));
        await insertEvents(sql, more, { callInserted: true });
        const [moved] = await sql<{ events: number }[]>`
          select sum(events)::int as events from totals_daily where site = 's3'
        `;
        const [raw] = await sql<{ events: number }[]>`select sum(weight)::int as events from events where site = 's3'`;
        expect(moved).toEqual(raw);
      } finally {
        await sql.end();
      }
    }, 180_000);
  });

  describe('the service on it, against postgres mode on the same events', () => {
    let cx: TestApp;
    let pg: TestApp;
    beforeAll(async () => {
      [cx, pg] = await Promise.all([startTestApp('citus'), startTestApp('postgres')]);
    });
    afterAll(async () => {
      await Promise.all([cx?.close(), pg?.close()]);
    });

    // 60 sites, 12 days, every kind; ids on every event.
    const rand = prng(21);
    const sites = Array.from({ length: 60 }, (_, i) => `site-${i}`);
    const batch = (offset: number, size: number) => ({
      events: Array.from({ length: size }, (_, i) => {
        const n = offset + i;
        const kind = ['click', 'impression', 'pageview', 'signup'][n % 4]!;
        return {
          id: `e${n}`,
          site: sites[Math.floor(rand() * sites.length)],
          kind,
          user: `u${Math.floor(rand() * 400)}`,
          page: kind === 'pageview' ? `/p${n % 3}` : undefined,
          country: ['PL', 'DE', 'IN'][n % 3],
          time: new Date(Date.now() - 60_000 - Math.floor(rand() * 12 * 86_400_000)).toISOString(),
        };
      }),
    });
    const queries = (site: string) => [
      { site, from: isoDate(daysAgo(14)), to: isoDate(daysAgo(-1)) },
      { site, from: isoDate(daysAgo(14)), to: isoDate(daysAgo(-1)), granularity: 'day', timezone: 'Asia/Kolkata' },
      { site, from: isoDate(daysAgo(14)), to: isoDate(daysAgo(-1)), group_by: 'kind' },
      { site, from: isoDate(daysAgo(3)), to: isoDate(daysAgo(1)), granularity: 'hour', timezone: '+05:45' },
      { site, from: isoDate(daysAgo(14)), to: isoDate(daysAgo(-1)), group_by: 'country' },
    ];
    const answers = (app: TestApp, site: string) => statsAnswers(app, queries(site));

    it('answers /v1/stats as postgres mode right after each write, batches over 60 sites, ids stored once across shards', async () => {
      const bodies = [batch(0, 1000), batch(1000, 1000), batch(2000, 300)];
      for (const body of bodies) {
        const [a, b] = [await cx.http.post('/v1/events').send(body), await pg.http.post('/v1/events').send(body)];
        expect(a.status).toBe(200);
        expect(a.body).toEqual(b.body);
        // Read at once, no waiting: what was acknowledged is counted.
        for (const site of ['site-0', 'site-17', 'site-59']) expect(await answers(cx, site)).toEqual(await answers(pg, site));
      }
      // A resend (ids on other shards than the first try's connection) is stored once.
      const again = await cx.http.post('/v1/events').send(bodies[0]);
      expect(again.body).toEqual({ accepted: 0, duplicates: 1000, rejected: [] });
      const mixed = { events: [...bodies[2]!.events.slice(0, 5), ...batch(5000, 5).events] };
      const [a, b] = [await cx.http.post('/v1/events').send(mixed), await pg.http.post('/v1/events').send(mixed)];
      expect(a.body).toEqual({ accepted: 5, duplicates: 5, rejected: [] });
      expect(a.body).toEqual(b.body);
      for (const site of sites) {
        const res = await cx.http.get('/v1/stats').query(queries(site)[0]!);
        expect(res.body).toEqual((await pg.http.get('/v1/stats').query(queries(site)[0]!)).body);
      }
      const [stored] = await cx.db.sql<{ n: number }[]>`select count(*)::int as n from events`;
      expect(stored).toEqual({ n: 2305 });
      // Some 20 s here (the comparison reads 200 answers), more on a loaded machine.
    }, 180_000);

    it('keeps visits as postgres mode, right after each write: batches over several sites, back-dated, visitors coming back', async () => {
      const visits = (offset: number, size: number) => ({
        events: Array.from({ length: size }, (_, i) => {
          const n = offset + i;
          // 40 visitors on 4 sites, each seen every few minutes over 3 days: later
          // batches extend and merge the visits earlier ones stored.
          const user = n % 40;
          return {
            site: `v-${user % 4}`,
            kind: n % 3 === 0 ? 'click' : 'pageview',
            user: `vu${user}`,
            page: n % 3 === 0 ? undefined : `/v${n % 5}`,
            country: ['PL', 'DE'][user % 2],
            time: new Date(Date.now() - 60_000 - ((n * 7_919_000) % (3 * 86_400_000))).toISOString(),
          };
        }),
      });
      const shapes = (site: string) => [
        {
          site,
          from: isoDate(daysAgo(4)),
          to: isoDate(daysAgo(-1)),
          metrics: 'visits,bounce_rate,visit_duration,pageviews_per_visit',
        },
        {
          site,
          from: isoDate(daysAgo(4)),
          to: isoDate(daysAgo(-1)),
          granularity: 'day',
          metrics: 'visits,pageviews_per_visit',
          group_by: 'entry_page',
        },
        { site, from: isoDate(daysAgo(4)), to: isoDate(daysAgo(-1)), metrics: 'visits,bounce_rate', filter: 'country==DE' },
      ];
      for (const [i, size] of [600, 400, 300].entries()) {
        const body = visits(i * 7_000 + 13, size);
        const [a, b] = [await cx.http.post('/v1/events').send(body), await pg.http.post('/v1/events').send(body)];
        expect(a.body).toEqual(b.body);
        for (const site of ['v-0', 'v-1', 'v-2', 'v-3']) {
          for (const q of shapes(site)) {
            const [x, y] = [await cx.http.get('/v1/stats').query(q), await pg.http.get('/v1/stats').query(q)];
            expect(x.status, `${JSON.stringify(q)}: ${JSON.stringify(x.body)}`).toBe(200);
            expect(x.body).toEqual(y.body);
          }
        }
      }
      const [kept] = await cx.db.sql<{ n: number }[]>`select count(*)::int as n from headcount_visits`;
      expect(kept!.n).toBeGreaterThan(40);
      // Batches over 4 sites keep visits through the staging tables: nothing left there.
      const [staged] = await cx.db.sql<{ n: number }[]>`
        select (select count(*) from headcount_visit_spans) + (select count(*) from headcount_visit_units) as n
      `;
      expect(staged).toEqual({ n: 0 });
    }, 180_000);

    it("takes the visitors' locks of a batch over several sites in one ascending order (two such batches cannot deadlock)", async () => {
      // headcount_track_visits' lock per bucket of visitors (class 1986622313, hashtext of
      // site/user & 255), taken on the coordinator. A visitor of the first site (by name)
      // in a high bucket, one of the second site in a low bucket: called site by site
      // alone, the batch would take the high bucket first, then wait for the low one
      // while holding it, and a batch the other way round would wait for it in turn.
      const [pick] = await cx.db.sql<{ high: string; bucket_high: number; low: string; bucket_low: number }[]>`
        select h.u as high, hashtext('dl-a/' || h.u) & 255 as bucket_high, l.u as low, hashtext('dl-b/' || l.u) & 255 as bucket_low
        from (select 'u' || g as u from generate_series(1, 5000) g where hashtext('dl-a/u' || g) & 255 >= 200 limit 1) h,
             (select 'u' || g as u from generate_series(1, 5000) g where hashtext('dl-b/u' || g) & 255 <= 50 limit 1) l
      `;
      const holder = createSql(cx.db.url, { max: 1 });
      try {
        await holder.unsafe('begin');
        await holder`select pg_advisory_xact_lock(1986622313, ${pick!.bucket_low})`;
        const time = new Date(Date.now() - 60_000).toISOString();
        // Sent now (then starts it), answered once the holder lets go.
        const answered = cx.http
          .post('/v1/events')
          .send({
            events: [
              { site: 'dl-a', kind: 'pageview', user: pick!.high, page: '/', time },
              { site: 'dl-b', kind: 'pageview', user: pick!.low, page: '/', time },
            ],
          })
          .then((res) => res);
        const lock = async (bucket: number, granted: boolean) =>
          first(
            await cx.db.sql<{ n: number }[]>`
              select count(*)::int as n from pg_locks
              where locktype = 'advisory' and classid = 1986622313 and objid = ${bucket} and objsubid = 2 and granted = ${granted}
            `,
          ).n;
        // The batch waits for the low bucket…
        expect((await eventually(() => lock(pick!.bucket_low, false), 1, 10_000)).value).toBe(1);
        // …and holds no higher one meanwhile.
        expect(await lock(pick!.bucket_high, true)).toBe(0);
        await holder.unsafe('commit');
        const res = await answered;
        expect([200, 503]).toContain(res.status);
      } finally {
        await holder.end();
      }
    });

    it('answers the seed APIs as postgres mode', async () => {
      for (const app of [cx, pg]) {
        expect((await app.http.post('/analytics').query({ timestamp: Date.now(), user: 'ann', event: 'click' })).status).toBe(
          204,
        );
        expect((await app.http.get('/collect').query({ cid: 'bob' })).status).toBe(200);
      }
      const read = async (app: TestApp) => [
        (await app.http.get('/analytics').query({ timestamp: Date.now() })).text,
        (await app.http.get('/daily_uniques')).text,
        (await app.http.get('/monthly_uniques')).text,
      ];
      expect(await read(cx)).toEqual(await read(pg));
      expect((await read(cx))[0]).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
    });

    it('refuses an update or delete of single events in psql, as the other modes do, and goes on storing', async () => {
      const count = async () => first(await cx.db.sql<{ n: number }[]>`select count(*)::int as n from events`).n;
      expect((await cx.http.post('/v1/events').send(batch(8000, 20))).body).toMatchObject({ accepted: 20 });
      const before = await count();
      expect(before).toBeGreaterThan(0);
      // Privileges, not a trigger (Citus has none on distributed tables): 42501.
      await expect(cx.db.sql`update events set weight = 2 where site = 'site-0'`).rejects.toMatchObject({ code: '42501' });
      await expect(cx.db.sql`delete from events where site = 'site-0'`).rejects.toMatchObject({ code: '42501' });
      await expect(cx.db.sql`delete from events`).rejects.toMatchObject({ code: '42501' });
      expect(await count()).toBe(before);
      expect((await cx.http.post('/v1/events').send(batch(9000, 20))).body).toMatchObject({ accepted: 20 });
      expect(await count()).toBe(before + 20);
      // The partition maintenance (old days dropped whole, old default-partition rows deleted) runs.
      await cx.db.sql`select headcount_maintain_partitions()`;
    });
  });
});

// Needs Citus, as the suites above.
describe.skipIf(!modeAvailable('citus'))('the roller in storage mode citus', () => {
  let cx: TestApp;
  let pg: TestApp;
  const sites = ['shop', 'blog', 'news', 'docs', 'wiki'];
  beforeAll(async () => {
    [cx, pg] = await Promise.all([startTestApp('citus'), startTestApp('postgres')]);
    // A declared property: the roller keeps its rollup rows (read from them once rolled).
    for (const app of [cx, pg]) {
      for (const site of sites) expect((await app.http.post('/v1/sites').send({ site, props: ['plan'] })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await Promise.all([cx?.close(), pg?.close()]);
  });

  // Several sites, back-dated up to 13 days (ended weeks, which the roller builds) and in
  // the last hour; every dimension the reads use.
  const rand = prng(2121);
  const batch = (offset: number, size: number) => ({
    events: Array.from({ length: size }, (_, i) => {
      const n = offset + i;
      const kind = ['pageview', 'click', 'signup'][n % 3]!;
      const back = n % 4 === 0 ? Math.floor(rand() * 3_600_000) : Math.floor(rand() * 13 * 86_400_000);
      return {
        id: `r${n}`,
        site: sites[Math.floor(rand() * sites.length)],
        kind,
        user: `u${Math.floor(rand() * 300)}`,
        page: kind === 'pageview' ? ['/blog/a', '/blog/b', '/shop/c'][n % 3] : undefined,
        country: ['PL', 'DE', 'IN', undefined][n % 4],
        device: ['desktop', 'mobile'][n % 2],
        props: n % 5 === 0 ? undefined : { plan: ['free', 'pro'][n % 2] },
        time: new Date(Date.now() - 30_000 - back).toISOString(),
      };
    }),
  });
  // 14 days: at least one whole ended week, read from its week rows once built.
  const from = isoDate(daysAgo(14));
  const to = isoDate(daysAgo(-1));
  const queries = (site: string) => [
    { site, from, to, group_by: 'country' },
    { site, from, to, granularity: 'day', timezone: 'Asia/Kolkata', group_by: 'device', filter: 'country==DE|PL' },
    { site, from, to, filter: 'page^=/blog/', group_by: 'kind' },
    { site, from, to, group_by: 'props.plan' },
    // Hours of a +05:45 zone end on quarter hours (kinds_15m).
    { site, from: isoDate(daysAgo(1)), to, granularity: 'hour', timezone: '+05:45', group_by: 'kind' },
  ];
  const answers = (app: TestApp) => statsAnswers(app, sites.flatMap(queries));
  const queued = async () => first(await cx.db.sql<{ n: number }[]>`select count(*)::int as n from headcount_pending`).n;
  /** /v1/sites without the rows' own bookkeeping times. */
  const listed = async (app: TestApp) =>
    ((await app.http.get('/v1/sites')).body as { data: Record<string, unknown>[] }).data.map(
      ({ site, events, first_event, last_event }) => ({ site, events, first_event, last_event }),
    );

  it('rolls the queue up site by site: dimension reads, quarter hours and /v1/sites equal postgres mode right after each batch and once rolled', async () => {
    for (const [i, size] of [1200, 800, 500].entries()) {
      const body = batch(i * 10_000, size);
      const [a, b] = [await cx.http.post('/v1/events').send(body), await pg.http.post('/v1/events').send(body)];
      expect(a.body).toEqual({ accepted: size, duplicates: 0, rejected: [] });
      expect(b.body).toEqual(a.body);
      // At once, while the roller moves the batch: every event queued or rolled up, once.
      expect(await answers(cx)).toEqual(await answers(pg));
      expect(await listed(cx)).toEqual(await listed(pg));
    }
    // The service's roller empties the queue (it was never trimmed in citus mode)…
    expect((await eventually(queued, 0, 60_000)).value).toBe(0);
    // Its passes (the rolls, and the expiry that a first pass runs) have not failed.
    expect(cx.runtime.roller.health.status()).toMatchObject({ ok: true, failuresInARow: 0 });
    const [rolled] = await cx.db.sql<{ n: number }[]>`
      select count(*)::int as n from dimensions_daily where dims = 'props.plan'
    `;
    expect(rolled!.n).toBeGreaterThan(0);
    // …and the rollups answer as postgres mode, and as the raw events count, also once the
    // ended weeks are built, the parts folded and the expiry run (each on the coordinator).
    expect(await answers(cx)).toEqual(await answers(pg));
    await cx.runtime.roller.stop();
    await cx.db.sql`select headcount_build_weeks(100)`;
    const [weeks] = await cx.db.sql<{ n: number }[]>`select count(*)::int as n from dimensions_weekly`;
    expect(weeks!.n).toBeGreaterThan(0);
    // A roll of late events (into built weeks too) leaves parts, which the fold folds.
    const late = batch(50_000, 300);
    for (const app of [cx, pg]) expect((await app.http.post('/v1/events').send(late)).body).toMatchObject({ accepted: 300 });
    expect(first(await cx.db.sql<{ n: number }[]>`select headcount_roll_up() as n`).n).toBe(300);
    expect(first(await cx.db.sql<{ n: number }[]>`select headcount_fold_parts(interval '0')::int as n`).n).toBeGreaterThan(0);
    const [parts] = await cx.db.sql<{ n: number }[]>`select count(*)::int as n from dimensions_daily where part <> 0`;
    expect(parts!.n).toBe(0);
    await cx.db.sql`select headcount_expire_dimensions()`;
    expect(await answers(cx)).toEqual(await answers(pg));
    const raw = await cx.db.sql<{ site: string; events: number }[]>`
      select site, sum(weight)::int as events from events group by site order by site
    `;
    const shown = await listed(cx);
    expect(
      shown.map(({ site, events }) => ({ site, events })).sort((x, y) => String(x.site).localeCompare(String(y.site))),
    ).toEqual(raw);
    expect(shown).toEqual(await listed(pg));
    for (const site of sites) {
      const res = await cx.http.get('/v1/stats').query({ site, from, to, group_by: 'props.plan' });
      const total = (res.body.data as { events: number }[]).reduce((n, r) => n + r.events, 0);
      expect(total).toBe(raw.find((r) => r.site === site)!.events);
    }
  }, 240_000);

  it('moves nothing while another session holds the roller lock on the coordinator', async () => {
    await cx.runtime.roller.stop();
    const holder = createSql(cx.db.url, { max: 1 });
    try {
      const body = batch(100_000, 300);
      expect((await cx.http.post('/v1/events').send(body)).body).toMatchObject({ accepted: 300 });
      await holder`select pg_advisory_lock(1751937123)`;
      expect(first(await cx.db.sql<{ n: number }[]>`select headcount_roll_up() as n`).n).toBe(0);
      expect(await queued()).toBe(300);
      await holder`select pg_advisory_unlock(1751937123)`;
      expect(first(await cx.db.sql<{ n: number }[]>`select headcount_roll_up() as n`).n).toBe(300);
      expect(await queued()).toBe(0);
    } finally {
      await holder.end();
    }
  }, 60_000);
});
