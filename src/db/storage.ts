import type { Sql } from './client.js';

export type StorageMode = 'timescaledb' | 'postgres';

/** The mode the migrations chose for this database (headcount_settings). */
export async function readStorageMode(sql: Sql): Promise<StorageMode> {
  const [row]: [{ storage_mode: StorageMode }?] = await sql`
    select storage_mode /* db/storage */
    from headcount_settings
  `;
  if (!row) throw new Error('headcount_settings is empty: run the migrations (npm run migrate)');
  return row.storage_mode;
}
