import type { Sql } from './client.js';

/**
 * citus: postgres mode's schema distributed over a Citus cluster (migration
 * 1796832000000_citus); the aggregates are kept by the writer, not by a trigger.
 */
export type StorageMode = 'timescaledb' | 'postgres' | 'citus';

/** The mode the migrations chose for this database (headcount_settings). */
export async function readStorageMode(sql: Sql): Promise<StorageMode> {
  const [row]: [{ storage_mode: StorageMode }?] = await sql`
    select storage_mode /* db/storage */
    from headcount_settings
  `;
  if (!row) throw new Error('headcount_settings is empty: run the migrations (npm run migrate)');
  return row.storage_mode;
}
