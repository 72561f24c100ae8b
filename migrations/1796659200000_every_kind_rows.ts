import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Every kind in one row: dimensions_hourly and dimensions_daily get, per site, set of
 * dimensions, bucket and values, a row of kind '*' (no kind is one: kinds match
 * ^[a-z][a-z0-9_]{0,62}$) holding the union of that bucket's kinds. A read that neither
 * filters nor groups by kind, most of them, then unions one sketch per bucket and value
 * instead of one per kind. Tables and data only; what keeps and reads them is in sql/
 * (headcount_roll_up, headcount_stats).
 *
 * Made here from the rows the rollups hold, with them locked. The roller must not move a
 * queued event into the rollups without its '*' row between this migration and sql/,
 * which replaces headcount_roll_up: until then the one below moves nothing (reads add what
 * is queued, so answers stay exact).
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    lock table dimensions_hourly, dimensions_daily in exclusive mode;
    insert into dimensions_hourly (site, dims, bucket, kind, vals, events, users)
    select site, dims, bucket, '*', vals, sum(events)::bigint, hll_union_agg(users)
    from dimensions_hourly
    group by site, dims, bucket, vals;
    insert into dimensions_daily (site, dims, bucket, kind, vals, events, users)
    select site, dims, bucket, '*', vals, sum(events)::bigint, hll_union_agg(users)
    from dimensions_daily
    group by site, dims, bucket, vals;
    comment on table dimensions_hourly is 'headcount: per site, set of dimensions (dims), UTC hour, kind (''*'': every kind) and values, the event count and an hll sketch of the users';
    comment on table dimensions_daily is 'headcount: per site, set of dimensions (dims), UTC day, kind (''*'': every kind) and values, the event count and an hll sketch of the users';

    -- Replaced by sql/common/headcount_roll_up.sql when sql/ is applied (see above).
    create or replace function headcount_roll_up(max_rows integer default 20000)
    returns integer
    language sql
    as $$ select 0 $$;
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    delete from dimensions_hourly where kind = '*';
    delete from dimensions_daily where kind = '*';
    comment on table dimensions_hourly is 'headcount: per site, set of dimensions (dims), UTC hour, kind and values, the event count and an hll sketch of the users';
    comment on table dimensions_daily is 'headcount: per site, set of dimensions (dims), UTC day, kind and values, the event count and an hll sketch of the users';
  `);
}
