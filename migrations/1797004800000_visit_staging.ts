import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Citus mode only: two staging tables for keeping the visits of a batch over many sites in
 * a few statements (sql/citus/headcount_track_visits_sites.sql), co-located with
 * headcount_visits so that Citus runs each statement on every shard at once instead of
 * one statement per site through the coordinator. Rows live only inside the writer's
 * transaction, tagged with a batch id of their own (no other transaction sees them).
 *
 *   headcount_visit_spans  a visitor's stretch of the batch, widened by visit_gap
 *   headcount_visit_units  the batch's events and the stored visits they meet, as units
 *
 * `replica identity full`: a rebalance by logical replication copies their deletes
 * (docs/operations.md); the rows are few and short-lived.
 */
const SPANS = 'headcount_visit_spans';
const UNITS = 'headcount_visit_units';

export async function up(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  // One statement per query (see 1796918400000_replica_identities).
  for (const statement of [
    `create table ${SPANS} (
      batch uuid not null,
      site text not null,
      user_id text not null,
      lo timestamptz not null,
      hi timestamptz not null
    )`,
    `create index ${SPANS}_batch_idx on ${SPANS} (batch)`,
    `comment on table ${SPANS} is 'headcount (citus mode): a batch''s visitors'' stretches, widened by visit_gap, while the batch''s transaction keeps visits (headcount_track_visits_sites); empty outside it'`,
    `create table ${UNITS} (
      batch uuid not null,
      site text not null,
      user_id text not null,
      started timestamptz not null,
      ended timestamptz not null,
      pageviews bigint not null,
      others bigint not null,
      entry_page text,
      entry_kind text not null,
      exit_page text,
      referrer text,
      utm_source text,
      utm_medium text,
      utm_campaign text,
      utm_content text,
      utm_term text,
      country text,
      device text,
      browser text,
      os text,
      source text
    )`,
    `create index ${UNITS}_batch_idx on ${UNITS} (batch)`,
    `comment on table ${UNITS} is 'headcount (citus mode): a batch''s events and the stored visits they meet, while the batch''s transaction keeps visits (headcount_track_visits_sites); empty outside it'`,
    `select create_distributed_table('${SPANS}', 'site', colocate_with => 'headcount_visits')`,
    `select create_distributed_table('${UNITS}', 'site', colocate_with => 'headcount_visits')`,
    `alter table ${SPANS} replica identity full`,
    `alter table ${UNITS} replica identity full`,
  ]) {
    pgm.sql(statement);
  }
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  if (!(await citusMode(pgm))) return;
  pgm.sql(`drop table ${UNITS}`);
  pgm.sql(`drop table ${SPANS}`);
}

async function citusMode(pgm: MigrationBuilder): Promise<boolean> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  return row.storage_mode === 'citus';
}
