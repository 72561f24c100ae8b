import postgres from 'postgres';
import { deadlineOf, type Sql } from '../../db/client.js';
import { readWithin } from '../../db/deadline.js';
import { sqlState } from '../../db/errors.js';
import { boundSql, type RangeBound } from '../params.js';
import { EVENT_METRICS, type Granularity, type Metric, type StatsResponse, VISIT_METRICS } from './schemas.js';

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
  /** What each row carries (metrics=): users and events from headcount_stats, visit metrics from headcount_visit_stats. */
  metrics: Metric[];
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
  visits: number | null;
  bounce_rate: number | null;
  visit_duration_mean: number | null;
  visit_duration_median: number | null;
  pageviews_per_visit: number | null;
  previous_visits: number | null;
  previous_bounce_rate: number | null;
  previous_visit_duration_mean: number | null;
  previous_visit_duration_median: number | null;
  previous_pageviews_per_visit: number | null;
}

const has = (metrics: Metric[], some: readonly Metric[]): boolean => metrics.some((m) => some.includes(m));

/** The figures of `metrics` in a row (`prefix` previous_ for the previous period's). */
function figures(r: Row, metrics: Metric[], prefix: '' | 'previous_'): Record<string, unknown> {
  const p = <K extends string>(k: K) => `${prefix}${k}` as keyof Row;
  const out: Record<string, unknown> = {};
  for (const m of metrics) {
    if (m === 'users' || m === 'events' || m === 'visits') out[m] = r[p(m)] ?? 0;
    else if (m === 'visit_duration') out[m] = { mean: r[p('visit_duration_mean')], median: r[p('visit_duration_median')] };
    else out[m] = r[p(m)];
  }
  return out;
}

/**
 * GET /v1/stats: one call of headcount_stats (sql/common/headcount_stats.sql) for users
 * and events, of headcount_visit_stats for visit metrics, or both in one statement (one
 * snapshot) joined by bucket: the functions analysts call from psql, so both get the
 * same answer. A left join keeps the range's row when a grouped answer has no groups.
 */
export async function readStats(sql: Sql, req: StatsRequest): Promise<StatsResponse> {
  const events = has(req.metrics, EVENT_METRICS);
  const visits = has(req.metrics, VISIT_METRICS);
  if (visits && (req.kinds || req.pages)) {
    const parameter = req.kinds ? 'kind' : 'page';
    throw new StatsArgumentError(
      parameter,
      `visit metrics do not take ${parameter}= (a visit has many): filter on what a visit starts with (entry_page, referrer, country…) or on exit_page`,
    );
  }
  if (visits && events && req.groupBy) {
    throw new StatsArgumentError(
      'group_by',
      'group_by ranks groups by users for users and events, by visits for visit metrics: ask for one kind of metric per grouped request',
    );
  }
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
      ),
      s as materialized (
        select s.*
        from range r
        cross join lateral headcount_stats(
          ${req.site}, r.f, r.t, ${req.granularity}, ${req.timezone},
          ${req.kinds}::text[], ${req.pages}::text[], ${req.groupBy?.join(',') ?? null}::text, ${req.limit}::int,
          ${req.filters}::text[], ${req.compare}::text, ${req.maxRawRows}::bigint
        ) with ordinality s
        where ${events}::boolean
      ),
      v as materialized (
        select v.*
        from range r
        cross join lateral headcount_visit_stats(
          ${req.site}, r.f, r.t, ${req.granularity}, ${req.timezone},
          ${req.groupBy?.join(',') ?? null}::text, ${req.limit}::int, ${req.filters}::text[], ${req.compare}::text
        ) with ordinality v
        where ${visits}::boolean
      )
      select /* v1/stats */
        headcount_format_time(r.f, ${req.timezone}) as range_from,
        headcount_format_time(r.t, ${req.timezone}) as range_to,
        headcount_format_time(r.f - (r.t - r.f), ${req.timezone}) as previous_from,
        coalesce(s.bucket_label, v.bucket_label) as bucket_label,
        array_to_json(coalesce(s.group_values, v.group_values)) as group_values,
        s.users, s.events, coalesce(s.approximate, false) as approximate, s.previous_users, s.previous_events,
        v.visits, v.bounce_rate, v.visit_duration_mean, v.visit_duration_median, v.pageviews_per_visit,
        v.previous_visits, v.previous_bounce_rate, v.previous_visit_duration_mean, v.previous_visit_duration_median,
        v.previous_pageviews_per_visit
      from range r
      left join s on true
      left join v on s.bucket_label is null or v.bucket_label = s.bucket_label
      order by coalesce(s.ordinality, v.ordinality)
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
      ...figures(r, req.metrics, ''),
      ...(req.compare ? { previous: figures(r, req.metrics, 'previous_') } : {}),
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
