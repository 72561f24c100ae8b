import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Citus mode only: headcount_visit_locks, a row per site and bucket of visitors (the
 * buckets of the coordinator's visitor locks: hashtext(site/user) & 255), which every
 * write locks for its visitors before its visits statements
 * (sql/citus/headcount_events_inserted.sql), on the worker holding the site. The
 * coordinator's locks order two writes of a visitor, but its commit releases them, and a
 * worker that missed the COMMIT PREPARED holds its part of the first write prepared
 * (invisible) until a recovery: a write of a new visitor sent meanwhile found none of its
 * visits and stored a second one beside it. A prepared transaction keeps the row locks it
 * took (and its inserted rows' keys), so now the second write waits there for the
 * recovery, and its next statement reads the visit committed. Live writes never wait on
 * these rows: two that share a bucket already wait for each other on the coordinator.
 *
 * At most 256 rows a site, made once and never written again (only locked).
 */
const LOCKS = 'headcount_visit_locks';

export async function up(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  // One statement per query (see 1796918400000_replica_identities).
  for (const statement of [
    `create table ${LOCKS} (
      site text not null,
      bucket integer not null,
      primary key (site, bucket)
    )`,
    `comment on table ${LOCKS} is 'headcount (citus mode): a row per site and bucket of visitors, locked by every write of its visitors before it keeps their visits, so that a later write waits on the worker until the earlier one has ended there (also when only a recovery can commit it)'`,
    `select create_distributed_table('${LOCKS}', 'site', colocate_with => 'headcount_visits')`,
  ]) {
    pgm.sql(statement);
  }
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`drop table ${LOCKS}`);
}

async function citusMode(pgm: MigrationBuilder): Promise<boolean> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  return row.storage_mode === 'citus';
}
