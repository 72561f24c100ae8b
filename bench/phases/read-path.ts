/**
 * The read path: query latencies over HTTP and of the SQL behind them, first over a
 * current hour seeded with BENCH_CURRENT_HOUR_EVENTS, then while ingesting at a steady rate.
 */
import { hourSummary } from '../../src/analytics/queries.js';
import { distinctUsersOverDays } from '../../src/collect/queries.js';
import { DAY_MS, floorHour } from '../../src/time.js';
import { callLatency, latency, type LatencyResult, throughput } from '../load.js';
import { fmt, type LatencyRow } from '../report.js';
import { refreshAll, seedAnalytics } from '../seed.js';
import { type BenchContext, isoDay, type Progress, randomId, sleep } from './context.js';

/** A latency result as a row of the report, and a note saying it. */
export function latencyRow(progress: Progress, scenario: string, r: LatencyResult): LatencyRow {
  progress.note(
    `${scenario}: ${r.requests} requests, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms`,
  );
  return { scenario, requests: r.requests, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, failures: r.failures };
}

/**
 * Every read API, 4 clients for BENCH_QUERY_DURATION_S each, then the SQL behind
 * /analytics and /monthly_uniques straight to the database; `label` names the volume.
 */
export async function queryLatencies(ctx: BenchContext, today: number, label: string): Promise<LatencyRow[]> {
  const { settings, sql } = ctx;
  const { step } = ctx.progress;
  const rows: LatencyRow[] = [];
  for (const [name, p] of [
    ['GET /analytics current hour', () => `/analytics?timestamp=${Date.now()}`],
    ['GET /monthly_uniques', () => `/monthly_uniques?d=${isoDay(today)}`],
    ['GET /daily_uniques', () => `/daily_uniques?d=${isoDay(today - DAY_MS)}`],
    ['GET /report', () => `/report?page=/page/7`],
    // /v1/stats (issue 9): total over 30 days, day over 30 days in Asia/Kolkata, hour over 48 hours.
    ['GET /v1/stats total 30 days', () => `/v1/stats?from=${isoDay(today - 29 * DAY_MS)}&to=${isoDay(today + DAY_MS)}`],
    [
      'GET /v1/stats day 30 days Asia/Kolkata',
      () => `/v1/stats?from=${isoDay(today - 29 * DAY_MS)}&to=${isoDay(today + DAY_MS)}&granularity=day&timezone=Asia/Kolkata`,
    ],
    [
      'GET /v1/stats hour 48 hours',
      () =>
        `/v1/stats?from=${new Date(floorHour(Date.now()) - 47 * 3_600_000).toISOString()}&to=${new Date(floorHour(Date.now()) + 3_600_000).toISOString()}&granularity=hour`,
    ],
  ] as const) {
    step(`query latency ${label}: ${name}, 4 clients for ${settings.queryDurationS} s`);
    const r = await latency({ base: ctx.service.url, workers: 4, durationS: settings.queryDurationS, path: p });
    rows.push(latencyRow(ctx.progress, `${name} ${label}`, r));
  }
  // The SQL behind them, straight to the database (no HTTP).
  const hour = floorHour(Date.now());
  step(`query latency ${label}, SQL only: behind /analytics and /monthly_uniques, 4 at a time for ${settings.queryDurationS} s`);
  rows.push(
    latencyRow(
      ctx.progress,
      `SQL current hour ${label}`,
      await callLatency({ workers: 4, durationS: settings.queryDurationS, call: () => hourSummary(sql, 'default', hour) }),
    ),
  );
  rows.push(
    latencyRow(
      ctx.progress,
      `SQL 30-day union ${label}`,
      await callLatency({
        workers: 4,
        durationS: settings.queryDurationS,
        call: () => distinctUsersOverDays(sql, 'default', today - 29 * DAY_MS, today + DAY_MS),
      }),
    ),
  );
  return rows;
}

export interface ReadPath {
  latency: LatencyRow[];
  /** What GET /analytics answered for the current hour after the ingest (clicks + impressions). */
  currentHourEvents: number;
}

export async function measureReadPath(ctx: BenchContext, today: number): Promise<ReadPath> {
  const { settings, sql, dbUrl } = ctx;
  const { step, note } = ctx.progress;
  const baseUrl = ctx.service.url;
  const hour = floorHour(Date.now());
  step(`seeding ${fmt(settings.currentHourEvents)} events into the current hour`);
  let t0 = performance.now();
  await seedAnalytics(sql, hour, Math.max(hour + 1000, Date.now() - 1000), settings.currentHourEvents, 250_000);
  note(`${((performance.now() - t0) / 1000).toFixed(1)} s; refreshing the aggregates`);
  t0 = performance.now();
  await refreshAll(dbUrl);
  note(`refresh ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  step(
    `current-hour GET /analytics while ingesting ${settings.ingestRate} events/s (POST /analytics, paced), ${settings.durationS * 2} s`,
  );
  // Paced (open-loop) load: autocannon's overallRate; wrk has no rate limit.
  const ingest = throughput({
    url: baseUrl,
    rate: settings.ingestRate,
    connections: 32,
    durationS: settings.durationS * 2,
    method: 'POST',
    path: () => `/analytics?timestamp=${Date.now()}&user=${randomId()}&event=click`,
  });
  await sleep(1000);
  const reads = await latency({
    base: baseUrl,
    workers: 4,
    durationS: settings.durationS * 2 - 2,
    path: () => `/analytics?timestamp=${Date.now()}`,
  });
  const ingested = await ingest;
  const rows = [latencyRow(ctx.progress, `GET /analytics current hour while ingesting ${settings.ingestRate}/s`, reads)];
  note(
    `ingest achieved ${Math.round(ingested.requestsPerSec)} events/s, p99 ${ingested.p99Ms} ms, errors ${ingested.errors + ingested.non2xx}`,
  );
  const body = await (await fetch(`${baseUrl}/analytics?timestamp=${Date.now()}`)).text();
  const currentHourEvents = Number(/clicks,(\d+)/.exec(body)?.[1]) + Number(/impressions,(\d+)/.exec(body)?.[1]);
  note(`the current hour now answers ${fmt(currentHourEvents)} events`);
  rows.push(...(await queryLatencies(ctx, today, '(small volume)')));
  return { latency: rows, currentHourEvents };
}
