import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Raw events and the hourly/daily aggregates behind every query, in one of two
 * storage modes chosen here, at migration time (see DESIGN.md):
 *
 *  - timescaledb: `events` is a hypertable; `events_minutely`, `events_hourly` and
 *    `events_daily` are real-time continuous aggregates, each built on the one below,
 *    with refresh and retention policies.
 *  - postgres:    `events` is range-partitioned by day; `events_hourly` and
 *    `events_daily` are tables that a statement trigger keeps current in the
 *    transaction of each insert.
 *
 * Both expose the same relations and columns, so the queries have one code path:
 *   events(time, kind, user_id, page, weight)
 *   events_minutely / events_hourly / events_daily(bucket, kind, page, events, users)
 *   users_daily(bucket, users): the users of every kind per day, in one sketch, so
 *   that a 30-day answer is a union of 30 sketches rather than 30 × kinds
 * (events_minutely is a plain view over the raw events in postgres mode.)
 *
 * The mode comes from the session setting `headcount.storage_mode` (auto |
 * timescaledb | postgres) that `src/db/migrate.ts` passes from STORAGE_MODE.
 */

/** hll parameters, fixed for the life of the data: sketches only union with equals. */
const LOG2M = 14;
const REGWIDTH = 5;
const EXPTHRESH = -1; // auto: exact (explicit) sets while they are smaller than a full sketch
const SPARSEON = 1;
const HASH_SEED = 0;
const RETENTION = `interval '60 days'`;

const usersSketch = `hll_add_agg(hll_hash_text(user_id, ${HASH_SEED}), ${LOG2M}, ${REGWIDTH}, ${EXPTHRESH}, ${SPARSEON})`;

type Mode = 'timescaledb' | 'postgres';

async function chooseMode(pgm: MigrationBuilder): Promise<Mode> {
  const [row] = (await pgm.db.select(`
    select
      coalesce(nullif(current_setting('headcount.storage_mode', true), ''), 'auto') as wanted,
      exists (select 1 from pg_available_extensions where name = 'timescaledb') as available,
      current_setting('shared_preload_libraries') ~ '(^|[\\s,])timescaledb($|[\\s,])' as preloaded
  `)) as [{ wanted: string; available: boolean; preloaded: boolean }];
  if (row.wanted === 'postgres') return 'postgres';
  if (row.wanted === 'timescaledb') {
    if (!row.available || !row.preloaded) {
      throw new Error(
        'STORAGE_MODE=timescaledb but TimescaleDB is ' +
          (row.available ? 'not in shared_preload_libraries' : 'not installed on the database server'),
      );
    }
    return 'timescaledb';
  }
  if (row.wanted !== 'auto') throw new Error(`headcount.storage_mode must be auto, timescaledb or postgres, not ${row.wanted}`);
  return row.available && row.preloaded ? 'timescaledb' : 'postgres';
}

const eventsColumns = `
  time timestamptz not null,
  kind text not null check (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  user_id text check (char_length(user_id) between 1 and 256),
  page text not null default '' check (char_length(page) <= 2048),
  weight integer not null default 1 check (weight > 0)
`;

const comments = `
  comment on table headcount_settings is 'headcount: how this database was set up by the migrations';
  comment on column events.time is 'when the event happened (UTC; half-open hour and day buckets)';
  comment on column events.kind is 'collect | click | impression | pageview | any kind sent to /v1';
  comment on column events.user_id is 'the user (cid of /collect, user of /analytics); null when the event has none (page views)';
  comment on column events.page is 'the page of a page view; empty for other kinds';
  comment on column events.weight is 'how many events this row stands for (page-view counts are stored once, with their weight)';
`;

/** A real-time continuous aggregate with the columns every mode shares. */
function continuousAggregate(name: string, bucket: string, source: string, events: string, users: string): string {
  return `
    create materialized view ${name}
    with (timescaledb.continuous, timescaledb.materialized_only = false) as
    select ${bucket} as bucket, kind, page, ${events}::bigint as events, ${users} as users
    from ${source}
    group by 1, 2, 3
    with no data;
  `;
}

