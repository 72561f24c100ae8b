import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Citus mode only: headcount_visit_units keeps the tid of each stored visit it holds, so
 * that headcount_track_visits_sites deletes those visits by tid, driven by the units
 * (sql/citus/headcount_track_visits_sites.sql). A join on the visitor and the span was
 * planned by the workers from the shards' statistics, and with statistics of no rows it
 * read every visit of a shard once per unit. Null for the units that are the batch's
 * events. The table is empty outside a batch's transaction.
 */
const UNITS = 'headcount_visit_units';

export async function up(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`alter table ${UNITS} add column tid tid`);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`alter table ${UNITS} drop column tid`);
}

async function citusMode(pgm: MigrationBuilder): Promise<boolean> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  return row.storage_mode === 'citus';
}
