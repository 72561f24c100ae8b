import type { Sql } from '../../db/client.js';
import { STANDARD_DIMENSIONS } from '../../dimensions.js';
import { boundSql, type RangeBound } from '../params.js';
import type { ExportFormat } from './schemas.js';

/** Rows fetched per round trip: memory holds one batch, whatever the range. */
const CURSOR_ROWS = 2000;

export const CSV_HEADER = ['time,site,kind,user,page,weight,id', ...STANDARD_DIMENSIONS, 'props'].join(',');

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
 * What a spreadsheet reads as the start of a formula (OWASP, CSV injection): `=`, `+`,
 * `-`, `@`, and tab and carriage return, after which some applications still evaluate.
 */
const FORMULA_STARTS = ['=', '+', '-', '@', '\t', '\r'];

/**
 * A text column as one CSV field: quoted, quotes doubled (RFC 4180), and a value that a
 * spreadsheet would take for a formula prefixed with `'` (OWASP's rule), so that a user,
 * page or dimension sent with the embeddable ingest key cannot become a live formula in
 * an analyst's spreadsheet. Null is an empty field.
 */
function csvText(sql: Sql, column: string) {
  const value = sql`
    case when left(${sql(column)}, 1) = any(${FORMULA_STARTS}::text[]) then '''' || ${sql(column)} else ${sql(column)} end
  `;
  return sql`coalesce('"' || replace(${value}, '"', '""') || '"', '')`;
}

/**
 * The events of `site` in [fromMs, toMs), oldest first, as text chunks of whole lines:
 * NDJSON objects with the fields of POST /v1/events, verbatim, or CSV rows (RFC 4180,
 * text fields quoted, formulas neutralised: csvText) under CSV_HEADER. Read through a cursor; stopping the iteration
 * (a client gone) closes it.
 *
 * An NDJSON line has the fields every event has (id null when it has none), then only the
 * dimensions and props it has: most events of the seed APIs have none, and ten nulls would
 * more than double their lines. POST /v1/events takes such a line back as it is.
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
          select /* v1/export */
            case
              when num_nonnulls(referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
                                country, device, browser, os, source, props) = 0 then e.line
              else left(e.line, -1) || ',' || substr(json_strip_nulls(json_build_object(
                'referrer', referrer, 'utm_source', utm_source, 'utm_medium', utm_medium,
                'utm_campaign', utm_campaign, 'utm_content', utm_content, 'utm_term', utm_term,
                'country', country, 'device', device, 'browser', browser, 'os', os, 'source', source, 'props', props
              ))::text, 2)
            end as line
          from events,
            lateral (
              select row_to_json(r)::text as line
              from (
                select to_char(time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as time,
                       site, kind, user_id as "user", page, weight, id
              ) r
            ) e
          where site = ${req.site} and time >= ${from} and time < ${to}
          order by events.time
        `.cursor(CURSOR_ROWS)
      : sql<{ line: string }[]>`
          select /* v1/export */
            to_char(time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ',' || site || ',' || kind || ','
              || ${csvText(sql, 'user_id')} || ',' || ${csvText(sql, 'page')} || ',' || weight || ','
              || ${csvText(sql, 'id')}
              ${STANDARD_DIMENSIONS.reduce((line, name) => sql`${line} || ',' || ${csvText(sql, name)}`, sql``)}
              || ',' || coalesce('"' || replace(props::text, '"', '""') || '"', '') as line
          from events
          where site = ${req.site} and time >= ${from} and time < ${to}
          order by time
        `.cursor(CURSOR_ROWS);
  const eol = req.format === 'csv' ? '\r\n' : '\n';
  if (req.format === 'csv') yield CSV_HEADER + eol;
  for await (const rows of cursor) yield rows.map((r) => r.line).join(eol) + eol;
}
