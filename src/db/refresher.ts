import type { Logger } from '../log.js';
import { JobHealth } from './job-health.js';
import { DAY_MS, RETENTION_MS } from '../time.js';
import type { Sql } from './client.js';
import { withDeadline } from './deadline.js';
import { foldEvents } from './roller.js';

/**
 * timescaledb mode: materializes the continuous aggregates. Reads never wait for it
 * (see sql/timescaledb/events_hourly.sql): buckets above a watermark are
 * computed at read time, and hours written below it are marked stale in the writing
 * transaction and answered from their minutes. A pass:
 *
 *  1. moves `through` (headcount_refresh_state) to the start of the current 10 minutes,
 *     and TimescaleDB's invalidation threshold of events_minutely_parts with it (a refresh of
 *     the last 10 minutes), holding MOVE_LOCK_KEY, which every insert holds shared from
 *     its trigger to its commit (sql/timescaledb/headcount_apply_events.sql): the move
 *     waits for inserts in flight and new ones wait for it, so every insert either
 *     commits before both moves or marks its rows below `through` and is logged by
 *     TimescaleDB as an invalidation (it decides that at commit, against the threshold it
 *     reads then: test/read/threshold-race.test.ts);
 *  2. notes the stale marks that exist now (their rows are committed);
 *  3. refreshes each level, lowest first, over [start of the retention window, through
 *     rounded down to its bucket): TimescaleDB reprocesses the invalidated buckets in
 *     the window and materializes the new ones; marks older than the window (a backfill)
 *     get a window of their own day. Windows never reach below the retention window
 *     otherwise, where minutes and hours are gone: refreshing there would wipe the day
 *     sketches that outlive them;
 *  4. deletes the marks it noted, unless a later write renewed them (version) or
 *     TimescaleDB still holds an invalidation of one of the mark's buckets inside a
 *     window this pass refreshed (it would answer that bucket from a stale row once
 *     the mark is gone: the mark then stays for the next pass). If the pass created a
 *     chunk of a continuous aggregate (each has 10-day chunks: a back-dated write into a
 *     range with no chunk yet), it first waits for the reads in flight to end (at most
 *     SETTLE_READERS_MS, else the marks stay for the next pass): a statement is planned,
 *     then executed on a newer snapshot (READ COMMITTED), and its plan lists each
 *     hypertable's chunks as they were while planning. A read planned before the chunk
 *     and executed after the marks were deleted saw neither, and missed the write
 *     (test/read/new-chunk-race.test.ts). A read holds a lock on the hypertables it
 *     reads from its planning to its end: those lock holders are the reads waited for.
 *
 * Each window is refreshed in one batch ({"buckets_per_batch": 0}). TimescaleDB 2.28
 * splits a manual refresh into batches of 10 buckets by default, and its split skips
 * an invalidation whose last changed instant is the first instant of a bucket (a
 * write at midnight, or any hierarchical level's row, whose time is a bucket start):
 * the refresh returned with that bucket unmaterialized, the pass cleared its mark,
 * and reads missed the write until a later pass (test/read/refresh-race.test.ts).
 *
 * A pass with no marks and no 10-minute boundary crossed since the last one does
 * nothing but look (two queries).
 */
export interface RefreshResult {
  /** false: another instance holds the refresh lock. */
  ran: boolean;
  marksCleared: number;
  refreshed: number;
}

/** The continuous aggregates, lowest level first, with their bucket width. */
export const LEVELS = [
  { aggregates: ['events_10m_cagg', 'totals_10m_cagg'], unitMs: 10 * 60_000 },
  { aggregates: ['events_hourly_cagg', 'totals_hourly_cagg'], unitMs: 3_600_000 },
  { aggregates: ['events_daily_cagg', 'totals_daily_cagg'], unitMs: DAY_MS },
] as const;

/** Any fixed number: one instance at a time refreshes. */
export const REFRESH_LOCK_KEY = 0x6865_6163; // "heac"

/** How long a pass that created a chunk waits for the reads in flight before it clears marks. */
export const SETTLE_READERS_MS = 2000;

/**
 * Held shared by every insert, from its trigger to its commit, and exclusively by a pass
 * while it moves `through` and the invalidation threshold (see above). The trigger
 * (sql/timescaledb/headcount_apply_events.sql) spells the number out.
 */
export const MOVE_LOCK_KEY = 0x6865_6d76; // "hemv"

const floorTo = (ms: number, unitMs: number): number => Math.floor(ms / unitMs) * unitMs;

export interface Mark {
  site: string;
  hour: Date;
  version: number;
}

