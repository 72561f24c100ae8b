import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Parts for the aggregates every insert keeps: events_minutely in timescaledb mode, and
 * in postgres and citus modes events_minutely, events_hourly, events_daily, totals_hourly
 * and totals_daily, get a column `part`, in their primary key. An insert no longer
 * rewrites the rows it adds to: it appends its own, part = its transaction's id, holding
 * only its own events (a small sketch), and headcount_fold_events folds the parts into
 * part 0 every second (the roller, src/db/roller.ts; and the refresher before it moves its
 * watermark). Reads union every row of a key, as they union the rows of a range, so their
 * answers do not change.
 *
 * Why: once a page has more than ~1,280 users in a minute (an hour, a day), its sketch is
 * dense, 10 KB in TOAST, and every batch with an event for it rewrote it, ~110 µs a row:
 * a single-event POST /v1/events over 50 pages cost 72 µs of PostgreSQL an event in that
 * upsert alone, five times over in postgres mode (docs/benchmarks.md, "Minute parts").
 *
 * Tables and data only; what writes and folds them is in sql/ (headcount_apply_events,
 * headcount_fold_events). The rows stored so far are part 0.
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
    pgm.sql(`alter table ${table} add column part bigint not null default 0`);
    pgm.sql(`alter table ${table} drop constraint ${table}_pkey`);
    pgm.sql(`alter table ${table} add primary key (${key}, part)`);
    pgm.sql(`create index ${table}_parts on ${table} (part) where part <> 0`);
    pgm.sql(
      `comment on column ${table}.part is 'headcount: 0, or the id of the transaction that appended this row; headcount_fold_events folds parts into part 0 every second; a key''s count is the union of its rows'`,
    );
  }
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  for (const [table, key] of await tables(pgm)) {
    pgm.sql(`
      create temp table folded as
      select ${key}, sum(events)::bigint as events, hll_union_agg(users) as users from ${table} group by ${key}
    `);
    pgm.sql(`delete from ${table}`);
    pgm.sql(`alter table ${table} drop column part`);
    pgm.sql(`insert into ${table} (${key}, events, users) select * from folded`);
    pgm.sql(`drop table folded`);
    pgm.sql(`alter table ${table} add primary key (${key})`);
  }
}
