/**
 * Dimensions, storage: what the dimensions add, each part as a share of the raw events'
 * size — the rollup tables live (sum(pg_column_size(row)): what their rows hold, counted)
 * and on disk (pg_total_relation_size, indexes, TOAST and dead rows included: reported,
 * since how much of it is dead depends on what ran beside the folds), the queue once
 * drained (and once vacuumed), and the dimension columns inside events
 * (avg(pg_column_size(column)) × rows: the bytes their values take in the rows).
 */
import type { Sql } from '../../src/db/client.js';
import { STANDARD_DIMENSIONS } from '../../src/dimensions.js';
import { fmt } from '../report.js';
import type { BenchContext } from './context.js';

export interface StoragePart {
  part: string;
  bytes: number;
  /** Of the raw events' size. */
  pctOfEvents: number;
  /**
   * Counted in "everything the dimensions add": the rollups and the queue (vacuumed). Not
   * counted: the queue before a vacuum (transient), and the dimension columns, which are
   * the events' own values, part of the raw events' size.
   */
  counted: boolean;
}

export interface DimensionStorage {
  eventsBytes: number;
  eventRows: number;
  parts: StoragePart[];
  addedBytes: number;
  addedPct: number;
}

/** Bytes of a table with its indexes and TOAST: a hypertable's chunks, or a partitioned table's partitions, summed. */
export async function relationBytes(sql: Sql, name: string): Promise<number> {
  const [ext]: [{ ts: boolean }?] = await sql`select exists (select from pg_extension where extname = 'timescaledb') as ts`;
  if (ext?.ts) {
    const [h]: [{ hyper: boolean }?] = await sql`
      select exists (select from timescaledb_information.hypertables where hypertable_name = ${name}) as hyper
    `;
    if (h?.hyper) {
      const [r]: [{ bytes: string }?] = await sql`select hypertable_size(${name}::regclass) as bytes`;
      return Number(r?.bytes ?? 0);
    }
  }
  // pg_partition_tree lists nothing for a table that is not partitioned.
  const [r]: [{ bytes: string }?] = await sql`
    select case when c.relkind = 'p'
                then (select coalesce(sum(pg_total_relation_size(t.relid)), 0) from pg_partition_tree(c.oid) t)
                else pg_total_relation_size(c.oid) end as bytes
    from pg_class c where c.oid = ${name}::regclass
  `;
  return Number(r?.bytes ?? 0);
}

/** Bytes the rows of a table hold (every partition or chunk): sum(pg_column_size(row)), no index, no dead row. */
async function liveBytes(sql: Sql, name: string): Promise<number> {
  const [r] = await sql.unsafe<[{ bytes: string | null }]>(`select sum(pg_column_size(t.*)) as bytes from ${name} t`);
  return Number(r.bytes ?? 0);
}

export async function measureDimensionStorage(ctx: BenchContext): Promise<DimensionStorage> {
  const { sql } = ctx;
  const { step, note } = ctx.progress;
  step('dimensions: storage of what they add, against the raw events');
  const eventsBytes = await relationBytes(sql, 'events');
  const parts: StoragePart[] = [];
  const add = (part: string, bytes: number, counted = true): void => {
    parts.push({ part, bytes, pctOfEvents: (bytes / eventsBytes) * 100, counted });
  };
  // kinds_15m (quarter hours by kind) came with the dimensions' zone reads: counted with them.
  for (const t of ['dimensions_hourly', 'dimensions_daily', 'dimensions_weekly', 'kinds_15m']) {
    add(`${t}, live rows`, await liveBytes(sql, t));
    add(`${t}, on disk`, await relationBytes(sql, t), false);
  }
  for (const t of ['headcount_rollup_days', 'headcount_rollups', 'headcount_sites']) add(t, await relationBytes(sql, t));
  add('headcount_pending, drained (before a vacuum)', await relationBytes(sql, 'headcount_pending'), false);
  await sql`vacuum headcount_pending`;
  add('headcount_pending, drained and vacuumed', await relationBytes(sql, 'headcount_pending'));
  const columns = [...STANDARD_DIMENSIONS, 'props'];
  const [c] = await sql.unsafe<[Record<string, string>]>(
    `select count(*) as rows, ${columns.map((d) => `coalesce(sum(pg_column_size(${d})), 0) as "${d}"`).join(', ')} from events`,
  );
  const eventRows = Number(c.rows);
  let columnsBytes = 0;
  for (const d of columns) {
    const bytes = Number(c[d]);
    columnsBytes += bytes;
    add(`events.${d} (column values)`, bytes, false);
  }
  // The values themselves, inside the raw events: reported, not added to the derived structures.
  add('events: the dimension columns together (inside the raw events)', columnsBytes, false);
  const addedBytes = parts.filter((p) => p.counted).reduce((a, p) => a + p.bytes, 0);
  const addedPct = (addedBytes / eventsBytes) * 100;
  for (const p of parts) note(`${p.part}: ${fmt(p.bytes / 2 ** 20, 1)} MiB, ${p.pctOfEvents.toFixed(2)} % of the events`);
  note(
    `raw events ${fmt(eventsBytes / 2 ** 20, 1)} MiB (${fmt(eventRows)} rows, dimension columns included); the dimensions add ${fmt(addedBytes / 2 ** 20, 1)} MiB = ${addedPct.toFixed(2)} %`,
  );
  return { eventsBytes, eventRows, parts, addedBytes, addedPct };
}