function timescaledbUp(): string {
  return `
    create extension if not exists timescaledb;

    create table events (${eventsColumns});
    select create_hypertable('events', by_range('time', interval '1 day'));
    select add_retention_policy('events', drop_after => ${RETENTION});

    -- Minutes under hours under days: refreshing the busy current hour then re-reads
    -- one minute of raw events and at most 60 minute sketches, instead of the whole hour
    -- (see src/db/refresher.ts).
    ${continuousAggregate('events_minutely', `time_bucket(interval '1 minute', time)`, 'events', 'sum(weight)', usersSketch)}
    ${continuousAggregate('events_hourly', `time_bucket(interval '1 hour', bucket)`, 'events_minutely', 'sum(events)', 'hll_union_agg(users)')}
    ${continuousAggregate('events_daily', `time_bucket(interval '1 day', bucket)`, 'events_hourly', 'sum(events)', 'hll_union_agg(users)')}
    create materialized view users_daily
    with (timescaledb.continuous, timescaledb.materialized_only = false) as
    select time_bucket(interval '1 day', bucket) as bucket, hll_union_agg(users) as users
    from events_hourly
    group by 1
    with no data;

    -- The service refreshes the current minute, hour and day every second or so. These
    -- policies are the floor when it does not run. Their windows reach back over the
    -- whole retention period, so that buckets written before a first refresh are
    -- materialized rather than hidden below the watermark; a refresh only reprocesses
    -- invalidated ranges, so a wide window costs little. Each level keeps its data as
    -- long as the raw events: a level refreshed from a thinner one below would lose data.
    select add_continuous_aggregate_policy('events_minutely',
      start_offset => ${RETENTION}, end_offset => interval '1 minute', schedule_interval => interval '1 minute');
    select add_continuous_aggregate_policy('events_hourly',
      start_offset => ${RETENTION}, end_offset => interval '1 hour', schedule_interval => interval '5 minutes');
    select add_continuous_aggregate_policy('events_daily',
      start_offset => ${RETENTION}, end_offset => interval '1 day', schedule_interval => interval '1 hour');
    select add_retention_policy('events_minutely', drop_after => ${RETENTION});
    select add_retention_policy('events_hourly', drop_after => ${RETENTION});
    select add_retention_policy('events_daily', drop_after => ${RETENTION});
    select add_continuous_aggregate_policy('users_daily',
      start_offset => ${RETENTION}, end_offset => interval '1 day', schedule_interval => interval '1 hour');
    select add_retention_policy('users_daily', drop_after => ${RETENTION});

    -- Where a continuous aggregate's materialized part ends; rows at or after it are
    -- aggregated at query time. Back-dated rows below it wait for a refresh.
    create function headcount_watermark(aggregate regclass) returns timestamptz
    language sql stable as $$
      select _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(ca.mat_hypertable_id))
      from _timescaledb_catalog.continuous_agg ca
      where format('%I.%I', ca.user_view_schema, ca.user_view_name)::regclass = aggregate
    $$;
  `;
}

function aggregateTable(name: string): string {
  return `
    create table ${name} (
      bucket timestamptz not null,
      kind text not null,
      page text not null,
      events bigint not null,
      users hll not null,
      primary key (bucket, kind, page)
    );
  `;
}

function upsertAggregate(name: string, unit: 'hour' | 'day'): string {
  return `
      insert into ${name} (bucket, kind, page, events, users)
      select date_trunc('${unit}', time, 'UTC'), kind, page, sum(weight), ${usersSketch}
      from new_events
      group by 1, 2, 3
      -- Concurrent batches lock the rows they update in one order: no deadlock.
      order by 1, 2, 3
      on conflict (bucket, kind, page) do update
      set events = ${name}.events + excluded.events,
          users = hll_union(${name}.users, excluded.users);
  `;
}

