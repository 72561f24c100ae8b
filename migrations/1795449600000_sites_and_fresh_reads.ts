import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * v0.2: sites, idempotent event ids, day sketches that outlive the raw events, and a
 * read path on which an acknowledged event is in the very next read (DESIGN.md,
 * "Reads: read-your-writes"). Append-only: v0.1.0's migration is not touched.
 *
 * Both storage modes, the same relations and columns:
 *   events(time, kind, user_id, page, weight, site, id)
 *   events_minutely, events_hourly, events_daily (site, bucket, kind, page, events, users)
 *   totals_hourly, totals_daily (site, bucket, events, users): every kind and page of a
 *     site in one sketch, so that "distinct users of the site" unions one row a bucket
 *   users_daily (site, bucket, users): v0.1.0's name for totals_daily's sketches
 *
 * events_minutely is kept by a statement trigger on events, in the transaction of each
 * insert, in both modes: the current minute is always exact. Above it:
 *
 *  - postgres mode: the same trigger keeps hours and days (tables), as in v0.1.0.
 *  - timescaledb mode: hours and days are continuous aggregates over events_minutely,
 *    with a 10-minute level under the hour so that a read of the current hour unions at
 *    most 5 materialized 10-minute sketches and 10 minute sketches per key (a dense
 *    sketch costs ~50 µs to union). They are real-time, so buckets above their watermark
 *    are computed at read time from the level below. A row written *below* the
 *    watermark (back-dated) would stay invisible until a refresh; so the trigger records
 *    its hour in headcount_stale_hours in the same transaction, and the documented
 *    relations are views that answer a stale hour from its minutes and a day holding a
 *    stale hour from its (fresh) hours, until the service's refresher re-materializes
 *    them and removes the mark. The continuous aggregates themselves are
 *    `<relation>_cagg`, refreshed by the service only (no refresh policies: a policy
 *    moving a watermark past headcount_refresh_state.through would hide rows).
 *
 * Raw events, minutes and hours are kept 60 days; day sketches (events_daily,
 * totals_daily) 400 days by default (SKETCH_RETENTION_DAYS; the service sets the
 * policy or passes it to the maintenance function).
 */

const LOG2M = 14;
const REGWIDTH = 5;
const EXPTHRESH = -1;
const SPARSEON = 1;
const HASH_SEED = 0;
const RETENTION = `interval '60 days'`;
const SKETCH_RETENTION = `interval '400 days'`;
const usersSketch = `hll_add_agg(hll_hash_text(user_id, ${HASH_SEED}), ${LOG2M}, ${REGWIDTH}, ${EXPTHRESH}, ${SPARSEON})`;

type Mode = 'timescaledb' | 'postgres';

async function readMode(pgm: MigrationBuilder): Promise<Mode> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: Mode }];
  return row.storage_mode;
}

/** The site of the events stored before sites existed: DEFAULT_SITE, passed as headcount.default_site. */
async function defaultSite(pgm: MigrationBuilder): Promise<string> {
  const [row] = (await pgm.db.select(
    `select coalesce(nullif(current_setting('headcount.default_site', true), ''), 'default') as site`,
  )) as [{ site: string }];
  if (!/^[a-z0-9][a-z0-9._-]{0,127}$/.test(row.site)) throw new Error(`headcount.default_site is not a site name: ${row.site}`);
  return row.site;
}

const keyed = `site text not null, bucket timestamptz not null, kind text not null, page text not null, events bigint not null, users hll not null`;
const totals = `site text not null, bucket timestamptz not null, events bigint not null, users hll not null`;

/** Minute rows of `source` (raw events: new_events or events) folded into events_minutely. */
const upsertMinutes = (source: string) => `
  insert into events_minutely (site, bucket, kind, page, events, users)
  select site, date_trunc('minute', time, 'UTC'), kind, page, sum(weight), ${usersSketch}
  from ${source}
  group by 1, 2, 3, 4
  -- Concurrent batches lock the rows they update in one order: no deadlock.
  order by 1, 2, 3, 4
  on conflict (site, bucket, kind, page) do update
  set events = events_minutely.events + excluded.events,
      users = hll_union(events_minutely.users, excluded.users);
`;

