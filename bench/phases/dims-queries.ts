/**
 * Dimensions, the read side: per shape of bench/phases/dims-shapes.ts, its latency through
 * the HTTP service (p50/p99) and its error against the exact count(distinct user_id) of
 * the raw events. A shape the service refuses (400 too_expensive: more raw rows than
 * STATS_MAX_RAW_ROWS) is recorded as refused, then measured on a second instance without
 * that guard (STATS_MAX_RAW_ROWS=1e9, DATABASE_TIMEOUT_MS=60000) to show what the raw scan
 * would cost.
 */
import { latency } from '../load.js';
import { fmt } from '../report.js';
import { startService, stopChild } from '../service.js';
import type { BenchContext } from './context.js';
import { dimensionShapes, exactAnswer, type Shape, shapePath } from './dims-shapes.js';

/** hll stays an explicit list (exact) up to this many users (sql/common/headcount_sketch_parameters.sql). */
export const EXACT_UP_TO = 1280;

export interface ShapeLatency {
  shape: string;
  /** The service that answered: "guarded" (the defaults) or "unguarded" (raw row guard lifted). */
  service: 'guarded' | 'unguarded';
  path: string;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  statuses: Record<string, number>;
  targetP50Ms?: number;
  targetP99Ms?: number;
  /** Whether p50 and p99 are within the target (undefined: no target, or not answered). */
  meetsTarget?: boolean;
  /** The first answer's error code and message, when not 200. */
  refused?: string;
}

export interface ShapeAccuracy {
  shape: string;
  service: 'guarded' | 'unguarded';
  rows: number;
  /** Largest and mean |users - exact| / exact over the rows, %. */
  maxErrorPct: number;
  meanErrorPct: number;
  /** Rows whose exact count is under EXACT_UP_TO, and how many of them were not exact (must be 0). */
  smallRows: number;
  smallNotExact: number;
  /** Rows whose events differ from the exact sum (must be 0), and rows with no exact counterpart. */
  eventsWrong: number;
  unmatched: number;
  /** The first answered row with no exact counterpart (to see why). */
  firstUnmatched?: unknown;
  approximate: boolean;
  exactUsersRange: [number, number];
}

interface StatsAnswer {
  meta: { from: string; to: string; approximate: boolean };
  data: ({ bucket: string; users: number; events: number } & Record<string, unknown>)[];
}

async function getJson(base: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(base + path);
  return { status: res.status, body: await res.json() };
}

async function accuracyOf(
  ctx: BenchContext,
  shape: Shape,
  answer: StatsAnswer,
  service: ShapeAccuracy['service'],
): Promise<ShapeAccuracy> {
  const exact = await exactAnswer(ctx.sql, shape, Date.parse(answer.meta.from), Date.parse(answer.meta.to));
  const byKey = new Map(exact.map((e) => [`${e.bucketMs}|${JSON.stringify(e.groups)}`, e]));
  const groupsOf = (row: Record<string, unknown>): (string | null)[] =>
    (shape.groupBy ?? []).map((d) => (row[d] ?? null) as string | null);
  const total = shape.granularity === 'total';
  let maxErr = 0;
  let sumErr = 0;
  let small = 0;
  let smallWrong = 0;
  let eventsWrong = 0;
  let unmatched = 0;
  let firstUnmatched: unknown;
  let lo = Infinity;
  let hi = 0;
  for (const row of answer.data) {
    const bucketMs = total ? Date.parse(answer.meta.from) : Date.parse(row.bucket);
    const e = byKey.get(`${bucketMs}|${JSON.stringify(groupsOf(row))}`);
    if (!e) {
      // A bucket with no events at all is answered as zeros: exact.
      if (row.users === 0 && row.events === 0) continue;
      unmatched++;
      firstUnmatched ??= row;
      continue;
    }
    const err = e.users === 0 ? (row.users === 0 ? 0 : 100) : (Math.abs(row.users - e.users) / e.users) * 100;
    maxErr = Math.max(maxErr, err);
    sumErr += err;
    lo = Math.min(lo, e.users);
    hi = Math.max(hi, e.users);
    if (e.users < EXACT_UP_TO) {
      small++;
      if (row.users !== e.users) smallWrong++;
    }
    if (row.events !== e.events) eventsWrong++;
  }
  const rows = answer.data.length;
  return {
    shape: shape.name,
    service,
    rows,
    maxErrorPct: maxErr,
    meanErrorPct: rows ? sumErr / rows : NaN,
    smallRows: small,
    smallNotExact: smallWrong,
    eventsWrong,
    unmatched,
    firstUnmatched,
    approximate: answer.meta.approximate,
    exactUsersRange: [Number.isFinite(lo) ? lo : 0, hi],
  };
}

