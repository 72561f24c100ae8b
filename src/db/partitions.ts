import type { Logger } from '../log.js';
import { JobHealth } from './job-health.js';
import type { Sql } from './client.js';

/** Any fixed number: the advisory lock that lets one instance at a time maintain partitions. */
const PARTITION_LOCK_KEY = 0x6865_6164; // "head"

/** What a maintenance run did, for metrics. */
export interface PartitionRun {
  durationMs: number;
  /** false: another instance holds the lock. */
  ran: boolean;
  error?: unknown;
}

/**
 * postgres mode: keeps a day partition for every day of the retention window and a few
 * ahead, and drops the days that left it (TimescaleDB's retention policy does this in
 * the other mode).
 */
export class PartitionMaintainer {
  private timer: NodeJS.Timeout | undefined;
  readonly health: JobHealth;

  constructor(
    private readonly sql: Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onRun: (run: PartitionRun) => void = () => {},
  ) {
    this.health = new JobHealth('partition maintenance', log);
  }

  async start(): Promise<void> {
    await this.runOnce();
    this.health.succeeded();
    this.timer = setInterval(() => {
      this.runOnce().then(
        () => this.health.succeeded(),
        (err: unknown) => this.health.failed(err),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Returns false when another instance holds the lock. */
  async runOnce(): Promise<boolean> {
    const started = performance.now();
    try {
      const ran = await this.maintain();
      this.onRun({ durationMs: performance.now() - started, ran });
      return ran;
    } catch (err) {
      this.onRun({ durationMs: performance.now() - started, ran: false, error: err });
      throw err;
    }
  }

  /**
   * One statement, so one transaction without BEGIN/COMMIT round trips: the lock is taken
   * first (WHERE), and the maintenance runs only when it was. (A multi-statement
   * transaction on a connection that dies mid-way made postgres.js write to a closed
   * socket in the outage tests.)
   */
  private async maintain(): Promise<boolean> {
    const rows = await this.sql<{ created: string[]; dropped: string[] }[]>`
      select (m).created, (m).dropped /* db/partitions */
      from (select headcount_maintain_partitions() as m where pg_try_advisory_xact_lock(${PARTITION_LOCK_KEY})) locked
    `;
    const [result] = rows;
    if (!result) return false;
    if (result.created.length > 0 || result.dropped.length > 0) {
      this.log.info({ created: result.created, dropped: result.dropped }, 'maintained event partitions');
    }
    return true;
  }
}
