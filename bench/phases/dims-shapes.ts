/**
 * The query shapes of issue 19's targets, each as a GET /v1/stats request and as the exact
 * answer computed from raw events (count(distinct user_id)), for the latency and accuracy
 * phases (bench/phases/dims-latency.ts, dims-accuracy.ts).
 */
import type { Sql } from '../../src/db/client.js';
import { DAY_MS, floorHour } from '../../src/time.js';
import { isoDay } from './context.js';

export interface Filter {
  dim: string;
  values: string[];
}

export interface Shape {
  name: string;
  /** What the issue's target is for this shape (milliseconds), if it names one. */
  target?: { p50Ms?: number; p99Ms: number };
  site: string;
  granularity: 'total' | 'hour' | 'day';
  timezone: string;
  /** `days`: the last N whole days before today (dates in the shape's zone); `today`: the read path's N days ending with today; `hours`: the last N hours up to the current one. */
  range: { days: number } | { todayDays: number } | { hours: number };
  groupBy?: string[];
  filters?: Filter[];
}

const ONE_DIMENSION = { p50Ms: 50, p99Ms: 150 };

/** Every shape measured; "declared" ones are read from headcount_rollups rows the volume phase made (DECLARED). */
export function dimensionShapes(): Shape[] {
  const de: Filter[] = [{ dim: 'country', values: ['DE'] }];
  const shapes: Shape[] = [];
  for (const timezone of ['UTC', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/New_York']) {
    shapes.push(
      {
        name: `group_by=country 30 d ${timezone}`,
        target: ONE_DIMENSION,
        site: 'default',
        granularity: 'total',
        timezone,
        range: { days: 30 },
        groupBy: ['country'],
      },
      {
        name: `filter=country==DE 30 d ${timezone}`,
        target: ONE_DIMENSION,
        site: 'default',
        granularity: 'total',
        timezone,
        range: { days: 30 },
        filters: de,
      },
    );
  }
  shapes.push(
    {
      name: 'group_by=referrer (~200 hosts) 30 d UTC',
      target: ONE_DIMENSION,
      site: 'default',
      granularity: 'total',
      timezone: 'UTC',
      range: { days: 30 },
      groupBy: ['referrer'],
    },
    {
      name: 'filter=utm_campaign==black-friday, day 30 d UTC',
      target: ONE_DIMENSION,
      site: 'default',
      granularity: 'day',
      timezone: 'UTC',
      range: { days: 30 },
      filters: [{ dim: 'utm_campaign', values: ['black-friday'] }],
    },
  );
  for (const days of [7, 30]) {
    shapes.push(
      {
        name: `filter=country==DE group_by=browser ${days} d, no combination`,
        target: { p99Ms: days === 7 ? 500 : 2000 },
        site: 'default',
        granularity: 'total',
        timezone: 'UTC',
        range: { days },
        groupBy: ['browser'],
        filters: de,
      },
      {
        name: `filter=country==DE group_by=device ${days} d, declared country,device`,
        target: { p99Ms: days === 7 ? 500 : 150 },
        site: 'default',
        granularity: 'total',
        timezone: 'UTC',
        range: { days },
        groupBy: ['device'],
        filters: de,
      },
    );
  }
  const TODAY = { p99Ms: 100 };
  shapes.push(
    {
      name: 'total 30 d Asia/Kolkata (no dimension)',
      target: TODAY,
      site: 'default',
      granularity: 'total',
      timezone: 'Asia/Kolkata',
      range: { todayDays: 30 },
    },
    {
      name: 'hour 48 h Asia/Kolkata (no dimension)',
      target: TODAY,
      site: 'default',
      granularity: 'hour',
      timezone: 'Asia/Kolkata',
      range: { hours: 48 },
    },
    {
      name: 'day 30 d Asia/Kolkata (no dimension)',
      target: TODAY,
      site: 'default',
      granularity: 'day',
      timezone: 'Asia/Kolkata',
      range: { todayDays: 30 },
    },
    {
      name: 'top 10 props.article (200 values) 30 d, declared (site default)',
      site: 'default',
      granularity: 'total',
      timezone: 'UTC',
      range: { days: 30 },
      groupBy: ['props.article'],
    },
    {
      name: 'top 10 props.article (200 values) 30 d, not declared (site shop)',
      site: 'shop',
      granularity: 'total',
      timezone: 'UTC',
      range: { days: 30 },
      groupBy: ['props.article'],
    },
  );
  return shapes;
}

/** The request path of a shape (`today`: the UTC day the run started). */
export function shapePath(shape: Shape, today: number): string {
  const q = new URLSearchParams({ site: shape.site });
  const r = shape.range;
  if ('hours' in r) {
    const hour = floorHour(Date.now());
    q.set('from', new Date(hour - (r.hours - 1) * 3_600_000).toISOString());
    q.set('to', new Date(hour + 3_600_000).toISOString());
  } else if ('days' in r) {
    q.set('from', isoDay(today - r.days * DAY_MS));
    q.set('to', isoDay(today));
  } else {
    q.set('from', isoDay(today - (r.todayDays - 1) * DAY_MS));
    q.set('to', isoDay(today + DAY_MS));
  }
  q.set('granularity', shape.granularity);
  q.set('timezone', shape.timezone);
  if (shape.groupBy) q.set('group_by', shape.groupBy.join(','));
  for (const f of shape.filters ?? []) q.append('filter', `${f.dim}==${f.values.join('|')}`);
  return `/v1/stats?${q.toString()}`;
}

/** The column of events a dimension names (the shapes' names are constants of this file). */
const column = (dim: string): string => (dim.startsWith('props.') ? `props->>'${dim.slice(6)}'` : dim);
const literal = (v: string): string => `'${v.replaceAll("'", "''")}'`;

export interface ExactRow {
  bucketMs: number;
  groups: (string | null)[];
  users: number;
  events: number;
}

/** The exact answer over [fromMs, toMs) from raw events: count(distinct user_id) per bucket and group. */
export async function exactAnswer(sql: Sql, shape: Shape, fromMs: number, toMs: number): Promise<ExactRow[]> {
  const tz = literal(shape.timezone);
  const bucket =
    shape.granularity === 'total'
      ? `$1::timestamptz`
      : `(date_trunc('${shape.granularity}', time at time zone ${tz}) at time zone ${tz})`;
  const groups = (shape.groupBy ?? []).map((d) => `${column(d)}`);
  const where = (shape.filters ?? []).map((f) => `${column(f.dim)} in (${f.values.map(literal).join(', ')})`);
  // Each group its own column (a text[] of them would come back with NULL as a string).
  const rows = await sql.unsafe<({ b: Date; users: string; events: string } & Record<string, string | null>)[]>(
    `select ${bucket} as b, ${groups.map((g, i) => `${g} as g${i}, `).join('')}
            count(distinct user_id) as users, sum(weight) as events
     from events
     where site = $3 and time >= $1 and time < $2 ${where.map((w) => `and ${w}`).join(' ')}
     group by ${['1', ...groups.map((_, i) => String(i + 2))].join(', ')}`,
    [new Date(fromMs), new Date(toMs), shape.site],
  );
  return rows.map((r) => ({
    bucketMs: r.b.getTime(),
    groups: groups.map((_, i) => r[`g${i}`] ?? null),
    users: Number(r.users),
    events: Number(r.events),
  }));
}
