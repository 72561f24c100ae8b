import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * v0.3: dimensions. Tables and data only; the functions and the trigger that keep and
 * read them are in sql/ (headcount_queue_dimensions, events_dimensions,
 * headcount_roll_up, headcount_stats). docs/storage.md, "Dimensions", says why.
 *
 *   events             + referrer (a host), utm_source, utm_medium, utm_campaign,
 *                        utm_content, utm_term, country, device, browser, os, props
 *   headcount_pending  every inserted event, queued by a statement trigger on events in
 *                      the insert's transaction, until the roller (headcount_roll_up)
 *                      moves it into the rollups in one transaction: a read sees each
 *                      event in exactly one of the two
 *   dimensions_hourly, dimensions_daily (site, dims, bucket, kind, vals, events, users)
 *                      per UTC hour (kept like raw events) and day (kept like day
 *                      sketches), per set of dimensions (dims: 'country', or
 *                      'country,device' for a declared combination), kind and values
 *   headcount_rollups  what a site rolls up beyond the standard dimensions: declared
 *                      properties and combinations, each from `since`
 *   headcount_rollup_days  per site, UTC day and dims: how many values the day holds;
 *                      past headcount_settings.rollup_max_values it stops (overflowed)
 *                      and reads of that day use the raw events
 *   headcount_sites    per site: its settings (time zone), first and last event and
 *                      the event count of what the roller has moved
 *
 * Events stored before this migration have no dimension values: their rollup rows are
 * made here from the kind-keyed hours and days (every standard dimension null), under a
 * SHARE lock on events, so that no insert falls between that copy and the queue trigger
 * this migration creates (sql/ replaces its function with the current definition).
 */

const STANDARD = ['referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'country', 'device', 'browser', 'os'];
const DIMENSION_COLUMNS = STANDARD.map((d) => `${d} text`).join(', ');

const rollupTable = (name: string) => `
  create table ${name} (
    site text not null,
    dims text not null,
    bucket timestamptz not null,
    kind text not null,
    vals text[] not null,
    events bigint not null,
    users hll not null,
    primary key (site, dims, bucket, kind, vals)
  );
`;

/** The rows of the standard dimensions for events stored before them: every value null. */
const backfill = (table: string, source: string) => `
  insert into ${table} (site, dims, bucket, kind, vals, events, users)
  select a.site, d.dims, a.bucket, a.kind, array[null]::text[], sum(a.events)::bigint, hll_union_agg(a.users)
  from ${source} a
  cross join unnest(array[${STANDARD.map((d) => `'${d}'`).join(', ')}]) d(dims)
  group by 1, 2, 3, 4;
`;

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    lock table events in share mode;

    alter table events
      ${STANDARD.map((d) => `add column ${d} text`).join(',\n      ')},
      add column props jsonb;
    comment on column events.referrer is 'the host the visitor came from (POST /v1/events referrer, a URL or host, stored as its lowercase host)';
    comment on column events.props is 'the event''s properties: an object of string values';

    create table headcount_pending (
      site text not null,
      time timestamptz not null,
      kind text not null,
      user_hash hll_hashval not null,
      weight integer not null,
      ${DIMENSION_COLUMNS},
      props jsonb
    );
    comment on table headcount_pending is 'headcount: events not yet in dimensions_hourly and dimensions_daily (the roller moves them); reads add them';

    ${rollupTable('dimensions_hourly')}
    ${rollupTable('dimensions_daily')}
    comment on table dimensions_hourly is 'headcount: per site, set of dimensions (dims), UTC hour, kind and values, the event count and an hll sketch of the users';
    comment on table dimensions_daily is 'headcount: per site, set of dimensions (dims), UTC day, kind and values, the event count and an hll sketch of the users';

    create table headcount_rollups (
      site text not null,
      dims text not null,
      since timestamptz not null default now(),
      primary key (site, dims)
    );
    comment on table headcount_rollups is 'headcount: the properties and combinations a site rolls up besides the standard dimensions; rollup rows count from the UTC day after since';

    create table headcount_rollup_days (
      site text not null,
      dims text not null,
      day timestamptz not null,
      value_count integer not null,
      overflowed boolean not null default false,
      primary key (site, dims, day)
    );
    comment on table headcount_rollup_days is 'headcount: values per site, dims and UTC day in dimensions_daily; an overflowed day is answered from raw events';

    create table headcount_sites (
      site text primary key check (site ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
      timezone text,
      first_event timestamptz,
      last_event timestamptz,
      events bigint not null default 0,
      created timestamptz not null default now(),
      updated timestamptz not null default now()
    );
    comment on table headcount_sites is 'headcount: every site, its settings, and its first and last event and event count as far as the roller has moved them (UTC day precision for events before v0.3)';

    alter table headcount_settings add column rollup_max_values integer not null default 5000 check (rollup_max_values > 0);
    comment on column headcount_settings.rollup_max_values is 'per site, set of dimensions and UTC day, how many values are rolled up; past it the day is answered from raw events';

    insert into headcount_sites (site, first_event, last_event, events)
    select site, min(bucket), max(bucket) + interval '1 day' - interval '1 microsecond', sum(events)::bigint
    from totals_daily
    group by site;

    ${backfill('dimensions_hourly', 'events_hourly')}
    ${backfill('dimensions_daily', 'events_daily')}

    -- Replaced by sql/common/headcount_queue_dimensions.sql when sql/ is applied: this
    -- copy only queues what is inserted between this migration and then.
    create function headcount_queue_dimensions() returns trigger
    language plpgsql
    as $$
    begin
      insert into headcount_pending (site, time, kind, user_hash, weight, ${STANDARD.join(', ')}, props)
      select site, time, kind, hll_hash_text(user_id, 0), weight, ${STANDARD.join(', ')}, props
      from new_events;
      return null;
    end
    $$;
    create trigger events_dimensions
      after insert on events
      referencing new table as new_events
      for each statement execute function headcount_queue_dimensions();
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    drop trigger if exists events_dimensions on events;
    drop function if exists headcount_queue_dimensions();
    alter table headcount_settings drop column rollup_max_values;
    drop table headcount_sites;
    drop table headcount_rollup_days;
    drop table headcount_rollups;
    drop table dimensions_daily;
    drop table dimensions_hourly;
    drop table headcount_pending;
    alter table events
      ${STANDARD.map((d) => `drop column ${d}`).join(',\n      ')},
      drop column props;
  `);
}
