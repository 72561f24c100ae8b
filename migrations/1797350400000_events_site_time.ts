import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * events is read by site and time range only (headcount_stats' raw ranges, the export),
 * but its index was on time alone (TimescaleDB's default, time desc, or events_time_idx
 * of postgres mode): a raw read of one site went through every site's events of the range
 * and dropped the others. One index replaces it, on (site, time), in every mode (Citus
 * makes it on every shard). Reads of a small site's raw events took 0.45 of the time, the
 * largest's 0.82-0.86; inserts cost the same (docs/benchmarks.md, "One site's raw events").
 *
 * Building it holds inserts into events until it is made (about a second per million
 * events here, so about a minute at 60 days of 1,000,000 a day): writes wait, and past
 * the service's ingest timeout are answered 503, not stored.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`create index events_site_time_idx on events (site, time)`);
  pgm.sql(`drop index events_time_idx`);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  pgm.sql(`create index events_time_idx on events (time${row.storage_mode === 'timescaledb' ? ' desc' : ''})`);
  pgm.sql(`drop index events_site_time_idx`);
}
