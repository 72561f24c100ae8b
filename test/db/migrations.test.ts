import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STANDARD_DIMENSIONS } from '../../src/dimensions.js';
import type { Sql } from '../../src/db/client.js';
import { migrate, MIGRATIONS_DIR, shippedMigrations } from '../../src/db/migrate.js';
import type { StorageMode } from '../../src/db/storage.js';
import { silentLogger } from '../../src/log.js';
import { startTestApp } from '../helpers/app.js';
import {
  createEmptyDatabase,
  createTestDatabase,
  describeEachMode,
  first,
  modeAvailable,
  type TestDatabase,
  withAdmin,
} from '../helpers/db.js';
import { RELEASES } from '../helpers/releases.js';
import { daysAgo, hoursAgo, isoDate } from '../helpers/time.js';

const relationKinds = async (sql: Sql) =>
  Object.fromEntries(
    (
      await sql<{ relname: string; relkind: string }[]>`
        select relname, relkind::text from pg_class
        where relnamespace = 'public'::regnamespace
          and relname in ('events', 'events_minutely', 'events_hourly', 'events_daily', 'totals_hourly', 'totals_daily',
                          'users_daily', 'headcount_settings', 'events_minutely_parts', 'events_hourly_parts',
                          'events_daily_parts', 'totals_hourly_parts', 'totals_daily_parts')
      `
    ).map((r) => [r.relname, r.relkind]),
  );

const columns = async (sql: Sql, relation: string) =>
  (
    await sql<{ name: string; type: string }[]>`
      select attname as name, format_type(atttypid, atttypmod) as type
      from pg_attribute where attrelid = ${relation}::regclass and attnum > 0 and not attisdropped
      order by attnum
    `
  ).map((c) => `${c.name} ${c.type}`);

/**
 * A scratch database's migrations one at a time, from the newest (where createTestDatabase
 * leaves it): `down(name)` undoes the applied ones down to and including `name`, `up(name)`
 * applies the undone ones up to and including `name` (all of them when none is named),
 * each step checked to be the migration expected. The list is what migrations/ ships, so a
 * new migration needs no line here.
 */
function migrationSteps(url: string, mode: StorageMode) {
  const all = shippedMigrations().sort();
  let applied = all.length;
  const step = (direction: 'up' | 'down') =>
    migrate({ databaseUrl: url, storageMode: mode, direction, count: 1, log: silentLogger });
  const position = (name: string) => {
    const at = all.indexOf(name);
    if (at < 0) throw new Error(`no migration ${name} in migrations/`);
    return at;
  };
  return {
    async down(name: string) {
      const to = position(name);
      while (applied > to) expect(await step('down')).toEqual([all[--applied]]);
    },
    async up(name = all.at(-1)!) {
      const to = position(name);
      while (applied <= to) expect(await step('up')).toEqual([all[applied++]]);
    },
  };
}

const PER_KEY = ['site text', 'bucket timestamp with time zone', 'kind text', 'page text', 'events bigint', 'users hll'];
const TOTALS = ['site text', 'bucket timestamp with time zone', 'events bigint', 'users hll'];

describe('migrations are append-only', () => {
  it('leaves every shipped migration as it shipped', async () => {
    for (const [release, files] of Object.entries(RELEASES)) {
      for (const [name, sha256] of Object.entries(files)) {
        const text = await readFile(path.join(MIGRATIONS_DIR, `${name}.ts`));
        expect(createHash('sha256').update(text).digest('hex'), `${release}: ${name}`).toBe(sha256);
      }
    }
  });

  it('adds new migrations after the last shipped one', async () => {
    const names = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
    const shipped = [...new Set(Object.values(RELEASES).flatMap((files) => Object.keys(files)))];
    expect(names.slice(0, shipped.length)).toEqual(shipped);
  });
});