const commonUp = (site: string) => `
  alter table events add column site text not null default '${site}'
    check (site ~ '^[a-z0-9][a-z0-9._-]{0,127}$');
  alter table events add column id text check (char_length(id) between 1 and 128);
  -- Idempotency: one event per (site, id, time); a resend is a conflict, not a new row.
  create unique index events_site_id_time_key on events (site, id, time) where id is not null;
  alter table headcount_settings add column sketch_retention interval not null default ${SKETCH_RETENTION};
  comment on column events.site is 'the site the event belongs to; the seed APIs use DEFAULT_SITE';
  comment on column events.id is 'the client''s id of the event (POST /v1/events); a resend with the same site, id and time is not stored again';
  comment on column headcount_settings.sketch_retention is 'how long day sketches (events_daily, totals_daily) are kept; raw events, minutes and hours: retention';
`;

const commonComments = `
  comment on table events_minutely is 'headcount: per site, minute, kind and page, the event count and an hll sketch of the users; kept by a trigger on events in the transaction of each insert';
  comment on view users_daily is 'headcount: v0.1.0''s name for the users of totals_daily';
`;

// ---------------------------------------------------------------------------------
// timescaledb mode
// ---------------------------------------------------------------------------------

/** A real-time continuous aggregate of `columns` over `source`, bucketed by `width`. */
const cagg = (name: string, width: string, source: string, perKey: boolean) => `
  create materialized view ${name}
  with (timescaledb.continuous, timescaledb.materialized_only = false) as
  select site, time_bucket(interval '${width}', bucket) as bucket${perKey ? ', kind, page' : ''},
         sum(events)::bigint as events, hll_union_agg(users) as users
  from ${source}
  group by ${perKey ? '1, 2, 3, 4' : '1, 2'}
  with no data;
`;

/**
 * The documented relation over a continuous aggregate: its materialized rows unless the
 * bucket holds a stale hour, else the bucket aggregated afresh from `finer` (a relation
 * that is itself fresh). `unit` is the bucket width. The joins are equalities (hashable)
 * and the fresh part a lateral per stale bucket (an index range scan of `finer`), so a
 * burst of back-dated hours costs little whatever the plan.
 */
function freshView(name: string, aggregate: string, finer: string, unit: 'hour' | 'day', perKey: boolean): string {
  const key = perKey ? ', f.kind, f.page' : '';
  const staleBucket = unit === 'hour' ? 's.hour' : `date_trunc('day', s.hour, 'UTC')`;
  return `
    create view ${name} as
    select a.*
    from ${aggregate} a
    where not exists (select from headcount_stale_hours s where s.site = a.site and ${staleBucket} = a.bucket)
    union all
    select s.site, s.bucket${key}, f.events, f.users
    from (select distinct site, ${staleBucket} as bucket from headcount_stale_hours s) s
    cross join lateral (
      select ${perKey ? 'kind, page, ' : ''}sum(events)::bigint as events, hll_union_agg(users) as users
      from ${finer}
      where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '1 ${unit}'
      ${perKey ? 'group by kind, page' : ''}
    ) f;
  `;
}

