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

/**
 * Both storage modes: moves the events the trigger of `events` queued (headcount_pending)
 * into the dimension rollups, with headcount_roll_up (sql/common/headcount_roll_up.sql),
 * in one transaction per batch. Reads add what is still queued, so nothing waits for
 * this loop to be correct; it only keeps the queue short, and reads fast. A pass drains
 * the queue (batch after batch), then the loop sleeps `intervalMs`. Instances run it at
 * once safely: headcount_roll_up lets one session at a time move events (the others
 * return 0 at once).
 */
export class DimensionRoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastExpiryMs = 0;
  readonly health: JobHealth;

  constructor(
    private readonly sql: Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onPass: (pass: RollPass) => void = () => {},
  ) {
    this.health = new JobHealth('dimension roller', log);
  }

  start(): void {
    this.stopped = false;
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.pass().then(
        () => this.health.succeeded(),
        (err: unknown) => this.health.failed(err),
      );
      void this.running.then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.intervalMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Moves everything queued when it started (and what arrives meanwhile), batch by batch. */
  async pass(): Promise<number> {
    const started = performance.now();
    let moved = 0;
    try {
      for (;;) {
        const [row] = await this.sql<[{ moved: number }]>`
          select headcount_roll_up(${ROLL_BATCH_ROWS}) as moved /* db/roller */
        `;
        moved += row.moved;
        if (row.moved < ROLL_BATCH_ROWS || this.stopped) break;
      }
      if (Date.now() - this.lastExpiryMs >= EXPIRE_EVERY_MS) {
        const [row] = await this.sql<[{ deleted: string }]>`select headcount_expire_dimensions() as deleted /* db/roller */`;
        this.lastExpiryMs = Date.now();
        if (Number(row.deleted) > 0) this.log.info({ deleted: Number(row.deleted) }, 'deleted expired dimension rollups');
      }
      this.onPass({ durationMs: performance.now() - started, moved });
      return moved;
    } catch (err) {
      this.onPass({ durationMs: performance.now() - started, moved, error: err });
      throw err;
    }
  }
}
