import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Citus mode only: headcount_visit_locks loses its `writes` column. Its rows are made once
 * and only locked after that (over many sites, an insert whose ON CONFLICT DO UPDATE ...
 * WHERE false locks the rows it meets without writing them:
 * sql/citus/headcount_track_visits_sites.sql), so nothing counts writes any more, and the
 * inserts that make the rows name only the site and bucket.
 */
export async function up(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`alter table headcount_visit_locks drop column writes`);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`alter table headcount_visit_locks add column writes bigint not null default 0`);
}

async function citusMode(pgm: MigrationBuilder): Promise<boolean> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  return row.storage_mode === 'citus';
}