const timescaledbUp = `
  drop materialized view users_daily;
  drop materialized view events_daily;
  drop materialized view events_hourly;
  drop materialized view events_minutely;

  create table events_minutely (${keyed}, primary key (site, bucket, kind, page));
  select create_hypertable('events_minutely', by_range('bucket', interval '1 day'));
  select add_retention_policy('events_minutely', drop_after => ${RETENTION});
  ${upsertMinutes('events')}

  -- Hours written below the finest aggregate's watermark (headcount_refresh_state.through)
  -- and not yet re-materialized. version tells the refresher whether a mark it saw was
  -- renewed by a later write while it refreshed (then the mark stays).
  create table headcount_stale_hours (
    site text not null,
    hour timestamptz not null,
    version bigint not null,
    primary key (site, hour)
  );
  create sequence headcount_stale_version;
  create table headcount_refresh_state (
    only_row boolean primary key default true check (only_row),
    through timestamptz not null,
    materialized_through timestamptz not null
  );
  insert into headcount_refresh_state (through, materialized_through) values ('-infinity', '-infinity');
  comment on table headcount_stale_hours is 'headcount: hours holding events written below the continuous aggregates'' watermark and not yet re-materialized; the relations answer them from minutes meanwhile';
  comment on table headcount_refresh_state is 'headcount: events before through mark their hour stale; the continuous aggregates are materialized up to through, materialized_through once a refresh pass has done it';

  create function headcount_apply_events() returns trigger
  language plpgsql as $$
  begin
    ${upsertMinutes('new_events')}
    -- This runs after the upsert above, which holds a lock on events_minutely that the
    -- refresher's move of "through" waits for (src/db/refresher.ts); and plpgsql takes a
    -- new snapshot per statement. So "through" cannot move between this read and the
    -- commit: a row is either marked here or lies above every watermark until committed.
    insert into headcount_stale_hours (site, hour, version)
    select site, hour, nextval('headcount_stale_version')
    from (
      select distinct site, date_trunc('hour', time, 'UTC') as hour
      from new_events
      where time < (select through from headcount_refresh_state)
    ) hours
    order by 1, 2
    on conflict (site, hour) do update set version = excluded.version;
    return null;
  end
  $$;
  create trigger events_aggregate
    after insert on events
    referencing new table as new_events
    for each statement execute function headcount_apply_events();

  ${cagg('events_10m_cagg', '10 minutes', 'events_minutely', true)}
  ${cagg('events_hourly_cagg', '1 hour', 'events_10m_cagg', true)}
  ${cagg('events_daily_cagg', '1 day', 'events_hourly_cagg', true)}
  ${cagg('totals_10m_cagg', '10 minutes', 'events_minutely', false)}
  ${cagg('totals_hourly_cagg', '1 hour', 'totals_10m_cagg', false)}
  ${cagg('totals_daily_cagg', '1 day', 'totals_hourly_cagg', false)}
  select add_retention_policy(agg::regclass, drop_after => ${RETENTION})
  from unnest(array['events_10m_cagg', 'events_hourly_cagg', 'totals_10m_cagg', 'totals_hourly_cagg']) agg;
  select add_retention_policy(agg::regclass, drop_after => ${SKETCH_RETENTION})
  from unnest(array['events_daily_cagg', 'totals_daily_cagg']) agg;

  ${freshView('events_hourly', 'events_hourly_cagg', 'events_minutely', 'hour', true)}
  ${freshView('events_daily', 'events_daily_cagg', 'events_hourly', 'day', true)}
  ${freshView('totals_hourly', 'totals_hourly_cagg', 'events_minutely', 'hour', false)}
  ${freshView('totals_daily', 'totals_daily_cagg', 'totals_hourly', 'day', false)}
  create view users_daily as select site, bucket, users from totals_daily;
  ${commonComments}
`;

/** v0.1.0's continuous aggregates, for down(). */
const v010Cagg = (name: string, width: string, source: string, events: string, users: string, perKey = true) => `
  create materialized view ${name}
  with (timescaledb.continuous, timescaledb.materialized_only = false) as
  select time_bucket(interval '${width}', ${source === 'events' ? 'time' : 'bucket'}) as bucket${perKey ? ', kind, page' : ''},
         ${perKey ? `${events}::bigint as events, ` : ''}${users} as users
  from ${source}
  group by ${perKey ? '1, 2, 3' : '1'}
  with no data;
`;

const timescaledbDown = `
  drop view users_daily;
  drop view totals_daily;
  drop view totals_hourly;
  drop view events_daily;
  drop view events_hourly;
  drop materialized view totals_daily_cagg;
  drop materialized view totals_hourly_cagg;
  drop materialized view totals_10m_cagg;
  drop materialized view events_daily_cagg;
  drop materialized view events_hourly_cagg;
  drop materialized view events_10m_cagg;
  drop trigger events_aggregate on events;
  drop function headcount_apply_events();
  drop table headcount_refresh_state;
  drop table headcount_stale_hours;
  drop sequence headcount_stale_version;
  drop table events_minutely;

  ${v010Cagg('events_minutely', '1 minute', 'events', 'sum(weight)', usersSketch)}
  ${v010Cagg('events_hourly', '1 hour', 'events_minutely', 'sum(events)', 'hll_union_agg(users)')}
  ${v010Cagg('events_daily', '1 day', 'events_hourly', 'sum(events)', 'hll_union_agg(users)')}
  ${v010Cagg('users_daily', '1 day', 'events_hourly', '', 'hll_union_agg(users)', false)}
  select add_continuous_aggregate_policy(view::regclass, start_offset => ${RETENTION}, end_offset => end_offset, schedule_interval => schedule)
  from (values ('events_minutely', interval '1 minute', interval '1 minute'),
               ('events_hourly', interval '1 hour', interval '5 minutes'),
               ('events_daily', interval '1 day', interval '1 hour'),
               ('users_daily', interval '1 day', interval '1 hour')) p(view, end_offset, schedule);
  select add_retention_policy(view::regclass, drop_after => ${RETENTION})
  from unnest(array['events_minutely', 'events_hourly', 'events_daily', 'users_daily']) view;
`;