/** The stale marks as they are now. */
export const readMarks = (sql: Sql): Promise<Mark[]> =>
  sql<Mark[]>`select site, hour, version from headcount_stale_hours /* db/refresher */`;

/** The ends of the windows a pass refreshed, per level (the 10-minute, hour and day aggregates). */
export interface RefreshedThrough {
  tenMinutes: Date;
  hour: Date;
  day: Date;
}

/**
 * Deletes the marks in `seen` that no write has renewed since (same version) and whose
 * buckets TimescaleDB holds no invalidation of, inside the windows refreshed
 * (`through`): such a bucket is still stale in its aggregate, and its mark keeps
 * reads answering it afresh. Returns how many were deleted.
 *
 * The rows are locked first, in (site, hour) order, the order in which every insert's
 * trigger upserts its marks (sql/timescaledb/headcount_apply_events.sql). A plain
 * `delete … using` locked them in its plan's order: it deleted one mark, then waited
 * for a writer that had renewed another and was waiting for the deleted one, and one of
 * the two failed with "deadlock detected" (a writer's insert, in a full run of the
 * suite). A mark renewed meanwhile no longer matches its version once its lock is
 * granted (READ COMMITTED re-checks the row), and stays. test/read/marks-deadlock.test.ts.
 */
export async function clearMarks(sql: Sql, seen: Mark[], through?: RefreshedThrough): Promise<number> {
  if (seen.length === 0) return 0;
  const cleared = await sql`
    with doomed as ( /* db/refresher */
      select s.ctid
      from headcount_stale_hours s
      join unnest(${seen.map((m) => m.site)}::text[], ${seen.map((m) => m.hour.toISOString())}::timestamptz[], ${seen.map((m) => m.version)}::int8[])
        as seen(site, hour, version)
        on s.site = seen.site and s.hour = seen.hour and s.version = seen.version
      where ${through === undefined ? sql`true` : sql`not exists (${pendingInvalidation(sql, through)})`}
      order by s.site, s.hour
      for update of s
    )
    delete from headcount_stale_hours s
    using doomed d
    where s.ctid = d.ctid
  `;
  return cleared.count;
}

/**
 * A continuous aggregate's invalidation, not yet processed, that overlaps the mark's
 * bucket at that aggregate's level, within the part of it the pass refreshed.
 */
const pendingInvalidation = (sql: Sql, through: RefreshedThrough) => sql`
  select
  from _timescaledb_catalog.continuous_agg c
  cross join lateral (
    select case
             when c.user_view_name like '%_daily_cagg' then date_trunc('day', s.hour, 'UTC')
             else s.hour
           end as low,
           case
             when c.user_view_name like '%_daily_cagg' then least(date_trunc('day', s.hour, 'UTC') + interval '24 hours', ${through.day})
             when c.user_view_name like '%_hourly_cagg' then least(s.hour + interval '1 hour', ${through.hour})
             else least(s.hour + interval '1 hour', ${through.tenMinutes})
           end as high
  ) bucket
  cross join lateral (
    -- Logged by the writes to its source, not yet moved to its own log by a refresh,
    select lowest_modified_value, greatest_modified_value
    from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
    where hypertable_id = c.raw_hypertable_id
    union all
    -- or moved there and not yet processed.
    select lowest_modified_value, greatest_modified_value
    from _timescaledb_catalog.continuous_aggs_materialization_invalidation_log
    where materialization_id = c.mat_hypertable_id
  ) l
  where c.user_view_schema = current_schema()
    and c.user_view_name in ${sql(LEVELS.flatMap((level) => level.aggregates))}
    and bucket.low < bucket.high
    and l.lowest_modified_value < _timescaledb_functions.to_unix_microseconds(bucket.high)
    and l.greatest_modified_value >= _timescaledb_functions.to_unix_microseconds(bucket.low)
`;

/**
 * One pass (see above). `sql` should be a connection of its own (max 1): the refresh
 * lock is a session lock, held by the connection that runs the pass.
 */
export async function refreshAggregates(sql: Sql, log?: Logger): Promise<RefreshResult> {
  // A pool could take the lock on one connection and try to release it on another.
  if (sql.options.max !== 1) throw new Error('refreshAggregates needs a client of one connection (max: 1)');
  const [lock]: [{ locked: boolean }?] = await sql`
    select pg_try_advisory_lock(${REFRESH_LOCK_KEY}) as locked /* db/refresher */
  `;
  if (!lock?.locked) return { ran: false, marksCleared: 0, refreshed: 0 };
  try {
    return await pass(sql, log);
  } finally {
    await sql`select pg_advisory_unlock(${REFRESH_LOCK_KEY}) /* db/refresher */`;
  }
}