describeEachMode('migrations', (mode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(mode);
  });
  afterAll(async () => db?.drop());

  it('records the storage mode it chose, and the retention of raw events and of day sketches', async () => {
    const [row] = await db.sql`
      select storage_mode, retention::text, sketch_retention::text, hll_log2m, hll_regwidth from headcount_settings
    `;
    expect(row).toEqual({
      storage_mode: mode,
      retention: '60 days',
      sketch_retention: '400 days',
      hll_log2m: 14,
      hll_regwidth: 5,
    });
  });

  it('exposes the same relations and columns in every mode', async () => {
    expect(await columns(db.sql, 'events')).toEqual([
      'time timestamp with time zone',
      'kind text',
      'user_id text',
      'page text',
      'weight integer',
      'site text',
      'id text',
      ...STANDARD_DIMENSIONS.filter((d) => d !== 'source').map((d) => `${d} text`),
      'props jsonb',
      'source text',
    ]);
    const rollup = [
      'site text',
      'dims text',
      'bucket timestamp with time zone',
      'kind text',
      'vals text[]',
      'events bigint',
      'users hll',
      'part bigint',
    ];
    for (const relation of ['dimensions_hourly', 'dimensions_daily']) expect(await columns(db.sql, relation)).toEqual(rollup);
    for (const relation of ['events_minutely', 'events_hourly', 'events_daily']) {
      expect(await columns(db.sql, relation)).toEqual(PER_KEY);
    }
    for (const relation of ['totals_hourly', 'totals_daily']) expect(await columns(db.sql, relation)).toEqual(TOTALS);
    expect(await columns(db.sql, 'users_daily')).toEqual(['site text', 'bucket timestamp with time zone', 'users hll']);
  });

  it('indexes events by site and time, the way every raw read asks for them, and not by time alone', async () => {
    // Every read of raw events names one site and a time range (1797350400000_events_site_time).
    const indexes = await db.sql<{ def: string }[]>`
      select regexp_replace(indexdef, '^.* USING ', '') as def from pg_indexes
      where schemaname = current_schema() and tablename = 'events' order by 1
    `;
    expect(indexes.map((i) => i.def)).toEqual(['btree (site, "time")', 'btree (site, id, "time") WHERE (id IS NOT NULL)']);
  });

  if (mode === 'timescaledb') {
    it('keeps minutes by trigger and hours and days in continuous aggregates behind read-your-writes views', async () => {
      expect(await relationKinds(db.sql)).toMatchObject({
        events: 'r',
        events_minutely: 'v',
        events_minutely_parts: 'r',
        events_hourly: 'v',
        events_daily: 'v',
        totals_hourly: 'v',
        totals_daily: 'v',
        users_daily: 'v',
      });
      const aggs = await db.sql`
        select view_name, materialized_only from timescaledb_information.continuous_aggregates order by view_name
      `;
      expect(aggs.map((a) => [a.view_name, a.materialized_only])).toEqual([
        ['events_10m_cagg', false],
        ['events_daily_cagg', false],
        ['events_hourly_cagg', false],
        ['totals_10m_cagg', false],
        ['totals_daily_cagg', false],
        ['totals_hourly_cagg', false],
      ]);
      const jobs = await db.sql<{ name: string; proc: string; drop_after: string | null }[]>`
        select hypertable_name as name, proc_name as proc, config->>'drop_after' as drop_after
        from timescaledb_information.jobs where proc_name like 'policy_%' and hypertable_name is not null order by 1
      `;
      // No refresh policy: a policy moving a watermark past "through" would hide rows.
      expect(jobs.filter((j) => j.proc !== 'policy_retention')).toEqual([]);
      expect(Object.fromEntries(jobs.map((j) => [j.name, j.drop_after]))).toEqual({
        events: '60 days',
        events_minutely_parts: '60 days',
        events_10m_cagg: '60 days',
        events_hourly_cagg: '60 days',
        totals_10m_cagg: '60 days',
        totals_hourly_cagg: '60 days',
        events_daily_cagg: '400 days',
        totals_daily_cagg: '400 days',
      });
      const [dim] = await db.sql`
        select column_name, time_interval::text from timescaledb_information.dimensions where hypertable_name = 'events'
      `;
      expect(dim).toEqual({ column_name: 'time', time_interval: '1 day' });
    });
  } else {
    it('partitions events by day over the retention window and keeps aggregate tables', async () => {
      expect(await relationKinds(db.sql)).toMatchObject({
        events: 'p',
        events_minutely: 'v',
        events_hourly: 'v',
        events_daily: 'v',
        totals_hourly: 'v',
        totals_daily: 'v',
        events_minutely_parts: 'r',
        events_hourly_parts: 'r',
        events_daily_parts: 'r',
        totals_hourly_parts: 'r',
        totals_daily_parts: 'r',
        users_daily: 'v',
      });
      const parts = first(
        await db.sql`
          select count(*)::int as n, min(c.relname) as first, max(c.relname) filter (where c.relname <> 'events_default') as last
          from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'events'::regclass
        `,
      );
      expect(parts.n).toBeGreaterThanOrEqual(61 + 3 + 1);
      const { oldest } = first(
        await db.sql`select to_char(date_trunc('day', now() - interval '60 days', 'UTC'), 'YYYYMMDD') as oldest`,
      );
      expect(parts.first).toBe('events_default');
      expect(parts.last > `events_p${oldest}`).toBe(true);
    });
  }

  it('adds source with the rollup rows of what the rollups hold (every value null), and rolls up what is queued with it', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const steps = migrationSteps(scratch.url, mode);
      await scratch.sql`insert into events (time, kind, user_id) values (now(), 'collect', 'u')`;
      // Before `source`: rolled-up events of three sites (in o's day every standard
      // dimension overflowed, in p's the referrer's alone, so its rows are gone), and one
      // still queued.
      await scratch.sql`
        insert into events (time, site, kind, user_id, referrer, utm_source)
        values (now(), 'o', 'collect', 'o1', 'a.example', null), (now(), 'p', 'collect', 'p1', 'b.example', 'x'),
               (now(), 'p', 'view', 'p2', null, 'y'), (now(), 'p', 'view', 'p1', null, null)
      `;
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(5);
      await scratch.sql`update headcount_rollup_days set overflowed = true where site = 'o' and dims = any (headcount_dimensions())`;
      await scratch.sql`update headcount_rollup_days set overflowed = true where site = 'p' and dims = 'referrer'`;
      await scratch.sql`delete from dimensions_hourly where site = 'o' or (site = 'p' and dims = 'referrer')`;
      await scratch.sql`delete from dimensions_daily where site = 'o' or (site = 'p' and dims = 'referrer')`;
      await scratch.sql`insert into events (time, kind, user_id) values (now(), 'collect', 'q')`;
      // The latest first (in these modes they change nothing: see 1796832000000_citus,
      // 1796918400000_replica_identities, 1797004800000_visit_staging, 1797091200000_visit_unit_tids and 1797264000000_visit_locks).
      await steps.down('1796486400000_source');
      expect(first(await scratch.sql`select count(*)::int as n from dimensions_daily where dims = 'source'`).n).toBe(0);
      await steps.up('1796486400000_source');
      // Made from another standard dimension's rows of the same day: every value null.
      const sourceRows = (table: string) => scratch.sql`
        select site, kind, array_to_json(vals) as vals, events::int, hll_cardinality(users)::int as users
        from ${scratch.sql(table)} where dims = 'source' order by site, kind
      `;
      const made = [
        { site: 'default', kind: 'collect', vals: [null], events: 1, users: 1 },
        { site: 'p', kind: 'collect', vals: [null], events: 1, users: 1 },
        { site: 'p', kind: 'view', vals: [null], events: 2, users: 2 },
      ];
      expect(await sourceRows('dimensions_daily')).toEqual(made);
      expect(await sourceRows('dimensions_hourly')).toEqual(made);
      expect(
        await scratch.sql`select site, value_count, overflowed from headcount_rollup_days where dims = 'source' order by site`,
      ).toEqual([
        { site: 'default', value_count: 1, overflowed: false },
        { site: 'o', value_count: 0, overflowed: true },
        { site: 'p', value_count: 2, overflowed: false },
      ]);
      await steps.up();
      // The queued event is rolled up with its source (none) by the roller sql/ brings back.
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(1);
      expect(
        first(
          await scratch.sql`select sum(events)::int as n from dimensions_daily where site = 'default' and dims = 'source' and kind <> '*'`,
        ).n,
      ).toBe(2);
      await scratch.sql`insert into events (time, kind, user_id, referrer) values (now(), 'collect', 's', 'news.ycombinator.com')`;
      expect(first(await scratch.sql`select source from headcount_pending where referrer is not null`).source).toBeNull();
    } finally {
      await scratch.drop();
    }
  });

  it('keeps quarter hours from the start on a fresh database, and from a quarter after now on one with events', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const steps = migrationSteps(scratch.url, mode);
      const quartersFrom = async () =>
        first(
          await scratch.sql`
            select quarters_from::text as text, quarters_from > now() + interval '5 minutes' as ahead,
                   quarters_from <= now() + interval '35 minutes' as soon
            from headcount_settings
          `,
        );
      const quarters = async () => first(await scratch.sql`select count(*)::int as n from kinds_15m`).n;
      // Two events three days back (the UTC day's first and second quarter), one rolled up.
      const day = scratch.sql`date_trunc('day', now(), 'UTC') - interval '3 days'`;
      expect((await quartersFrom()).text).toBe('-infinity');
      await scratch.sql`insert into events (time, kind, user_id) values (${day} + interval '10 minutes', 'collect', 'a')`;
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(1);
      expect(await quarters()).toBe(2); // its kind's row and the row of every kind

      await scratch.sql`insert into events (time, kind, user_id) values (${day} + interval '20 minutes', 'collect', 'b')`;
      // The latest first (in these modes they change nothing: see 1796832000000_citus,
      // 1796918400000_replica_identities, 1797004800000_visit_staging, 1797091200000_visit_unit_tids and 1797264000000_visit_locks).
      await steps.down('1796572800000_quarter_hours');
      await steps.up();
      expect(await quartersFrom()).toMatchObject({ ahead: true, soon: true });
      // The queued event is before quarters_from: rolled up, but kept in no quarter; its
      // local hour in Asia/Kolkata (23:30 to 00:30 UTC) is read from minutes, exactly.
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(1);
      expect(await quarters()).toBe(0);
      const hour = await scratch.sql`
        select users::int, events::int
        from headcount_stats('default', ${day} - interval '30 minutes', ${day} + interval '30 minutes', 'hour', 'Asia/Kolkata')
      `;
      expect(hour).toEqual([{ users: 2, events: 2 }]);
    } finally {
      await scratch.drop();
    }
  });

  it('adds the rows of every kind (kind *) from the rows the rollups hold, and the roller keeps them', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const steps = migrationSteps(scratch.url, mode);
      // Two kinds of one user and one of another, rolled up, before the migration.
      await scratch.sql`
        insert into events (time, kind, user_id, country)
        values (now(), 'view', 'a', 'DE'), (now(), 'click', 'a', 'DE'), (now(), 'click', 'b', 'DE'), (now(), 'view', 'c', 'FR')
      `;
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(4);
      // The latest first (in these modes they change nothing: see 1796832000000_citus,
      // 1796918400000_replica_identities, 1797004800000_visit_staging, 1797091200000_visit_unit_tids and 1797264000000_visit_locks).
      await steps.down('1796659200000_every_kind_rows');
      expect(first(await scratch.sql`select count(*)::int as n from dimensions_daily where kind = '*'`).n).toBe(0);
      await steps.up();
      // A key's rows (part 0 and the roller's parts since its last fold) count as one.
      const everyKind = (table: string) => scratch.sql`
        select array_to_json(vals) as vals, sum(events)::int as events, hll_cardinality(hll_union_agg(users))::int as users
        from ${scratch.sql(table)} where dims = 'country' and kind = '*' group by vals order by vals::text
      `;
      for (const table of ['dimensions_hourly', 'dimensions_daily']) {
        expect(await everyKind(table), table).toEqual([
          { vals: ['DE'], events: 3, users: 2 },
          { vals: ['FR'], events: 1, users: 1 },
        ]);
      }
      // The roller sql/ brings back adds to them; a read by country unions them.
      await scratch.sql`insert into events (time, kind, user_id, country) values (now(), 'signup', 'a', 'DE'), (now(), 'signup', 'd', 'DE')`;
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(2);
      for (const table of ['dimensions_hourly', 'dimensions_daily']) {
        expect(await everyKind(table), table).toEqual([
          { vals: ['DE'], events: 5, users: 3 },
          { vals: ['FR'], events: 1, users: 1 },
        ]);
      }
      expect(
        await scratch.sql`
          select array_to_json(group_values) as g, users::int, events::int
          from headcount_stats('default', date_trunc('day', now()), date_trunc('day', now()) + interval '1 day', group_by => 'country')
        `,
      ).toEqual([
        { g: ['DE'], users: 3, events: 5 },
        { g: ['FR'], users: 1, events: 1 },
      ]);
    } finally {
      await scratch.drop();
    }
  });

  it('makes the rows the rollups hold part 0, and folds the parts back into one row per key going down', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const steps = migrationSteps(scratch.url, mode);
      // One instant for every event: a quarter, hour or day that ended between two inserts
      // made two rows of each key where this test counts one (a CI run at 05:30 UTC).
      const at = new Date();
      const add = (users: string[]) => scratch.sql`
        insert into events (time, kind, user_id, country) select ${at}, 'view', u, 'DE' from unnest(${users}::text[]) u
      `;
      const keyRows = async (table: string) =>
        (await scratch.sql`
          select events::int, hll_cardinality(users)::int as users from ${scratch.sql(table)}
          where dims = 'country' and kind = '*' order by events
        `) as { events: number; users: number }[];
      // A roll's parts, folded going down; the rows the rollups hold then are part 0 going up.
      await add(['a', 'b']);
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(2);
      await steps.down('1796745600000_rollup_parts');
      await steps.up();
      expect(await scratch.sql`select part::int from dimensions_daily where dims = 'country' and kind = '*'`).toEqual([
        { part: 0 },
      ]);
      // Two rolls after it: two parts beside part 0.
      await add(['b', 'c']);
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(2);
      await add(['d']);
      expect(first(await scratch.sql`select headcount_roll_up() as n`).n).toBe(1);
      for (const table of ['dimensions_hourly', 'dimensions_daily']) expect(await keyRows(table), table).toHaveLength(3);
      await steps.down('1796745600000_rollup_parts');
      for (const table of ['dimensions_hourly', 'dimensions_daily']) {
        expect(await keyRows(table), table).toEqual([{ events: 5, users: 4 }]);
      }
      expect(first(await scratch.sql`select count(*)::int as n from kinds_15m where kind = '*'`).n).toBe(1);
      await steps.up();
    } finally {
      await scratch.drop();
    }
  });

  it('runs up, down and up again, step by step', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const steps = migrationSteps(scratch.url, mode);
      await scratch.sql`insert into events (time, kind, user_id) values (now(), 'collect', 'u')`;
      // The latest first (in these modes they change nothing: see 1796832000000_citus,
      // 1796918400000_replica_identities, 1797004800000_visit_staging, 1797091200000_visit_unit_tids and 1797264000000_visit_locks).
      await steps.down('1796572800000_quarter_hours');
      expect(await columns(scratch.sql, 'headcount_settings')).not.toContain('quarters_from timestamp with time zone');
      await steps.down('1796486400000_source');
      for (const relation of ['events', 'headcount_pending', 'headcount_visits']) {
        expect(await columns(scratch.sql, relation)).not.toContain('source text');
      }
      await steps.down('1796400000000_visits');
      // Events stored before the visits: the migration makes theirs (b: one event at 01:00
      // UTC today, 40 minutes before two more; u: one). The same day, kind and page as u's,
      // so that the day sketches checked below keep one row.
      await scratch.sql`
        insert into events (time, kind, user_id)
        select date_trunc('day', now(), 'UTC') + m * interval '1 minute', 'collect', 'b' from unnest(array[60, 100, 110]) m
      `;
      await steps.up('1796400000000_visits');
      expect(
        await scratch.sql`
          select user_id, extract(epoch from ended - started)::int as seconds, others::int
          from headcount_visits order by user_id, started
        `,
      ).toEqual([
        { user_id: 'b', seconds: 0, others: 1 },
        { user_id: 'b', seconds: 600, others: 2 },
        { user_id: 'u', seconds: 0, others: 1 },
      ]);
      await steps.down('1796227200000_tracker_salts');
      expect(first(await scratch.sql`select to_regclass('headcount_salts')::text as salts`).salts).toBeNull();
      await steps.down('1796054400000_sql_objects');
      // The objects as the migrations before the layer left them: its helper is gone, and
      // the trigger function spells the hll parameters out again.
      expect(
        first(await scratch.sql`select count(*)::int as n from pg_proc where proname = 'headcount_sketch_parameters'`).n,
      ).toBe(0);
      expect(
        first(await scratch.sql`select prosrc from pg_proc where oid = 'headcount_apply_events()'::regprocedure`).prosrc,
      ).toContain('hll_hash_text(user_id, 0), 14, 5, -1, 1');
      await steps.down('1795622400000_api_keys');
      expect(await relationKinds(scratch.sql)).toMatchObject({ events: expect.any(String) });
      await steps.down('1795536000000_stats_function');
      expect(first(await scratch.sql`select count(*)::int as n from pg_proc where proname like 'headcount_stats%'`).n).toBe(0);
      await steps.down('1795449600000_sites_and_fresh_reads');
      expect(await columns(scratch.sql, 'users_daily')).toEqual(['bucket timestamp with time zone', 'users hll']);
      expect(first(await scratch.sql`select count(*)::int as n from events_daily`).n).toBe(1);
      await steps.down('1763870400000_storage');
      expect(await relationKinds(scratch.sql)).toEqual({});
      await steps.up('1796227200000_tracker_salts');
      expect(first(await scratch.sql`select to_regclass('headcount_salts')::text as salts`).salts).toBe('headcount_salts');
      await steps.up();
      expect(
        first(await scratch.sql`select count(*)::int as n from pg_proc where proname = 'headcount_sketch_parameters'`).n,
      ).toBe(1);
      // JIT compilation cost ~180 ms per 30-day stats call over 60 days of data (bench).
      const [stats] = await scratch.sql`
        select proconfig from pg_proc
        where oid = 'headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer, text[], text, bigint)'::regprocedure
      `;
      expect(stats?.proconfig).toContain('jit=off');
      await scratch.sql`insert into events (time, kind, user_id) values (now(), 'collect', 'u')`;
      const [row] = await scratch.sql`select site, events, hll_cardinality(users)::int as users from events_daily`;
      expect(row).toEqual({ site: 'default', events: 1, users: 1 });
      // The layer is applied again: inserts are queued for the dimension rollups.
      await scratch.sql`insert into events (time, kind, user_id, country) values (now(), 'collect', 'v', 'DE')`;
      expect(
        await scratch.sql`select array_to_json(group_values) as g, users, events
          from headcount_stats('default', date_trunc('day', now()), date_trunc('day', now()) + interval '1 day', group_by => 'country')
          order by group_values`,
      ).toEqual([
        { g: ['DE'], users: 1, events: 1 },
        { g: [null], users: 1, events: 1 },
      ]);
    } finally {
      await scratch.drop();
    }
  });
});

