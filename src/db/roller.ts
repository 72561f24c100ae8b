import type { Logger } from '../log.js';
import type { Sql } from './client.js';
import { JobHealth } from './job-health.js';

/** What one pass of the roller did, for metrics. */
export interface RollPass {
  durationMs: number;
  /** Queued events moved into the dimension rollups. */
  moved: number;
  error?: unknown;
}

/** How many queued events one transaction moves: a batch of a few seconds' worth at 10,000 a second. */
export const ROLL_BATCH_ROWS = 20_000;

/** How often expired dimension rollups are deleted. */
const EXPIRE_EVERY_MS = 3_600_000;

/** How often tables holding rows but never analyzed are analyzed (sql/common/headcount_analyze_new.sql). */
const ANALYZE_NEW_EVERY_MS = 30_000;

/**
 * Folds the parts every insert appends to events_minutely_parts (and in postgres and citus modes
 * to the hour, day and total tables) into one row per key (sql/common/headcount_fold_events.sql):
 * a key's sketch is rewritten once a fold instead of once an insert, and reads of the
 * last minutes union a second or so of parts. Returns how many keys it wrote.
 */
export async function foldEvents(sql: Sql): Promise<number> {
  const [row] = await sql<[{ folded: string }]>`select headcount_fold_events() as folded /* db/roller */`;
  return Number(row.folded);
}

/** When the roller looks at the queue, and when it rolls it up. */
export interface RollerTiming {
  /** How often it looks (after a look or a pass ends). */
  intervalMs: number;
  /** A pass runs once the queue holds this many events… */
  minRows: number;
  /** …or this long after the last pass began (0: at every look). */
  maxWaitMs: number;
  /**
   * How often at most it folds the per-insert parts (foldEvents), between a pass's
   * batches too: once `written` grew by `foldMinWrites` since the last fold; when it grew
   * less, every `intervalMs`.
   */
  foldIntervalMs: number;
  /**
   * The writes (statements) of this instance's writer since the last fold that make a
   * fold due before the next look: a fold costs per key it rewrites, whatever the parts,
   * so that a few large writes a second are folded once a look (docs/benchmarks.md,
   * "Folding by writes"). 1: at every `foldIntervalMs` while anything was written.
   */
  foldMinWrites: number;
  /**
   * The writes this instance's writer has stored, a counter (the writer's stats.batches:
   * each appends one part per key it touches). Without it, it folds every
   * `foldIntervalMs` whatever was written. Idle, a fold reads every table of parts (in
   * citus mode every shard of them): every 250 ms it cost an idle local Citus cluster
   * 5.2–5.7 s of CPU a minute, 2.1 so (docs/benchmarks.md).
   */
  written?: () => number;
  /** Events a roll moves at most (headcount_roll_up's argument); default ROLL_BATCH_ROWS. */
  rollBatchRows?: number;
}

/**
 * Both storage modes: moves the events the trigger of `events` queued (headcount_pending)
 * into the dimension rollups, with headcount_roll_up (sql/common/headcount_roll_up.sql),
 * in one transaction per batch. Reads add what is still queued, so nothing waits for
 * this loop to be correct; it only keeps the queue short, and reads fast.
 *
 * Every `intervalMs` it looks at the queue; a pass drains it (batch after batch) once it
 * holds `minRows` events or `maxWaitMs` after the last pass. Every `foldIntervalMs` while
 * the instance's writer stores `foldMinWrites` writes in that time (every `intervalMs`
 * otherwise) it folds the parts inserts appended (foldEvents, above), also between the
 * batches of a pass: reads of the last minutes union the parts not yet folded, and a
 * pass over a long queue takes seconds (docs/benchmarks.md, "After the parts"). A roll
 * has a fixed cost (its statements, a row per dimension value it touches): rolling every
 * second at 12 events a second cost 1,756 µs of PostgreSQL CPU per event, rolling 120 at
 * once 435, 1,000 at once 133, 20,000 at once 37 (npm run bench:roller, when a roll still
 * rewrote the day and hour sketches it added to; it appends parts now,
 * headcount_fold_parts folds them).
 * Waiting keeps the queue that reads scan at a few thousand rows at most.
 *
 * Instances run it at once safely: headcount_roll_up lets one session at a time move
 * events (the others return 0 at once).
 */
