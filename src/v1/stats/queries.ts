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
  groupBy: 'kind' | 'page' | null;
  limit: number;
}

/** How long a stats query may run: four times the pool's deadline (DATABASE_TIMEOUT_MS). */
export const statsDeadlineMs = (sql: Sql): number => 4 * deadlineOf(sql);

/** hll with log2m 14: 1.04 / √16384, rounded as the API states it. */
export const RELATIVE_STANDARD_ERROR = 0.0081;

/** The database refused an argument of headcount_stats: `parameter` names the query parameter. */
export class StatsArgumentError extends Error {
  override name = 'StatsArgumentError';
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}

interface Row {
  range_from: string;
  range_to: string;
  bucket_label: string | null;
  kind: string | null;
  page: string | null;
  users: number;
  events: number;
  approximate: boolean;
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
        s.bucket_label, s.kind, s.page, s.users, s.events, s.approximate
      from range r
      left join lateral headcount_stats(
        ${req.site}, r.f, r.t, ${req.granularity}, ${req.timezone},
        ${req.kinds}::text[], ${req.pages}::text[], ${req.groupBy}::text, ${req.limit}::int
      ) s on true
    `,
    );
  } catch (err) {
    // The function's own refusals: SQLSTATE 22023 naming the argument (COLUMN).
    if (sqlState(err) === '22023' && err instanceof postgres.PostgresError && err.column_name) {
      throw new StatsArgumentError(err.column_name, err.message);
    }
    throw err;
  }
  const first = rows[0];
  if (!first) throw new Error('headcount_stats: the range row is missing');
  const data = rows
    .filter((r) => r.bucket_label !== null)
    .map((r) => ({
      bucket: r.bucket_label!,
      ...(req.groupBy === 'kind' ? { kind: r.kind ?? '' } : {}),
      ...(req.groupBy === 'page' ? { page: r.page ?? '' } : {}),
      users: r.users,
      events: r.events,
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
    },
    data,
  };
}
