import type { Logger } from '../log.js';
import { DAY_MS, HOUR_MS, RETENTION_MS } from '../time.js';
import type { Sql } from './client.js';

/** The continuous aggregates, lowest first: each is refreshed from the one it is built on. */
const LEVELS = [
  { view: 'events_minutely', unitMs: 60_000 },
  { view: 'events_hourly', unitMs: HOUR_MS },
  { view: 'events_daily', unitMs: DAY_MS },
  { view: 'users_daily', unitMs: DAY_MS },
] as const;

/** Any fixed number: one instance at a time refreshes. */
export const REFRESH_LOCK_KEY = 0x6865_6163; // "heac"

/**
 * timescaledb mode. A real-time continuous aggregate aggregates the raw rows above its
 * watermark at every query: fast for a few, ~0.5 s for the million rows of a busy
 * hour. And a row written below the watermark (back-dated) stays hidden until its
 * bucket is refreshed. So every `intervalMs` this refreshes each level, lowest first,
 * over the retention window up to the end of the current minute, hour and day:
 *
 *  - TimescaleDB reprocesses only the invalidated buckets in the window: those of
 *    rows written since the last tick, by this instance, another one or psql. At
 *    rest a tick costs a few milliseconds.
 *  - the watermarks then stand ahead of now, so every read is of materialized rows;
 *    rows written since the last tick show at the next one (reads lag by about one
 *    interval). Refreshing the busy current minute re-reads only its raw rows; the
 *    current hour and day are unions of at most 60 and 24 sketches.
 *  - the window starts below every watermark, so it never hides unmaterialized rows
 *    (materializing [a, b) with `a` above the watermark would), and a fresh database
 *    or one behind after downtime catches up at the first tick.
 */
export class AggregateRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** Told after each completed pass (answer caches drop what they hold). */
    private readonly onRefreshed: () => void = () => {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /** Stops the timer and refreshes once more: what was written shows. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Refreshes now, after any refresh under way: what was written before shows after. */
  async flush(): Promise<void> {
    await this.running;
    await this.tick();
  }

  private tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.refresh()
      .catch((err: unknown) => this.log.warn('refreshing continuous aggregates failed; will retry', { err }))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async refresh(): Promise<void> {
    // Another instance refreshing covers everyone's rows; so does a TimescaleDB policy
    // job, which makes ours fail with lock_not_available: either way, next tick.
    const done = await refreshAggregates(this.sql, { wait: false, log: this.log }).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === '55P03') return false;
      throw err;
    });
    if (done) this.onRefreshed();
  }
}

/**
 * One pass over the levels, lowest first, from the start of the retention window to
 * the end of the current bucket, under an advisory lock that makes instances take
 * turns. Without `wait`, returns false at once when another holds the lock.
 */
export async function refreshAggregates(sql: Sql, opts: { wait: boolean; log?: Logger }): Promise<boolean> {
  const conn = await sql.reserve();
  try {
    if (opts.wait) await conn`select pg_advisory_lock(${REFRESH_LOCK_KEY}) /* db/refresher */`;
    else {
      const [lock]: [{ locked: boolean }?] =
        await conn`select pg_try_advisory_lock(${REFRESH_LOCK_KEY}) as locked /* db/refresher */`;
      if (!lock?.locked) return false;
    }
    try {
      const now = Date.now();
      for (const level of LEVELS) {
        const end = Math.floor(now / level.unitMs) * level.unitMs + level.unitMs;
        const started = performance.now();
        await conn`
          call refresh_continuous_aggregate(${level.view}::regclass, ${new Date(now - RETENTION_MS)}::timestamptz, ${new Date(end)}::timestamptz)
        `;
        opts.log?.debug('refreshed', { view: level.view, ms: Math.round(performance.now() - started) });
      }
      return true;
    } finally {
      await conn`select pg_advisory_unlock(${REFRESH_LOCK_KEY}) /* db/refresher */`;
    }
  } finally {
    conn.release();
  }
}