/**
 * A database created by v0.1.0, with data, migrated to the current release: nothing
 * lost, every answer the same, and the service runs on it.
 */
describeEachMode('upgrade from v0.1.0', (mode: StorageMode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createEmptyDatabase(mode);
    const v010 = Object.keys(RELEASES['v0.1.0']);
    expect(
      await migrate({ databaseUrl: db.url, storageMode: mode, count: v010.length, defaultSite: 'shop', log: silentLogger }),
    ).toEqual(v010);
    // As v0.1.0's service wrote them: back-dated days and the current hour, every kind.
    await db.sql`
      insert into events (time, kind, user_id, page, weight)
      select now() - (i % 50) * interval '1 day' - (i % 7) * interval '1 hour',
             (array['collect', 'click', 'impression'])[1 + i % 3], 'user-' || (i % 400), '', 1
      from generate_series(0, 5999) i
    `;
    await db.sql`insert into events (time, kind, user_id, page, weight) values (now() - interval '3 hours', 'pageview', null, '/a', 12)`;
    if (mode === 'timescaledb') {
      // v0.1.0 kept its aggregates materialized with policies.
      for (const view of ['events_minutely', 'events_hourly', 'events_daily', 'users_daily']) {
        const [job] = await db.sql`
          select job_id from timescaledb_information.jobs
          where hypertable_name = ${view} and proc_name = 'policy_refresh_continuous_aggregate'
        `;
        await db.sql`call run_job(${job!.job_id}::int)`;
      }
    }
  });
  afterAll(async () => db?.drop());

  it('keeps every event and answer, in the default site of the time of the upgrade', async () => {
    const before = await db.sql`
      select bucket, round(hll_cardinality(users))::int as users from users_daily order by bucket
    `;
    const hourly = await db.sql`
      select bucket, kind, page, events, round(hll_cardinality(users))::int as users from events_hourly order by 1, 2, 3
    `;
    expect(before.length).toBeGreaterThan(40);
    const ran = await migrate({ databaseUrl: db.url, storageMode: mode, defaultSite: 'shop', log: silentLogger });
    const all = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
    expect(ran).toEqual(all.filter((name) => !(name in RELEASES['v0.1.0'])));
    expect(first(await db.sql`select count(*)::int as n, min(site) as a, max(site) as b from events`)).toEqual({
      n: 6001,
      a: 'shop',
      b: 'shop',
    });
    expect(
      await db.sql`select bucket, round(hll_cardinality(users))::int as users from users_daily where site = 'shop' order by bucket`,
    ).toEqual(before);
    expect(
      await db.sql`
        select bucket, kind, page, events, round(hll_cardinality(users))::int as users from events_hourly
        where site = 'shop' order by 1, 2, 3
      `,
    ).toEqual(hourly);

    // Events from before dimensions have none: every dimension's answer is one group,
    // "no value", holding every user and event, per day and per hour, and the site is listed.
    const days = await db.sql<{ bucket: Date }[]>`select bucket from users_daily where site = 'shop' order by bucket`;
    const from = days[0]!.bucket;
    const to = new Date(days.at(-1)!.bucket.getTime() + 86_400_000);
    const total = first(await db.sql`select users, events from headcount_stats('shop', ${from}, ${to})`);
    for (const dimension of ['country', 'referrer', 'os']) {
      expect(
        await db.sql`select array_to_json(group_values) as group_values, users, events from headcount_stats('shop', ${from}, ${to}, group_by => ${dimension})`,
      ).toEqual([{ group_values: [null], ...total }]);
    }
    const hours =
      await db.sql`select bucket, users, events from headcount_stats('shop', date_trunc('hour', now()) - interval '2 days', date_trunc('hour', now()), 'hour')`;
    expect(
      await db.sql`select bucket, users, events from headcount_stats('shop', date_trunc('hour', now()) - interval '2 days', date_trunc('hour', now()), 'hour', filters => '{device==}')`,
    ).toEqual(hours);
    expect(first(await db.sql`select site, events from headcount_sites`)).toEqual({ site: 'shop', events: 6012 });
  });

  it('runs the service on it, and a write is in the next read', async () => {
    const t = await startTestApp(mode, {}, db);
    try {
      const day = daysAgo(10);
      await t.materialize();
      // The seed APIs of this test app use the site "default": this database's events are in "shop".
      expect(Number((await t.http.get('/daily_uniques').query({ d: isoDate(hoursAgo(2)) })).text)).toBe(0);
      const usersOn = async () =>
        first(
          await db.sql`
            select round(hll_cardinality(users))::int as users from users_daily where site = 'shop' and bucket = ${new Date(day)}
          `,
        ).users as number;
      const before = await usersOn();
      await db.sql`insert into events (site, time, kind, user_id) values ('shop', ${new Date(day + 3_600_000)}, 'collect', 'new-user')`;
      expect(await usersOn()).toBe(before + 1);
    } finally {
      await t.close();
    }
  });
});