export class DimensionRoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastExpiryMs = 0;
  private lastAnalyzeMs = 0;
  /** When the last pass began (0: none yet, so the first look runs one). */
  private lastPassMs = 0;
  /** When it last looked at the queue, and last folded (0: never). */
  private lastLookMs = 0;
  private lastFoldMs = 0;
  /** `written()` at the last fold. */
  private writtenAtFold = -1;
  readonly health: JobHealth;

  constructor(
    private readonly sql: Sql,
    private readonly timing: RollerTiming,
    private readonly log: Logger,
    private readonly onPass: (pass: RollPass) => void = () => {},
    private readonly onFold: (keys: number) => void = () => {},
  ) {
    this.health = new JobHealth('dimension roller', log);
  }

  start(): void {
    this.stopped = false;
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.look().then(
        () => this.health.succeeded(),
        (err: unknown) => this.health.failed(err),
      );
      void this.running.then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, Math.min(this.timing.intervalMs, this.timing.foldIntervalMs));
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /**
   * Folds the parts inserts appended to the per-insert aggregates (headcount_fold_events)
   * if the writer stored `foldMinWrites` writes since the last fold, and every
   * `intervalMs` folds anyway (fewer writes, other instances', psql's inserts) and runs a
   * pass if one is due: `maxWaitMs` since the last, or `minRows` queued.
   */
  private async look(): Promise<void> {
    const looks = Date.now() - this.lastLookMs >= this.timing.intervalMs;
    if (looks || this.foldDue()) await this.fold();
    if (!looks) return;
    this.lastLookMs = Date.now();
    const due =
      Date.now() - this.lastPassMs >= this.timing.maxWaitMs || (await this.queued(this.timing.minRows)) >= this.timing.minRows;
    if (due) await this.pass();
  }

  /**
   * Whether a fold is due before the next look: `foldIntervalMs` since the last, and
   * `foldMinWrites` writes of this instance's writer since (always when not told them);
   * in a pass, which can take seconds, also `intervalMs` since the last with any write.
   */
  private foldDue(): boolean {
    const sinceMs = Date.now() - this.lastFoldMs;
    if (sinceMs < this.timing.foldIntervalMs) return false;
    if (this.timing.written === undefined) return true;
    const writes = this.timing.written() - this.writtenAtFold;
    return writes >= this.timing.foldMinWrites || (writes > 0 && sinceMs >= this.timing.intervalMs);
  }

  private async fold(): Promise<void> {
    this.lastFoldMs = Date.now();
    this.writtenAtFold = this.timing.written?.() ?? -1;
    this.onFold(await foldEvents(this.sql));
  }

  /**
   * How many events are queued, counted up to `upTo`. A column in the subquery: citus
   * mode runs it first, its rows kept as an intermediate result that the count reads, and
   * of a subquery of no columns that read failed ("a column definition list is required
   * for functions returning record") at every call: every look but those ROLLUP_MAX_WAIT_MS
   * apart failed, and /readyz answered 503 background_job_failing (test/db/roller.test.ts).
   */
  async queued(upTo: number): Promise<number> {
    const [row] = await this.sql<[{ n: number }]>`
      select count(*)::int as n from (select 1 from headcount_pending limit ${upTo}) q /* db/roller */
    `;
    return row.n;
  }

  /** Moves everything queued when it started (and what arrives meanwhile), batch by batch. */
  async pass(): Promise<number> {
    this.lastPassMs = Date.now();
    const started = performance.now();
    let moved = 0;
    const batchRows = this.timing.rollBatchRows ?? ROLL_BATCH_ROWS;
    try {
      for (;;) {
        const [row] = await this.sql<[{ moved: number }]>`
          select headcount_roll_up(${batchRows}) as moved /* db/roller */
        `;
        moved += row.moved;
        if (row.moved < batchRows || this.stopped) break;
        if (this.foldDue()) await this.fold();
      }
      if (Date.now() - this.lastExpiryMs >= EXPIRE_EVERY_MS) {
        const [row] = await this.sql<[{ deleted: string }]>`select headcount_expire_dimensions() as deleted /* db/roller */`;
        this.lastExpiryMs = Date.now();
        if (Number(row.deleted) > 0) this.log.info({ deleted: Number(row.deleted) }, 'deleted expired dimension rollups');
      }
      if (Date.now() - this.lastAnalyzeMs >= ANALYZE_NEW_EVERY_MS) {
        const [row] = await this.sql<[{ analyzed: number }]>`select headcount_analyze_new() as analyzed /* db/roller */`;
        this.lastAnalyzeMs = Date.now();
        if (row.analyzed > 0) this.log.info({ analyzed: row.analyzed }, 'analyzed tables that had never been');
      }
      this.onPass({ durationMs: performance.now() - started, moved });
      return moved;
    } catch (err) {
      this.onPass({ durationMs: performance.now() - started, moved, error: err });
      throw err;
    }
  }
}
