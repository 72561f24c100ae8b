import postgres from 'postgres';
import { deadlineOf, type Sql } from '../../db/client.js';
import { readWithin } from '../../db/deadline.js';
import { sqlState } from '../../db/errors.js';
import { boundSql, type RangeBound } from '../params.js';
import type { Granularity, StatsResponse } from './schemas.js';

export interface StatsRequest {
  site: string;
  from: RangeBound;
  to: RangeBound;
  granularity: Granularity;
  timezone: string;
  kinds: string[] | null;
  pages: string[] | null;
  /** The dimensions grouped by, in order (headcount_stats checks them). */
  groupBy: string[] | null;
  limit: number;
  /** Filter strings as given (headcount_parse_filters parses them). */
  filters: string[] | null;
  compare: 'previous_period' | null;
  /** Raw scans past this many events are refused (400 too_expensive). */
  maxRawRows: number;
}

/** How long a stats query may run: four times the pool's deadline (DATABASE_TIMEOUT_MS). */
export const statsDeadlineMs = (sql: Sql): number => 4 * deadlineOf(sql);

/** hll with log2m 14: 1.04 / √16384, rounded as the API states it. */
export const RELATIVE_STANDARD_ERROR = 0.0081;

/**
 * The database refused an argument of headcount_stats: `parameter` names the query
 * parameter; `tooExpensive`: the shape would scan more raw events than allowed.
 */
export class StatsArgumentError extends Error {
  override name = 'StatsArgumentError';
  constructor(
    readonly parameter: string,
    message: string,
    readonly tooExpensive = false,
  ) {
    super(message);
  }
}

interface Row {
  range_from: string;
  range_to: string;
  previous_from: string;
  bucket_label: string | null;
  group_values: (string | null)[] | null;
  users: number;
  events: number;
  approximate: boolean;
  previous_users: number | null;
  previous_events: number | null;
}

/**
 * GET /v1/stats: one call of headcount_stats (sql/common/headcount_stats.sql),
 * the function analysts call from psql, so both get the same answer. A left join keeps
 * the range's row when a grouped answer has no groups.
 */
export async function readStats(sql: Sql, req: StatsRequest): Promise<StatsResponse> {
  let rows: Row[];
  try {
    // A stats query does more than a seed read (many buckets, several levels): four times
    // the pool's deadline, after which the server ends it (readWithin).
    rows = await readWithin(
      sql,
      statsDeadlineMs(sql),
      (tx) => tx<Row[]>`
      with range as (
        select ${boundSql(sql, req.from, req.timezone)} as f, ${boundSql(sql, req.to, req.timezone)} as t
      )
      select /* v1/stats */
        headcount_format_time(r.f, ${req.timezone}) as range_from,
        headcount_format_time(r.t, ${req.timezone}) as range_to,
        headcount_format_time(r.f - (r.t - r.f), ${req.timezone}) as previous_from,
        s.bucket_label, array_to_json(s.group_values) as group_values, s.users, s.events, s.approximate,
        s.previous_users, s.previous_events
      from range r
      left join lateral headcount_stats(
        ${req.site}, r.f, r.t, ${req.granularity}, ${req.timezone},
        ${req.kinds}::text[], ${req.pages}::text[], ${req.groupBy?.join(',') ?? null}::text, ${req.limit}::int,
        ${req.filters}::text[], ${req.compare}::text, ${req.maxRawRows}::bigint
      ) s on true
    `,
    );
  } catch (err) {
    // The function's own refusals: SQLSTATE 22023 naming the argument (COLUMN).
    const state = sqlState(err);
    if ((state === '22023' || state === '54000') && err instanceof postgres.PostgresError && err.column_name) {
      throw new StatsArgumentError(err.column_name, err.message, state === '54000');
    }
    throw err;
  }
  const first = rows[0];
  if (!first) throw new Error('headcount_stats: the range row is missing');
  const groupBy = req.groupBy ?? [];
  const data = rows
    .filter((r) => r.bucket_label !== null)
    .map((r) => ({
      bucket: r.bucket_label!,
      ...Object.fromEntries(groupBy.map((name, i) => [name, r.group_values?.[i] ?? null])),
      users: r.users,
      events: r.events,
      ...(req.compare ? { previous: { users: r.previous_users ?? 0, events: r.previous_events ?? 0 } } : {}),
    }));
  return {
    meta: {
      site: req.site,
      from: first.range_from,
      to: first.range_to,
      timezone: req.timezone,
      granularity: req.granularity,
      approximate: rows.some((r) => r.approximate),
      relative_standard_error: RELATIVE_STANDARD_ERROR,
      ...(req.compare ? { previous: { from: first.previous_from, to: first.range_from } } : {}),
    },
    data,
  };
}