export interface DimensionQueries {
  latency: ShapeLatency[];
  accuracy: ShapeAccuracy[];
}

export async function measureDimensionQueries(ctx: BenchContext, today: number): Promise<DimensionQueries> {
  const { settings } = ctx;
  const { step, note } = ctx.progress;
  step('dimensions: a second instance without the raw-row guard (STATS_MAX_RAW_ROWS=1e9, DATABASE_TIMEOUT_MS=60000)');
  const unguarded = await startService(ctx.dbUrl, 1, [], {
    env: { STATS_MAX_RAW_ROWS: '1000000000', DATABASE_TIMEOUT_MS: '60000', HTTP_REQUEST_TIMEOUT_MS: '600000' },
  });
  const out: DimensionQueries = { latency: [], accuracy: [] };
  try {
    for (const shape of dimensionShapes()) {
      const path = shapePath(shape, today);
      for (const [service, base] of [
        ['guarded', ctx.service.url],
        ['unguarded', unguarded.url],
      ] as const) {
        step(`dimensions: ${shape.name} (${service}), 4 clients for ${settings.queryDurationS} s`);
        note(`GET ${path}`);
        const first = await getJson(base, path);
        const row: ShapeLatency = {
          shape: shape.name,
          service,
          path,
          requests: 0,
          p50Ms: NaN,
          p99Ms: NaN,
          maxMs: NaN,
          statuses: {},
          targetP50Ms: shape.target?.p50Ms,
          targetP99Ms: shape.target?.p99Ms,
        };
        if (first.status !== 200) {
          const err = (first.body as { error?: { code?: string; message?: string } }).error;
          row.refused = `${first.status} ${err?.code ?? ''}: ${err?.message ?? JSON.stringify(first.body)}`;
          row.statuses[String(first.status)] = 1;
          note(`refused: ${row.refused}`);
          out.latency.push(row);
          continue; // measured on the unguarded instance next
        }
        // Slow (raw) shapes: one client, at least 3 answers; the rest 4 clients as the read path.
        const r = await latency({
          base,
          workers: service === 'guarded' ? 4 : 1,
          durationS: settings.queryDurationS,
          path: () => path,
          minRequests: 3,
        });
        Object.assign(row, { requests: r.requests, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, statuses: r.statuses ?? {} });
        if (shape.target)
          row.meetsTarget = r.p99Ms <= shape.target.p99Ms && (shape.target.p50Ms === undefined || r.p50Ms <= shape.target.p50Ms);
        note(
          `${r.requests} requests, p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms, max ${fmt(r.maxMs, 1)} ms, statuses ${JSON.stringify(r.statuses)}` +
            (shape.target
              ? ` (target p50 ${shape.target.p50Ms ?? '-'} / p99 ${shape.target.p99Ms} ms: ${row.meetsTarget ? 'met' : 'NOT met'})`
              : ''),
        );
        out.latency.push(row);
        const a = await accuracyOf(ctx, shape, first.body as StatsAnswer, service);
        note(
          `accuracy: ${a.rows} rows, max error ${a.maxErrorPct.toFixed(2)} %, mean ${a.meanErrorPct.toFixed(2)} %; ${a.smallRows} rows under ${EXACT_UP_TO} users, ${a.smallNotExact} not exact; events wrong ${a.eventsWrong}, unmatched ${a.unmatched}${a.firstUnmatched ? ` (${JSON.stringify(a.firstUnmatched)})` : ''}`,
        );
        out.accuracy.push(a);
        break; // answered by the guarded instance: nothing to lift
      }
    }
  } finally {
    await stopChild(unguarded.child);
  }
  return out;
}