async function pass(sql: Sql, log?: Logger): Promise<RefreshResult> {
  const [state]: [{ now: Date; through: Date | null; materialized: Date | null }?] = await sql`
    select now() as now, nullif(through, '-infinity') as through, /* db/refresher */
      nullif(materialized_through, '-infinity') as materialized
    from headcount_refresh_state
  `;
  if (!state) throw new Error('headcount_refresh_state is empty: run the migrations');
  const nowMs = state.now.getTime();
  const target = floorTo(nowMs, LEVELS[0].unitMs);
  // The newest chunk of the continuous aggregates before this pass refreshes anything.
  let newestChunk: number | undefined;
  if (state.through === null || state.through.getTime() < target) {
    newestChunk = await newestAggregateChunk(sql);
    // The minutes' parts, folded while they are above the threshold: once below it, a fold
    // has TimescaleDB materialize their 10 minutes again.
    await foldEvents(sql);
    // Waits for the inserts in flight; blocks new ones until both moves are done, a few
    // milliseconds once every 10 minutes.
    await sql`select pg_advisory_lock(${MOVE_LOCK_KEY}) /* db/refresher */`;
    try {
      await sql`update headcount_refresh_state set through = ${new Date(target)} where through < ${new Date(target)} /* db/refresher */`;
      // The threshold is events_minutely_parts', shared by both 10-minute aggregates: one
      // refresh moves it. Only the last 10 minutes are materialized here; the rest is left
      // in TimescaleDB's log for the refresh below.
      await refreshAggregate(sql, LEVELS[0].aggregates[0], target - LEVELS[0].unitMs, target, log);
    } finally {
      await sql`select pg_advisory_unlock(${MOVE_LOCK_KEY}) /* db/refresher */`;
    }
  }

  const marks = await readMarks(sql);
  const materializedMs = state.materialized?.getTime() ?? null;
  const behind = materializedMs === null || materializedMs < target;
  if (!behind && marks.length === 0) return { ran: true, marksCleared: 0, refreshed: 0 };
  newestChunk ??= await newestAggregateChunk(sql);

  const windowStart = floorTo(nowMs - RETENTION_MS, DAY_MS);
  // Behind (downtime): from where the last pass ended, if that is earlier; never
  // materialized: from the first row.
  const start = materializedMs === null ? null : Math.min(windowStart, floorTo(materializedMs, DAY_MS));
  const backfillDays = [
    ...new Set(marks.map((m) => floorTo(m.hour.getTime(), DAY_MS)).filter((day) => start !== null && day < start)),
  ];
  let refreshed = 0;
  for (const level of LEVELS) {
    for (const aggregate of level.aggregates) {
      await refreshAggregate(sql, aggregate, start, floorTo(target, level.unitMs), log);
      for (const day of backfillDays) await refreshAggregate(sql, aggregate, day, day + DAY_MS, log);
      refreshed += 1 + backfillDays.length;
    }
  }
  await sql`
    update headcount_refresh_state set materialized_through = ${new Date(target)} /* db/refresher */
    where materialized_through < ${new Date(target)}
  `;
  const through: RefreshedThrough = {
    tenMinutes: new Date(target),
    hour: new Date(floorTo(target, LEVELS[1].unitMs)),
    day: new Date(floorTo(target, LEVELS[2].unitMs)),
  };
  if (marks.length > 0 && (await newestAggregateChunk(sql)) > newestChunk && !(await settleReaders(sql, SETTLE_READERS_MS))) {
    log?.debug({ kept: marks.length }, 'stale marks kept: reads planned before a new chunk still run');
    return { ran: true, marksCleared: 0, refreshed };
  }
  const marksCleared = await clearMarks(sql, marks, through);
  if (marksCleared < marks.length) {
    log?.debug({ kept: marks.length - marksCleared }, 'stale marks kept for the next pass');
  }
  return { ran: true, marksCleared, refreshed };
}

/** The continuous aggregates' materialized hypertables, in the service's schema. */
const materializedHypertables = (sql: Sql) => sql`
  select format('%I.%I', h.schema_name, h.table_name)::regclass
  from _timescaledb_catalog.continuous_agg c
  join _timescaledb_catalog.hypertable h on h.id = c.mat_hypertable_id
  where c.user_view_schema = current_schema()
`;

