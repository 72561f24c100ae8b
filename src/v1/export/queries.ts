import type { Sql } from '../../db/client.js';
import { boundSql, type RangeBound } from '../params.js';
import type { ExportFormat } from './schemas.js';

/** Rows fetched per round trip: memory holds one batch, whatever the range. */
const CURSOR_ROWS = 2000;

export const CSV_HEADER = 'time,site,kind,user,page,weight,id';

/** The instants a range's bounds stand for (a date is its local midnight in `timezone`). */
export async function resolveRange(
  sql: Sql,
  from: RangeBound,
  to: RangeBound,
  timezone: string,
): Promise<{ fromMs: number; toMs: number }> {
  const [row]: [{ f: Date; t: Date }?] = await sql`
    select ${boundSql(sql, from, timezone)} as f, ${boundSql(sql, to, timezone)} as t /* v1/export */
  `;
  return { fromMs: row!.f.getTime(), toMs: row!.t.getTime() };
}

/**
 * The events of `site` in [fromMs, toMs), oldest first, as text chunks of whole lines:
 * NDJSON objects with the fields of POST /v1/events, or CSV rows (RFC 4180, text
 * fields quoted) under CSV_HEADER. Read through a cursor; stopping the iteration
 * (a client gone) closes it.
 */
export async function* exportChunks(
  sql: Sql,
  req: { site: string; fromMs: number; toMs: number; format: ExportFormat },
): AsyncGenerator<string> {
  const from = new Date(req.fromMs);
  const to = new Date(req.toMs);
  const cursor =
    req.format === 'ndjson'
      ? sql<{ line: string }[]>`
          select row_to_json(e)::text as line /* v1/export */
          from (
            select to_char(time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as time,
                   site, kind, user_id as "user", page, weight, id
            from events
            where site = ${req.site} and time >= ${from} and time < ${to}
            order by events.time
          ) e
        `.cursor(CURSOR_ROWS)
      : sql<{ line: string }[]>`
          select /* v1/export */
            to_char(time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ',' || site || ',' || kind || ','
              || coalesce('"' || replace(user_id, '"', '""') || '"', '') || ','
              || '"' || replace(page, '"', '""') || '",' || weight || ','
              || coalesce('"' || replace(id, '"', '""') || '"', '') as line
          from events
          where site = ${req.site} and time >= ${from} and time < ${to}
          order by time
        `.cursor(CURSOR_ROWS);
  const eol = req.format === 'csv' ? '\r\n' : '\n';
  if (req.format === 'csv') yield CSV_HEADER + eol;
  for await (const rows of cursor) yield rows.map((r) => r.line).join(eol) + eol;
}