// ---------------------------------------------------------------------------------
// postgres mode
// ---------------------------------------------------------------------------------

/** Rows of new_events folded into an aggregate table per `unit` bucket. */
function upsertTable(name: string, unit: 'hour' | 'day', perKey: boolean): string {
  const key = perKey ? ', kind, page' : '';
  return `
    insert into ${name} (site, bucket${key}, events, users)
    select site, date_trunc('${unit}', time, 'UTC')${key}, sum(weight), ${usersSketch}
    from new_events
    group by ${perKey ? '1, 2, 3, 4' : '1, 2'}
    order by ${perKey ? '1, 2, 3, 4' : '1, 2'}
    on conflict (site, bucket${key}) do update
    set events = ${name}.events + excluded.events,
        users = hll_union(${name}.users, excluded.users);
  `;
}

/** An aggregate table filled from events_minutely (the migration's one-time backfill). */
function rollupTable(name: string, unit: 'hour' | 'day', perKey: boolean): string {
  const key = perKey ? ', kind, page' : '';
  return `
    create table ${name} (${perKey ? keyed : totals}, primary key (site, bucket${key}));
    insert into ${name} (site, bucket${key}, events, users)
    select site, date_trunc('${unit}', bucket, 'UTC')${key}, sum(events), hll_union_agg(users)
    from events_minutely
    group by ${perKey ? '1, 2, 3, 4' : '1, 2'};
  `;
}

const postgresUp = `
  drop view events_minutely;
  drop table events_hourly;
  drop table events_daily;
  drop table users_daily;
  drop function headcount_maintain_partitions(timestamptz, integer);

  -- Rows outside the day partitions (a backfill of days before the retention window, see
  -- README): kept until they leave the window like any other; their day sketches stay.
  create table events_default partition of events default;

  create table events_minutely (${keyed}, primary key (site, bucket, kind, page));
  ${upsertMinutes('events')}
  ${rollupTable('events_hourly', 'hour', true)}
  ${rollupTable('events_daily', 'day', true)}
  ${rollupTable('totals_hourly', 'hour', false)}
  ${rollupTable('totals_daily', 'day', false)}
  create view users_daily as select site, bucket, users from totals_daily;

  create or replace function headcount_apply_events() returns trigger
  language plpgsql as $$
  begin
    ${upsertMinutes('new_events')}
    ${upsertTable('events_hourly', 'hour', true)}
    ${upsertTable('events_daily', 'day', true)}
    ${upsertTable('totals_hourly', 'hour', false)}
    ${upsertTable('totals_daily', 'day', false)}
    return null;
  end
  $$;

  -- Day partitions for the retention window and a few days ahead; drops the days that
  -- left it, minutes and hours with them, and day sketches older than sketch_retention.
  -- Callers hold an advisory lock so that one instance at a time does it.
  create function headcount_maintain_partitions(
    at timestamptz default now(),
    days_ahead integer default 3,
    sketch_retention interval default null
  )
  returns table (created text[], dropped text[])
  language plpgsql as $$
  declare
    horizon timestamptz := at - ${RETENTION};
    kept interval := coalesce(sketch_retention, (select s.sketch_retention from headcount_settings s));
    day timestamptz;
    part record;
    made text[] := '{}';
    gone text[] := '{}';
    name text;
  begin
    for part in
      select c.relname
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'events'::regclass and c.relname ~ '^events_p[0-9]{8}$'
    loop
      -- Partitions are named by their UTC day: events_pYYYYMMDD.
      if to_timestamp(substr(part.relname, 9), 'YYYYMMDD')::timestamp at time zone 'UTC' + interval '1 day' <= horizon then
        execute format('drop table %I', part.relname);
        gone := gone || part.relname::text;
      end if;
    end loop;
    delete from events_default where time < date_trunc('day', horizon, 'UTC');
    delete from events_minutely where bucket < date_trunc('day', horizon, 'UTC');
    delete from events_hourly where bucket < date_trunc('day', horizon, 'UTC');
    delete from totals_hourly where bucket < date_trunc('day', horizon, 'UTC');
    delete from events_daily where bucket + interval '1 day' <= at - kept;
    delete from totals_daily where bucket + interval '1 day' <= at - kept;

    day := date_trunc('day', horizon, 'UTC');
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
  ${commonComments}
`;

