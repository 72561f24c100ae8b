/**
 * Volume: BENCH_VOLUME_DAYS days of BENCH_VOLUME_EVENTS_PER_DAY events generated in
 * PostgreSQL, a refresh, then the read path's query latencies again (none with 0 days).
 */
import { DAY_MS } from '../../src/time.js';
import { fmt, type LatencyRow } from '../report.js';
import { refreshAll, seedDay } from '../seed.js';
import type { BenchContext } from './context.js';
import { queryLatencies } from './read-path.js';

export interface Volume {
  /** Events loaded by this phase. */
  events: number;
  latency: LatencyRow[];
}

/** `accuracyDays` keep their known users: no volume is loaded on them. */
export async function measureVolume(ctx: BenchContext, today: number, accuracyDays: number[]): Promise<Volume> {
  const { settings, sql } = ctx;
  const { step, note } = ctx.progress;
  let events = 0;
  if (settings.volumeDays <= 0) return { events, latency: [] };
  step(`volume: ${settings.volumeDays} days x ${fmt(settings.volumeEventsPerDay)} events/day, generated in PostgreSQL`);
  const t1 = performance.now();
  for (let d = 1; d <= settings.volumeDays; d++) {
    const day = today - d * DAY_MS;
    if (accuracyDays.includes(day) || day < Date.now() - 60 * DAY_MS) continue;
    await seedDay(sql, day, settings.volumeEventsPerDay);
    events += settings.volumeEventsPerDay;
    if (d % 10 === 0) note(`${d} days, ${((performance.now() - t1) / 1000).toFixed(0)} s`);
  }
  note(`${fmt(events)} events in ${((performance.now() - t1) / 1000).toFixed(0)} s; refreshing the aggregates`);
  const t2 = performance.now();
  await refreshAll(ctx.dbUrl);
  note(`refresh ${((performance.now() - t2) / 1000).toFixed(0)} s`);
  return { events, latency: await queryLatencies(ctx, today, `(${settings.volumeDays}-day volume)`) };
}
