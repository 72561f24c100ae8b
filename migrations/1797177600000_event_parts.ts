import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Parts for the aggregates every insert keeps: events_minutely in every mode, and in
 * postgres and citus modes events_hourly, events_daily, totals_hourly and totals_daily.
 * Each table becomes <name>_parts with a column `part` in its primary key, and <name> a
 * view of one row per key over it (sql/: the union of the key's rows), so the documented
 * relations answer as before, in psql too. An insert no longer rewrites the rows it adds
 * to: it appends its own, part = its transaction's id, holding only its own events (a
 * small sketch), and headcount_fold_events folds the parts into part 0 every second (the
 * roller, src/db/roller.ts; and the refresher before it moves its watermark).
 *
 * Why: once a page has more than ~1,280 users in a minute (an hour, a day), its sketch is
 * dense, 10 KB in TOAST, and every batch with an event for it rewrote it, ~110 µs a row:
 * a single-event POST /v1/events over 50 pages cost 72 µs of PostgreSQL an event in that
 * upsert alone, five times over in postgres mode (docs/benchmarks.md, "Insert parts").
 *
 * Tables and data only; what writes, folds and reads them is in sql/
 * (headcount_apply_events, headcount_fold_events, the views). The rows stored so far are
 * part 0. In timescaledb mode events_minutely_parts is the hypertable under the
 * continuous aggregates (a rename: they follow it).
 */
const KEYED = ['events_minutely', 'events_hourly', 'events_daily'];
const TOTALS = ['totals_hourly', 'totals_daily'];

async function tables(pgm: MigrationBuilder): Promise<[string, string][]> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  const names = row.storage_mode === 'timescaledb' ? ['events_minutely'] : [...KEYED, ...TOTALS];
  return names.map((t) => [t, TOTALS.includes(t) ? 'site, bucket' : 'site, bucket, kind, page']);
}

export async function up(pgm: MigrationBuilder): Promise<void> {
  for (const [table, key] of await tables(pgm)) {
    // One statement a call: in citus mode each is a distributed DDL command of its own.
    pgm.sql(`alter table ${table} rename to ${table}_parts`);
    pgm.sql(`alter table ${table}_parts add column part bigint not null default 0`);
    pgm.sql(`alter table ${table}_parts drop constraint ${table}_pkey`);
    pgm.sql(`alter table ${table}_parts add primary key (${key}, part)`);
    pgm.sql(`create index ${table}_parts_appended on ${table}_parts (bucket, part) where part <> 0`);
    pgm.sql(
      `comment on column ${table}_parts.part is 'headcount: 0, or the id of the transaction that appended this row; headcount_fold_events folds parts into part 0 every second; a key''s count is the union of its rows (the view ${table})'`,
    );
  }
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  for (const [table, key] of await tables(pgm)) {
    pgm.sql(`
      create temp table folded as
      select ${key}, sum(events)::bigint as events, hll_union_agg(users) as users from ${table}_parts group by ${key}
    `);
    pgm.sql(`delete from ${table}_parts`);
    pgm.sql(`alter table ${table}_parts drop column part`);
    pgm.sql(`insert into ${table}_parts (${key}, events, users) select * from folded`);
    pgm.sql(`drop table folded`);
    pgm.sql(`alter table ${table}_parts add constraint ${table}_pkey primary key (${key})`);
    pgm.sql(`alter table ${table}_parts rename to ${table}`);
  }
}
