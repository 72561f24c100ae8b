import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/log.js';
import { describeEachMode, createTestDatabase, first, modeAvailable, type TestDatabase } from '../helpers/db.js';

const relationKinds = async (db: TestDatabase) =>
  Object.fromEntries(
    (
      await db.sql<{ relname: string; relkind: string }[]>`
        select relname, relkind::text from pg_class
        where relname in ('events', 'events_hourly', 'events_daily', 'users_daily', 'headcount_settings') and relnamespace = 'public'::regnamespace
      `
    ).map((r) => [r.relname, r.relkind]),
  );

const columns = async (db: TestDatabase, relation: string) =>
  db.sql<{ name: string; type: string }[]>`
    select attname as name, format_type(atttypid, atttypmod) as type
    from pg_attribute where attrelid = ${relation}::regclass and attnum > 0 and not attisdropped
    order by attnum
  `;

describeEachMode('migrations', (mode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(mode);
  });
  afterAll(async () => db?.drop());

  it('records the storage mode it chose', async () => {
    const [row] = await db.sql`select storage_mode, retention::text, hll_log2m, hll_regwidth from headcount_settings`;
    expect(row).toEqual({ storage_mode: mode, retention: '60 days', hll_log2m: 14, hll_regwidth: 5 });
  });

  it('exposes the same relations and columns in every mode', async () => {
    expect(await columns(db, 'events')).toEqual([
      { name: 'time', type: 'timestamp with time zone' },
      { name: 'kind', type: 'text' },
      { name: 'user_id', type: 'text' },
      { name: 'page', type: 'text' },
      { name: 'weight', type: 'integer' },
    ]);
    for (const aggregate of ['events_hourly', 'events_daily']) {
      expect(await columns(db, aggregate)).toEqual([
        { name: 'bucket', type: 'timestamp with time zone' },
        { name: 'kind', type: 'text' },
        { name: 'page', type: 'text' },
        { name: 'events', type: 'bigint' },
        { name: 'users', type: 'hll' },
      ]);
    }
    expect(await columns(db, 'users_daily')).toEqual([
      { name: 'bucket', type: 'timestamp with time zone' },
      { name: 'users', type: 'hll' },
    ]);
  });

  if (mode === 'timescaledb') {
    it('makes events a hypertable of 1-day chunks with a 60-day retention job', async () => {
      const [dim] = await db.sql`
          select column_name, time_interval::text from timescaledb_information.dimensions where hypertable_name = 'events'
        `;
      expect(dim).toEqual({ column_name: 'time', time_interval: '1 day' });
      const [job] = await db.sql`
          select config->>'drop_after' as drop_after from timescaledb_information.jobs
          where proc_name = 'policy_retention' and hypertable_name = 'events'
        `;
      expect(job).toEqual({ drop_after: '60 days' });
    });

    it('builds real-time continuous aggregates, minute under hour under day, with refresh and retention policies', async () => {
      const aggs = await db.sql`
          select view_name, materialized_only, materialization_hypertable_name as mat
          from timescaledb_information.continuous_aggregates order by view_name
        `;
      expect(aggs.map((a) => [a.view_name, a.materialized_only])).toEqual([
        ['events_daily', false],
        ['events_hourly', false],
        ['events_minutely', false],
        ['users_daily', false],
      ]);
      const jobs = await db.sql`
          select hypertable_name as view_name, proc_name, config
          from timescaledb_information.jobs
          where hypertable_name in ('events_minutely', 'events_hourly', 'events_daily', 'users_daily')
        `;
      const byView = (view: string, proc: string) => jobs.find((j) => j.view_name === view && j.proc_name === proc)?.config;
      expect(byView('events_minutely', 'policy_refresh_continuous_aggregate')).toMatchObject({
        start_offset: '60 days',
        end_offset: '00:01:00',
      });
      expect(byView('events_minutely', 'policy_retention')).toMatchObject({ drop_after: '60 days' });
      expect(byView('events_hourly', 'policy_refresh_continuous_aggregate')).toMatchObject({
        start_offset: '60 days',
        end_offset: '01:00:00',
      });
      expect(byView('events_daily', 'policy_refresh_continuous_aggregate')).toMatchObject({
        start_offset: '60 days',
        end_offset: '1 day',
      });
      expect(byView('events_hourly', 'policy_retention')).toMatchObject({ drop_after: '60 days' });
      expect(byView('events_daily', 'policy_retention')).toMatchObject({ drop_after: '60 days' });
      expect(byView('users_daily', 'policy_refresh_continuous_aggregate')).toMatchObject({ start_offset: '60 days' });
      expect(byView('users_daily', 'policy_retention')).toMatchObject({ drop_after: '60 days' });
      await expect(relationKinds(db)).resolves.toMatchObject({ events: 'r', events_hourly: 'v', events_daily: 'v' });
      const defs = await db.sql`select view_name, view_definition from timescaledb_information.continuous_aggregates`;
      const definition = (view: string) => String(defs.find((d) => d.view_name === view)?.view_definition);
      expect(definition('events_hourly')).toMatch(/FROM events_minutely/);
      expect(definition('events_daily')).toMatch(/FROM events_hourly/);
      expect(definition('users_daily')).toMatch(/FROM events_hourly/);
    });
  } else {
    it('partitions events by day over the retention window and keeps aggregate tables', async () => {
      expect(await relationKinds(db)).toMatchObject({ events: 'p', events_hourly: 'r', events_daily: 'r', users_daily: 'r' });
      const parts = first(
        await db.sql`
          select count(*)::int as n, min(c.relname) as first, max(c.relname) as last
          from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'events'::regclass
        `,
      );
      expect(parts.n).toBeGreaterThanOrEqual(61 + 3);
      const { oldest } = first(
        await db.sql`select to_char(date_trunc('day', now() - interval '60 days', 'UTC'), 'YYYYMMDD') as oldest`,
      );
      expect(parts.first).toBe(`events_p${oldest}`);
    });
  }

  it('runs up, down and up again', async () => {
    const scratch = await createTestDatabase(mode);
    try {
      const down = await migrate({ databaseUrl: scratch.url, storageMode: mode, direction: 'down', log: silentLogger });
      expect(down).toEqual(['1763870400000_storage']);
      expect(await relationKinds(scratch)).toEqual({});
      const up = await migrate({ databaseUrl: scratch.url, storageMode: mode, direction: 'up', log: silentLogger });
      expect(up).toEqual(['1763870400000_storage']);
      expect(Object.keys(await relationKinds(scratch)).sort()).toEqual([
        'events',
        'events_daily',
        'events_hourly',
        'headcount_settings',
        'users_daily',
      ]);
      await scratch.sql`insert into events (time, kind, user_id) values (now(), 'collect', 'u')`;
      const [row] = await scratch.sql`select events, hll_cardinality(users)::int as users from events_daily`;
      expect(row).toEqual({ events: 1, users: 1 });
    } finally {
      await scratch.drop();
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