describe('migrations by a database owner that is no superuser (managed PostgreSQL)', () => {
  it('migrates in postgres mode without reading superuser-only settings', async () => {
    const db = await createEmptyDatabase();
    const role = `owner_${Math.random().toString(36).slice(2, 8)}`;
    const name = new URL(db.url).pathname.slice(1);
    try {
      // What a managed service's admin does: a login role that owns the database, and hll.
      await withAdmin((admin) =>
        admin.unsafe(`create role ${role} login password 'secret'; alter database ${name} owner to ${role};`),
      );
      await withAdmin(async (admin) => {
        await admin`create extension if not exists hll`;
        await admin.unsafe(`alter schema public owner to ${role}`);
      }, name);
      const url = new URL(db.url);
      url.username = role;
      url.password = 'secret';
      const ran = await migrate({ databaseUrl: url.toString(), storageMode: 'auto', log: silentLogger });
      const all = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
      expect(ran).toEqual(all);
      const [settings] = await withAdmin((admin) => admin`select storage_mode from headcount_settings`, name);
      expect(settings?.storage_mode).toBe('postgres');
    } finally {
      await db.drop();
      await withAdmin((admin) => admin.unsafe(`drop role if exists ${role}`));
    }
  });
});

describe.skipIf(!modeAvailable('timescaledb'))('migrations, storage mode choice', () => {
  it('picks postgres mode when told to, even with TimescaleDB installed', async () => {
    const db = await createTestDatabase('postgres');
    try {
      const [row] = await db.sql`select storage_mode from headcount_settings`;
      expect(row?.storage_mode).toBe('postgres');
      const [ext] = await db.sql`select count(*)::int as n from pg_extension where extname = 'timescaledb'`;
      expect(ext?.n).toBe(0);
    } finally {
      await db.drop();
    }
  });
});