const postgresDown = `
  drop view users_daily;
  drop function headcount_maintain_partitions(timestamptz, integer, interval);
  drop table events_default;
  drop table totals_daily;
  drop table totals_hourly;
  drop table events_daily;
  drop table events_hourly;
  drop table events_minutely;

  create table events_hourly (bucket timestamptz not null, kind text not null, page text not null, events bigint not null, users hll not null, primary key (bucket, kind, page));
  create table events_daily (bucket timestamptz not null, kind text not null, page text not null, events bigint not null, users hll not null, primary key (bucket, kind, page));
  create table users_daily (bucket timestamptz primary key, users hll not null);
  insert into events_hourly select date_trunc('hour', time, 'UTC'), kind, page, sum(weight), ${usersSketch} from events group by 1, 2, 3;
  insert into events_daily select date_trunc('day', bucket, 'UTC'), kind, page, sum(events), hll_union_agg(users) from events_hourly group by 1, 2, 3;
  insert into users_daily select bucket, hll_union_agg(users) from events_daily group by 1;
  create view events_minutely as
  select date_trunc('minute', time, 'UTC') as bucket, kind, page, sum(weight)::bigint as events, ${usersSketch} as users
  from events group by 1, 2, 3;
  create or replace function headcount_apply_events() returns trigger
  language plpgsql as $$
  begin
    insert into events_hourly (bucket, kind, page, events, users)
    select date_trunc('hour', time, 'UTC'), kind, page, sum(weight), ${usersSketch}
    from new_events group by 1, 2, 3 order by 1, 2, 3
    on conflict (bucket, kind, page) do update
    set events = events_hourly.events + excluded.events, users = hll_union(events_hourly.users, excluded.users);
    insert into events_daily (bucket, kind, page, events, users)
    select date_trunc('day', time, 'UTC'), kind, page, sum(weight), ${usersSketch}
    from new_events group by 1, 2, 3 order by 1, 2, 3
    on conflict (bucket, kind, page) do update
    set events = events_daily.events + excluded.events, users = hll_union(events_daily.users, excluded.users);
    insert into users_daily (bucket, users)
    select date_trunc('day', time, 'UTC'), ${usersSketch}
    from new_events group by 1 order by 1
    on conflict (bucket) do update set users = hll_union(users_daily.users, excluded.users);
    return null;
  end
  $$;
  create function headcount_maintain_partitions(at timestamptz default now(), days_ahead integer default 3)
  returns table (created text[], dropped text[])
  language plpgsql as $$
  declare
    day timestamptz;
    part record;
    made text[] := '{}';
    gone text[] := '{}';
    name text;
  begin
    for part in
      select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'events'::regclass and c.relname ~ '^events_p[0-9]{8}$'
    loop
      if to_timestamp(substr(part.relname, 9), 'YYYYMMDD')::timestamp at time zone 'UTC' + interval '1 day' <= at - ${RETENTION} then
        execute format('drop table %I', part.relname);
        gone := gone || part.relname::text;
      end if;
    end loop;
    delete from events_hourly where bucket + interval '1 hour' <= at - ${RETENTION};
    delete from events_daily where bucket + interval '1 day' <= at - ${RETENTION};
    delete from users_daily where bucket + interval '1 day' <= at - ${RETENTION};
    day := date_trunc('day', at - ${RETENTION}, 'UTC');
    while day <= date_trunc('day', at, 'UTC') + make_interval(days => days_ahead) loop
      name := 'events_p' || to_char(day at time zone 'UTC', 'YYYYMMDD');
      if to_regclass(name) is null then
        execute format('create table %I partition of events for values from (%L) to (%L)', name, day, day + interval '1 day');
        made := made || name;
      end if;
      day := day + interval '1 day';
    end loop;
    return query select made, gone;
  end
  $$;
`;

export async function up(pgm: MigrationBuilder): Promise<void> {
  const mode = await readMode(pgm);
  pgm.sql(commonUp(await defaultSite(pgm)));
  pgm.sql(mode === 'timescaledb' ? timescaledbUp : postgresUp);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  const mode = await readMode(pgm);
  pgm.sql(mode === 'timescaledb' ? timescaledbDown : postgresDown);
  pgm.sql(`
    alter table headcount_settings drop column sketch_retention;
    drop index events_site_id_time_key;
    alter table events drop column id;
    alter table events drop column site;
  `);
}