/** The id of the newest chunk of the continuous aggregates (0: none); ids only grow. */
async function newestAggregateChunk(sql: Sql): Promise<number> {
  const [row]: [{ id: number }?] = await sql`
    select coalesce(max(ch.id), 0)::int as id /* db/refresher */
    from _timescaledb_catalog.chunk ch
    join _timescaledb_catalog.continuous_agg c on c.mat_hypertable_id = ch.hypertable_id
    where c.user_view_schema = current_schema()
  `;
  return row?.id ?? 0;
}

/**
 * Waits until every transaction that holds a lock on a continuous aggregate's
 * materialized hypertable now has ended, polling every 10 ms; false if one still runs
 * after `withinMs`.
 */
export async function settleReaders(sql: Sql, withinMs: number): Promise<boolean> {
  const [row]: [{ readers: string[] }?] = await sql`
    select coalesce(array_agg(distinct virtualtransaction), '{}') as readers /* db/refresher */
    from pg_locks
    where locktype = 'relation' and pid is distinct from pg_backend_pid()
      and database = (select oid from pg_database where datname = current_database())
      and relation in (${materializedHypertables(sql)})
  `;
  const readers = row?.readers ?? [];
  const until = performance.now() + withinMs;
  while (readers.length > 0) {
    const [left]: [{ n: number }?] = await sql`
      select count(*)::int as n from pg_locks where virtualtransaction = any(${readers}::text[]) /* db/refresher */
    `;
    if ((left?.n ?? 0) === 0) return true;
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Refreshes `aggregate` over [startMs, endMs) (null: from its first row, to its last)
 * in one batch: see above for why never in TimescaleDB's default batches.
 */
export async function refreshAggregate(
  sql: Sql,
  aggregate: string,
  startMs: number | null,
  endMs: number | null,
  log?: Logger,
): Promise<void> {
  const started = performance.now();
  await sql`
    call refresh_continuous_aggregate( /* db/refresher */
      ${aggregate}::regclass,
      ${startMs === null ? null : new Date(startMs)}::timestamptz,
      ${endMs === null ? null : new Date(endMs)}::timestamptz,
      options => '{"buckets_per_batch": 0}'
    )
  `;
  log?.debug({ aggregate, ms: Math.round(performance.now() - started) }, 'refreshed');
}

/** What a pass did, for metrics: its result, or the error it failed with. */
export interface RefreshPass {
  durationMs: number;
  result?: RefreshResult;
  error?: unknown;
}

/** How long a pass may go without returning before the refresher looks at what it is doing. */
export const STALL_MS = 10_000;

/**
 * Runs a pass every `intervalMs`, one at a time, on a connection of its own (`connect`
 * opens it). A pass that fails is logged (with backoff) and retried at the next tick;
 * `health` reports it failing until one succeeds.
 *
 * A pass that has not returned after `stallMs` is looked at: if no refresher session of
 * the database is running a statement, and the one holding the refresh lock (the pass's,
 * or another instance's) has been idle for at least half of `stallMs`, nothing is working
 * for it, and it is abandoned
 * (reported as a failed pass), its connection closed, and the next pass runs on a new
 * one. In the outage test a pass in flight when PostgreSQL crashed never returned (its
 * query was never settled by the client library, postgres.js 3.4.9; no refresher session
 * was left in pg_stat_activity), and the refresher ran no pass again, with /health still
 * "ok" and a back-dated write's mark never cleared (test/db/refresher-stall.test.ts). A
 * refresher session that holds the refresh lock but runs nothing is ended too: its lock
 * would keep every later pass out (looked for as well once passes have found the lock
 * taken for `stallMs`: another instance's session, left idle with it). A pass whose
 * statement runs, however long (a first materialization), or waits for a lock, is left
 * alone; so is a pass slower than `stallMs` caught between two of its statements (its
 * session idle for a moment: judged by that one instant, every pass of a slow database
 * was abandoned in test/db/refresher-stall.test.ts, none ever finishing).
 */
export class AggregateRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private runningSince = 0;
  private lastRan = performance.now();
  private looking = false;
  private sql: Sql;
  readonly health: JobHealth;

  constructor(
    private readonly connect: () => Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onPass: (pass: RefreshPass) => void = () => {},
    private readonly stallMs: number = STALL_MS,
  ) {
    this.sql = connect();
    this.health = new JobHealth('aggregate refresh', log);
  }

  /** Closes its connection (after stop()). */
  async end(): Promise<void> {
    await this.sql.end({ timeout: 1 });
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  /**
   * Stops the timer and waits up to `waitMs` for a pass under way; one that is still
   * waiting for the database then (an outage) is left to the caller, which ends the
   * connection under it.
   */
  async stop(waitMs = 2000): Promise<void> {
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** Runs a pass now, after any pass under way. */
  async flush(): Promise<void> {
    await this.running;
    await this.tick();
  }

  private tick(): Promise<void> {
    if (this.running) {
      if (!this.looking && performance.now() - this.runningSince > this.stallMs) void this.lookAtStalledPass();
      return this.running;
    }
    const started = performance.now();
    this.runningSince = started;
    // An abandoned pass that settles later (its connection closed under it) reports nothing.
    const current = () => this.running === pass;
    const pass: Promise<void> = refreshAggregates(this.sql, this.log)
      .then(
        (result) => {
          if (!current()) return;
          if (result.ran) {
            this.lastRan = performance.now();
            this.health.succeeded();
          } else if (!this.looking && performance.now() - this.lastRan > this.stallMs) {
            // The lock has been held elsewhere since: by a pass that works, or by nothing.
            // At most one such look every `stallMs`.
            this.lastRan = performance.now();
            void this.lookAtStalledPass();
          }
          if (result.marksCleared > 0) this.log.debug({ ...result }, 'refreshed stale hours');
          this.onPass({ durationMs: performance.now() - started, result });
        },
        (err: unknown) => {
          if (!current()) return;
          this.health.failed(err);
          this.onPass({ durationMs: performance.now() - started, error: err });
        },
      )
      .finally(() => {
        if (this.running === pass) this.running = undefined;
      });
    this.running = pass;
    return pass;
  }

  /**
   * See the class: a pass that has run `stallMs` with nothing working for it is abandoned,
   * and a refresher session that holds the refresh lock idle is ended (passes that could
   * not take the lock for `stallMs` look too).
   */
  private async lookAtStalledPass(): Promise<void> {
    this.looking = true;
    const stalled = this.running;
    const fresh = this.connect();
    let kept = false;
    try {
      // A session idle for less than half of `stallMs` is between two statements of a pass.
      const quiet = fresh`clock_timestamp() - ${Math.round(this.stallMs / 2)} * interval '1 millisecond'`;
      const holdsRefreshLock = fresh`exists (
        select from pg_locks l
        where l.pid = a.pid and l.locktype = 'advisory' and l.classid = 0 and l.objid = ${REFRESH_LOCK_KEY}
          and l.objsubid = 1 and l.granted
      )`;
      const [row] = await withDeadline(
        fresh<{ working: boolean }[]>`
          select exists ( /* db/refresher */
            select from pg_stat_activity a
            where a.datname = current_database() and a.application_name = 'headcount-refresher'
              and a.pid <> pg_backend_pid()
              and (a.state = 'active' or (a.state_change > ${quiet} and ${holdsRefreshLock}))
          ) as working
        `,
        5000,
      );
      if (row?.working) {
        // The pass (or another instance's) is progressing: look again later.
        this.runningSince = this.lastRan = performance.now();
        return;
      }
      if (stalled !== undefined && this.running === stalled) {
        const stuck = this.sql;
        this.sql = fresh;
        kept = true;
        const durationMs = performance.now() - this.runningSince;
        this.running = undefined;
        const err = new Error(
          `a refresh pass had not returned after ${Math.round(durationMs)} ms with no statement running: abandoned, its connection closed`,
        );
        this.health.failed(err);
        this.onPass({ durationMs, error: err });
        // Its client is ended before its session is terminated below: the pass's query then
        // fails on an ended client, and so does its unlock after it. Ended after the
        // session, the unlock could come first and have postgres.js 3.4.9 schedule a
        // reconnect that end() does not cancel: a session leaked, idle, never used
        // (found by CI in test/db/refresher-stall.test.ts).
        await stuck.end({ timeout: 0 }).catch(() => undefined);
      }
      // Nothing runs: a session of ours still holding the refresh lock is ended with it
      // (the stuck pass's, if its Terminate did not reach the server). If this fails, the
      // passes that cannot take the lock look again after `stallMs`.
      await withDeadline(
        fresh`
          select pg_terminate_backend(a.pid) /* db/refresher */
          from pg_stat_activity a
          where a.datname = current_database() and a.application_name = 'headcount-refresher'
            and a.state <> 'active' and a.state_change <= ${quiet} and ${holdsRefreshLock}
        `,
        5000,
      );
    } catch {
      // The database does not answer now: look again at the next tick.
    } finally {
      if (!kept) void fresh.end({ timeout: 0 }).catch(() => undefined);
      this.looking = false;
    }
  }
}
