import type { Logger } from '../log.js';
import { DAY_MS, floorDay, floorHour, HOUR_MS } from '../time.js';
import type { Sql } from './client.js';

/**
 * timescaledb mode: a continuous aggregate answers rows at or after its watermark
 * from the raw events (real-time), but a row written *below* the watermark stays
 * invisible until its bucket is refreshed. This refreshes just the touched buckets,
 * shortly after such rows commit.
 *
 * Only buckets that end at or below the current watermark are refreshed: refreshing a
 * bucket above it would move the watermark past unmaterialized rows and hide them.
 */
export class LateEventRefresher {
  private dirtyHours = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Notes the hours of committed rows that may lie below the hourly watermark. */
  note(rows: readonly { timeMs: number }[]): void {
    // The refresh policy's window ends an hour back, so the watermark never passes the
    // start of the current hour: rows of this hour are always visible.
    const currentHour = floorHour(Date.now());
    for (const row of rows) {
      const hour = floorHour(row.timeMs);
      if (hour < currentHour) this.dirtyHours.add(hour);
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and refreshes what is still pending. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Refreshes everything noted so far (tests and shutdown). */
  async flush(): Promise<void> {
    await this.running;
    await this.tick();
  }

  private tick(): Promise<void> {
    if (this.running || this.dirtyHours.size === 0) return this.running ?? Promise.resolve();
    const hours = [...this.dirtyHours].sort((a, b) => a - b);
    this.dirtyHours.clear();
    this.running = this.refresh(hours)
      .catch((err: unknown) => {
        for (const h of hours) this.dirtyHours.add(h);
        this.log.warn('refreshing back-dated buckets failed; will retry', { err });
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async refresh(hours: number[]): Promise<void> {
    const [marks]: [{ hourly: Date | null; daily: Date | null }?] = await this.sql`
      select /* db/refresher */
        headcount_watermark('events_hourly') as hourly,
        headcount_watermark('events_daily') as daily
    `;
    const hourlyMark = marks?.hourly?.getTime() ?? -Infinity;
    const dailyMark = marks?.daily?.getTime() ?? -Infinity;
    for (const [start, end] of ranges(
      hours.filter((h) => h + HOUR_MS <= hourlyMark),
      HOUR_MS,
    )) {
      await this.refreshRange('events_hourly', start, end);
    }
    // After the hourly buckets: the daily aggregate is built from them.
    const days = [...new Set(hours.map(floorDay))].filter((d) => d + DAY_MS <= dailyMark);
    for (const [start, end] of ranges(days, DAY_MS)) await this.refreshRange('events_daily', start, end);
  }

  private async refreshRange(view: string, startMs: number, endMs: number): Promise<void> {
    const started = performance.now();
    await this.sql`
      call refresh_continuous_aggregate(${view}::regclass, ${new Date(startMs)}::timestamptz, ${new Date(endMs)}::timestamptz)
    `;
    this.log.debug('refreshed back-dated buckets', {
      view,
      from: new Date(startMs).toISOString(),
      to: new Date(endMs).toISOString(),
      ms: Math.round(performance.now() - started),
    });
  }
}

/** Sorted bucket starts to [start, end) runs of adjacent buckets. */
function ranges(starts: number[], width: number): [number, number][] {
  const out: [number, number][] = [];
  for (const s of starts) {
    const last = out.at(-1);
    if (last && last[1] === s) last[1] = s + width;
    else out.push([s, s + width]);
  }
  return out;
}
