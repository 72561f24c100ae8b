import type { Sql } from '../src/db/client.js';
import type { StorageMode } from '../src/db/storage.js';
import { readSqlObjects } from '../src/db/sql-objects.js';

/**
 * A part of what an insert does (headcount_events_inserted calls headcount_apply_events,
 * headcount_queue_dimensions and headcount_track_visits, each taking the inserted rows)
 * turned off for a bench round: the part's function is replaced by one that does
 * nothing. Returns what puts the definition of sql/ back (the file, run again).
 */
export async function withoutPart(
  sql: Sql,
  mode: StorageMode,
  part: 'headcount_queue_dimensions' | 'headcount_track_visits',
): Promise<() => Promise<void>> {
  const object = (await readSqlObjects(mode)).find((o) => o.name === part);
  if (!object) throw new Error(`sql/ has no ${part}`);
  await sql.unsafe(`create or replace function ${part}(inserted events[]) returns void language plpgsql as $$ begin end $$`);
  return async () => {
    await sql.unsafe(object.text);
  };
}
