import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * The standard dimension `source`: where a visitor came from, by name ("Google", "Hacker
 * News", "Direct / None"), derived at ingest by POST /v1/events (src/tracker/sources.ts)
 * or sent as is. Tables and data only; what keeps and reads it is in sql/
 * (headcount_dimensions lists it).
 *
 *   events, headcount_pending, headcount_visits  + source text (a visit's: its first event's)
 *   dimensions_hourly, dimensions_daily          + the rows of dims 'source' for every
 *                     event the rollups hold now: every value null (no event stored
 *                     before has one), counted from the rows of another standard
 *                     dimension of the same day, which hold every event of it once
 *   headcount_rollup_days                        + 'source' per day: its value count, or
 *                     overflowed where every standard dimension overflowed that day (no
 *                     rows to count from: reads answer that day from raw events)
 *
 * The roller must not move a queued event into the rollups without its 'source' row
 * between this migration and sql/, which replaces headcount_roll_up: until then the one
 * below moves nothing (reads add what is queued, so answers stay exact). The events,
 * the queue and the rollups are locked meanwhile, so that nothing is rolled up or
 * queued between the copy and the new columns.
 */

/** The standard dimensions before this migration, as it shipped (src/dimensions.ts lists the current ones). */
const STANDARD = [
  'referrer',
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_content',
  'utm_term',
  'country',
  'device',
  'browser',
  'os',
];

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    alter table events add column source text;
    comment on column events.source is 'where the visitor came from, by name (Google, Hacker News, Direct / None): utm_source over the referrer, named from a list, or as sent';
    alter table headcount_pending add column source text;
    alter table headcount_visits add column source text;
    lock table dimensions_hourly, dimensions_daily, headcount_rollup_days in exclusive mode;

    -- Per site and UTC day the rollups hold: the first standard dimension whose rows of
    -- that day are whole (not overflowed, so not deleted); null when every one overflowed.
    create temporary table source_base on commit drop as
    select k.site, k.day,
           (select u.dims
            from unnest(array[${STANDARD.map((d) => `'${d}'`).join(', ')}]) with ordinality u(dims, i)
            where not exists (
              select from headcount_rollup_days o
              where o.site = k.site and o.dims = u.dims and o.day = k.day and o.overflowed
            )
            order by u.i
            limit 1) as base
    from (
      select site, bucket as day from dimensions_daily
      union
      -- A day whose every standard dimension overflowed has no rows left.
      select site, day from headcount_rollup_days where dims = any (array[${STANDARD.map((d) => `'${d}'`).join(', ')}])
    ) k;

    insert into dimensions_hourly (site, dims, bucket, kind, vals, events, users)
    select h.site, 'source', h.bucket, h.kind, array[null]::text[], sum(h.events)::bigint, hll_union_agg(h.users)
    from dimensions_hourly h
    join source_base b on b.site = h.site and b.base = h.dims and b.day = date_trunc('day', h.bucket, 'UTC')
    group by h.site, h.bucket, h.kind;

    insert into dimensions_daily (site, dims, bucket, kind, vals, events, users)
    select d.site, 'source', d.bucket, d.kind, array[null]::text[], sum(d.events)::bigint, hll_union_agg(d.users)
    from dimensions_daily d
    join source_base b on b.site = d.site and b.base = d.dims and b.day = d.bucket
    group by d.site, d.bucket, d.kind;

    insert into headcount_rollup_days (site, dims, day, value_count, overflowed)
    select b.site, 'source', b.day,
           (select count(*)::integer from dimensions_daily d where d.site = b.site and d.dims = 'source' and d.bucket = b.day),
           b.base is null
    from source_base b;

    -- Replaced by sql/common/headcount_roll_up.sql when sql/ is applied (see above).
    create or replace function headcount_roll_up(max_rows integer default 20000)
    returns integer
    language sql
    as $$ select 0 $$;
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    delete from headcount_rollups where 'source' = any (string_to_array(dims, ','));
    delete from headcount_rollup_days where 'source' = any (string_to_array(dims, ','));
    delete from dimensions_hourly where 'source' = any (string_to_array(dims, ','));
    delete from dimensions_daily where 'source' = any (string_to_array(dims, ','));
    alter table headcount_visits drop column source;
    alter table headcount_pending drop column source;
    alter table events drop column source;
  `);
}