function postgresUp(): string {
  return `
    create table events (${eventsColumns}) partition by range (time);
    create index events_time_idx on events (time);
    ${aggregateTable('events_hourly')}
    ${aggregateTable('events_daily')}
    create table users_daily (
      bucket timestamptz primary key,
      users hll not null
    );
    -- Minute buckets are the base of the timescaledb hierarchy; here they are computed
    -- on demand, for analysts (the service reads hours and days).
    create view events_minutely as
    select date_trunc('minute', time, 'UTC') as bucket, kind, page, sum(weight)::bigint as events, ${usersSketch} as users
    from events
    group by 1, 2, 3;

    -- One statement-level trigger per insert (or COPY) folds the whole batch into the
    -- aggregates, in the same transaction: they are never behind the raw events.
    create function headcount_apply_events() returns trigger
    language plpgsql as $$
    begin
      ${upsertAggregate('events_hourly', 'hour')}
      ${upsertAggregate('events_daily', 'day')}
      insert into users_daily (bucket, users)
      select date_trunc('day', time, 'UTC'), ${usersSketch}
      from new_events
      group by 1
      order by 1
      on conflict (bucket) do update
      set users = hll_union(users_daily.users, excluded.users);
      return null;
    end
    $$;
    create trigger events_aggregate
      after insert on events
      referencing new table as new_events
      for each statement execute function headcount_apply_events();

    -- The aggregates cannot follow updates or deletes of single rows: events are
    -- append-only here, and old days leave by whole partitions (see below).
    create function headcount_reject_change() returns trigger
    language plpgsql as $$
    begin
      raise exception 'events are append-only in postgres storage mode'
        using errcode = 'feature_not_supported',
              hint = 'old days are dropped whole by headcount_maintain_partitions()';
    end
    $$;
    create trigger events_append_only
      before update or delete on events
      for each statement execute function headcount_reject_change();

    -- Day partitions for the whole retention window and a few days ahead; drops the
    -- days that have left the window, with their aggregate rows. Callers hold an
    -- advisory lock so that one instance at a time does it (src/db/partitions.ts).
    create function headcount_maintain_partitions(at timestamptz default now(), days_ahead integer default 3)
    returns table (created text[], dropped text[])
    language plpgsql as $$
    declare
      oldest timestamptz := date_trunc('day', at - ${RETENTION}, 'UTC');
      day timestamptz;
      part record;
      made text[] := '{}';
      gone text[] := '{}';
      name text;
    begin
      for part in
        select c.relname, pg_get_expr(c.relpartbound, c.oid) as bound
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'events'::regclass and c.relname ~ '^events_p[0-9]{8}$'
      loop
        -- Partitions are named by their UTC day: events_pYYYYMMDD.
        if to_timestamp(substr(part.relname, 9), 'YYYYMMDD')::timestamp at time zone 'UTC' + interval '1 day' <= at - ${RETENTION} then
          execute format('drop table %I', part.relname);
          gone := gone || part.relname::text;
        end if;
      end loop;
      delete from events_hourly where bucket + interval '1 hour' <= at - ${RETENTION};
      delete from events_daily where bucket + interval '1 day' <= at - ${RETENTION};
      delete from users_daily where bucket + interval '1 day' <= at - ${RETENTION};

      day := oldest;
      while day <= date_trunc('day', at, 'UTC') + make_interval(days => days_ahead) loop
        name := 'events_p' || to_char(day at time zone 'UTC', 'YYYYMMDD');
        if to_regclass(name) is null then
          execute format('create table %I partition of events for values from (%L) to (%L)',
                         name, day, day + interval '1 day');
          made := made || name;
        end if;
        day := day + interval '1 day';
      end loop;
      return query select made, gone;
    end
    $$;
    select headcount_maintain_partitions();
  `;
}

export async function up(pgm: MigrationBuilder): Promise<void> {
  const mode = await chooseMode(pgm);
  pgm.sql(`
    create extension if not exists hll;
    create table headcount_settings (
      only_row boolean primary key default true check (only_row),
      storage_mode text not null check (storage_mode in ('timescaledb', 'postgres')),
      retention interval not null,
      hll_log2m integer not null,
      hll_regwidth integer not null,
      hll_seed integer not null
    );
    insert into headcount_settings (storage_mode, retention, hll_log2m, hll_regwidth, hll_seed)
    values ('${mode}', ${RETENTION}, ${LOG2M}, ${REGWIDTH}, ${HASH_SEED});
  `);
  pgm.sql(mode === 'timescaledb' ? timescaledbUp() : postgresUp());
  pgm.sql(comments);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: Mode }?];
  if (row?.storage_mode === 'timescaledb') {
    pgm.sql(`
      drop function headcount_watermark(regclass);
      drop materialized view users_daily;
      drop materialized view events_daily;
      drop materialized view events_hourly;
      drop materialized view events_minutely;
      drop table events;
    `);
  } else {
    pgm.sql(`
      drop view events_minutely;
      drop table events;
      drop table events_hourly;
      drop table events_daily;
      drop table users_daily;
      drop function headcount_apply_events();
      drop function headcount_reject_change();
      drop function headcount_maintain_partitions(timestamptz, integer);
    `);
  }
  // The extensions stay: other objects in the database may use them.
  pgm.sql(`drop table headcount_settings;`);
}
