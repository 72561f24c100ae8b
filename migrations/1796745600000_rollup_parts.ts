import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Parts: dimensions_hourly, dimensions_daily and kinds_15m get a column `part`, in their
 * primary key. A roll of the queue no longer rewrites the rows it adds to: it appends its
 * own, part = the roll's start in epoch milliseconds, holding only what it moved (small
 * sketches); every few minutes the roller folds the parts into the row of part 0. Reads
 * union every row of a key, as they union the rows of a range, so their answers do not
 * change; a key's rows are one row (part 0) plus the parts of the last few minutes.
 *
 * Why: a roll rewrote every row it touched, and the rows of the current day and hour of
 * a busy value are dense sketches of 10 KB, stored in TOAST. At 1,000,000 events a day, a
 * roll of 2,000 events upserted 869 such rows into each table, about 170 µs each (290 of
 * its 390 ms), and left a dead 10 KB copy of each: 15 GB of dimensions_daily on disk for
 * 622 MB of live rows after a 31-day bench (docs/benchmarks.md).
 *
 * Tables and data only; what keeps them is in sql/ (headcount_roll_up,
 * headcount_fold_parts). The rows stored so far are part 0. Until sql/ replaces it, the
 * roller below moves nothing (the one before would upsert on the old key, which no longer
 * exists; reads add what is queued, so answers stay exact).
 */
/** Each table with its key before parts. */
const TABLES = [
  ['dimensions_hourly', 'site, dims, bucket, kind, vals'],
  ['dimensions_daily', 'site, dims, bucket, kind, vals'],
  ['kinds_15m', 'site, bucket, kind'],
] as const;

export function up(pgm: MigrationBuilder): void {
  for (const [table, key] of TABLES) {
    pgm.sql(`
      alter table ${table} add column part bigint not null default 0;
      alter table ${table} drop constraint ${table}_pkey;
      alter table ${table} add primary key (${key}, part);
      create index ${table}_parts on ${table} (part) where part <> 0;
      comment on column ${table}.part is 'headcount: 0, or the start (epoch ms) of the roll that appended this row; the roller folds parts into part 0 every few minutes; a key''s count is the union of its rows';
    `);
  }
  pgm.sql(`
    create or replace function headcount_roll_up(max_rows integer default 20000)
    returns integer
    language sql
    as $$ select 0 $$;
  `);
}

export function down(pgm: MigrationBuilder): void {
  for (const [table, key] of TABLES) {
    pgm.sql(`
      create temp table folded on commit drop as
      select ${key}, sum(events)::bigint as events, hll_union_agg(users) as users from ${table} group by ${key};
      delete from ${table};
      alter table ${table} drop column part;
      insert into ${table} (${key}, events, users) select * from folded;
      drop table folded;
      alter table ${table} add primary key (${key});
    `);
  }
}
