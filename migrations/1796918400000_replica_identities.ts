import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Citus mode only: a replica identity for the two distributed tables that had none, so
 * that a rebalance can move shards by logical replication while the service writes
 * (citus_rebalance_start(shard_transfer_mode => 'force_logical'), docs/operations.md).
 * While a shard is copied that way, its source publishes every delete and update, and
 * PostgreSQL refuses those on a table without a replica identity ("cannot delete from
 * table … because it does not have a replica identity and publishes deletes", 55000):
 * the roller's deletes from headcount_pending and the writer's merges of visits failed
 * until the move ended. `replica identity full` is no way out: the copy's apply then stops
 * at the first delete of headcount_pending (hll_hashval has no equality operator).
 *
 *   headcount_pending  + id bigserial, primary key (site, id)
 *   headcount_visits   unique index (site, user_id, started) as its replica identity (a
 *                      user's visits never overlap, so no two start at the same instant)
 *
 * Citus refuses a column with a default from a sequence (or an identity column) added to
 * a distributed table ("cannot execute ADD COLUMN commands involving identity columns
 * when metadata is synchronized to workers"; bigserial likewise): headcount_pending is
 * brought back to the coordinator (undistribute_table copies its rows there), given the
 * key and distributed again, all in this migration's transaction; writes and the roller
 * wait for it (the queue is small when the roller keeps up). A sequence, not an identity
 * column: Citus cannot undistribute or alter a table with an identity column, even one
 * since dropped, and 1796832000000_citus's down undistributes it. Each node draws the
 * values of the rows it inserts from a range of its own (Citus, for bigint sequences).
 *
 * The other modes keep these tables as they were: there the key would cost every event an
 * index entry and a sequence value, for a move that does not happen on one PostgreSQL.
 */
export async function up(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  // One statement per query: Citus hands some DDL on to the workers as the text of the
  // whole query, which the workers refuse when it holds several commands ("cannot insert
  // multiple commands into a prepared statement").
  for (const statement of [
    `set local citus.multi_shard_modify_mode to 'sequential'`,
    `select undistribute_table('headcount_pending')`,
    `alter table headcount_pending add column id bigserial`,
    `alter table headcount_pending add constraint headcount_pending_pkey primary key (site, id)`,
    `select create_distributed_table('headcount_pending', 'site', colocate_with => 'events')`,
    `create unique index headcount_visits_key on headcount_visits (site, user_id, started)`,
    `alter table headcount_visits replica identity using index headcount_visits_key`,
  ]) {
    pgm.sql(statement);
  }
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  for (const statement of [
    `alter table headcount_visits replica identity default`,
    `drop index headcount_visits_key`,
    `alter table headcount_pending drop constraint headcount_pending_pkey`,
    `alter table headcount_pending drop column id`,
  ]) {
    pgm.sql(statement);
  }
}

async function citusMode(pgm: MigrationBuilder): Promise<boolean> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  return row.storage_mode === 'citus';
}
