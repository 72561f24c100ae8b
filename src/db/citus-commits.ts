import type postgres from 'postgres';
import type { Logger } from '../log.js';
import { createSql, type Sql } from './client.js';
import { type Bounded, withDeadline } from './deadline.js';
import { DatabaseUnavailable, sqlState } from './errors.js';

/** A Citus warning of the kind a failed COMMIT PREPARED, or a recovery that missed a worker, gives. */
const isCommitWarning = (notice: postgres.Notice): boolean => {
  const code = notice.code ?? '';
  return notice.severity === 'WARNING' && (code === '01000' || code.startsWith('08'));
};

/** One of the writer's connections (a pool of one), the warnings it gave, and how many writes run on it. */
interface Slot {
  sql: Sql;
  warnings: number;
  running: number;
  /** When its session was last replaced after an internal error (see sent). */
  replacedAt: number;
}

/**
 * A slot's session is replaced after an internal error at most this often: while a worker
 * is down, every write of its sites fails so (XX000 too), and a new coordinator session
 * per such write would only add work to the outage. A session made during the outage has
 * no connection to that worker to be stale later.
 */
const REPLACE_AT_MOST_EVERY_MS = 1000;

/**
 * citus mode: a write that commits on several workers does so by two-phase commit: PREPARE
 * TRANSACTION on each worker, the coordinator's own commit, then COMMIT PREPARED on each.
 * Once the coordinator has committed, the write has happened (its pg_dist_transaction
 * records it). If a worker's COMMIT PREPARED then fails (the connection lost, the worker
 * down), Citus only warns ("failed to commit transaction on host:port", and "connection to
 * the remote node ... failed", SQLSTATE 08006) and the statement succeeds: that worker's
 * rows stay in a prepared transaction, invisible and holding their row locks, until the
 * coordinator's maintenance daemon recovers it (citus.recover_2pc_interval, 1 min). The
 * service would have acknowledged events the next read does not count, and writes of the
 * same aggregate rows would wait for that lock until they answer 503.
 *
 * So the writes' warnings are watched, and a write during which one arrived is answered
 * only after recover_prepared_transactions() (Citus: commits the prepared transactions
 * the coordinator has a record of, rolls back the others; the service's role needs
 * EXECUTE on it, which Citus revokes from PUBLIC) has run on every worker. A write's
 * warnings are its connection's: the writer's connections are pools of one connection
 * each (`slots`), a write runs on one of them, and only that pool's warnings during it are
 * the write's. (One pool's warnings were not told apart by connection: a write of the
 * running worker's sites that ran beside the one whose commit the down worker missed took
 * the miss for its own, and its sites were held, every write of them answered 503 until
 * the worker was back.) A recovery that cannot reach a worker only warns ("transaction
 * recovery cannot connect to host:port") and skips it: it runs on a connection of its
 * own, so that its warnings are its own, and one that warned did not recover everything.
 * Then the write is answered 503, the one case where a 503 does not mean "not stored"
 * (the outcome on that worker is not known to the reads yet; ids make a resend harmless:
 * docs/operations.md), and the recovery is tried again every `retryMs` until one
 * completes, so that the rows are counted, and their locks released, as soon as the
 * worker is back.
 * test/faults/citus-2pc.test.ts.
 */
export class PreparedCommitRecovery {
  /** The writer's connections. */
  private readonly slots: Slot[];
  private recoveryWarnings = 0;
  /** Writes during which a commit was missed, numbered, and the last a recovery has covered. */
  private missed = 0;
  private recoveredMissed = 0;
  /** The sites of those writes: site → the number of the last such write holding it. */
  private readonly held = new Map<string, number>();
  private readonly sql: Sql;
  /** The recovery running now, and the one callers that came after it started wait for. */
  private running: Promise<boolean> | undefined;
  private next: Promise<boolean> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failing = false;
  private closed = false;

  /**
   * `pool` makes one of the writer's `slots` connections (max 1) with the onNotice given:
   * as many as the writer's flushes in flight (maxInflightFlushes).
   */
  constructor(
    databaseUrl: string,
    private readonly pool: (onNotice: (notice: postgres.Notice) => void) => Sql,
    slots: number,
    private readonly deadlineMs: number,
    private readonly log: Logger,
    private readonly retryMs = 250,
  ) {
    this.slots = Array.from({ length: Math.max(1, slots) }, () => {
      const slot: Slot = { sql: undefined as unknown as Sql, warnings: 0, running: 0, replacedAt: 0 };
      slot.sql = this.connect(slot);
      return slot;
    });
    this.sql = createSql(databaseUrl, {
      max: 1,
      applicationName: 'headcount-recovery',
      deadlineMs,
      // Any warning: the recovery only warns of what it could not do, and a COMMIT PREPARED
      // whose connection was lost comes back as SQLSTATE XX000 (Citus' ReportResultError of
      // a result without one), which isCommitWarning does not take.
      onNotice: (notice) => {
        if (notice.severity === 'WARNING') this.recoveryWarnings++;
      },
    });
  }

  /**
   * Another pool's onNotice: a failed COMMIT PREPARED there is recovered, nobody waiting.
   * Writes are not held back for it: the roller's transactions touch no row a write reads
   * or locks (the queue's and the parts' rows a write adds are its own).
   */
  readonly noticeInBackground = (notice: postgres.Notice): void => {
    if (isCommitWarning(notice) && !this.closed) void this.recover();
  };

  /**
   * A write of `rows`: `send` is called with the writer's connection to run it on (a
   * free one, or the one with the fewest writes running), and its answer given once the
   * prepared transactions it may have left on a worker are committed (`sent`). But while
   * a commit a worker missed during an earlier write of one of the same sites is not
   * recovered yet, `send` waits for a recovery first, and the write is answered 503
   * without being sent if that recovery cannot reach every worker. The prepared transaction holds that
   * worker's part of the earlier write, invisible to the next one's statements there,
   * while the coordinator's own commit has already released the visitor locks
   * (sql/common/headcount_track_visits.sql) that order two writes of one visitor: a write
   * sent then read the visitor's visits as they were before the earlier write, waited on
   * its row locks, and once the recovery committed it, stored a visit clashing with the
   * earlier write's (refused as the client's fault: 422, one run of
   * test/faults/citus-2pc.test.ts) or one beside it (a visit counted twice). By site, not
   * all writes: other sites' visits are not on the rows left prepared, and while a worker
   * is down the others' sites are served (test/faults/outage.test.ts; holding every write
   * answered them all 503). Writes already sent when the warning came are not held back
   * (see sql/citus/headcount_track_visits_sites.sql for what they find). The returned
   * write's `cancel` drops it if it is still waiting for the recovery (withDeadline).
   */
  write<T>(rows: readonly { site: string }[], send: (sql: Sql) => Bounded<T>): Bounded<T> {
    if (!this.holds(rows)) return this.sent(rows, send);
    let sent: Bounded<T> | undefined;
    let dropped = false;
    const answered = this.recover().then((recovered) => {
      if (!recovered) {
        throw new DatabaseUnavailable(
          'a worker missed the commit of earlier events and cannot be reached: these were not stored; retry later',
        );
      }
      if (dropped) throw new DatabaseUnavailable('the database did not answer in time');
      sent = this.sent(rows, send);
      return sent;
    });
    return Object.defineProperties(answered, {
      cancel: { value: () => (sent ? sent.cancel?.() : (dropped = true)) },
      state: { get: () => (sent ? sent.state : null) },
    });
  }

  /**
   * `send` run on a slot, answered once the prepared transactions it may have left on a
   * worker are committed: a 503 if they could not all be. Still `write` to withDeadline: a
   * write not yet sent at the deadline is dropped (its cancel and state are passed on).
   * Only its slot's warnings count: a write queued on a slot behind one still running
   * there (past its deadline) may take that one's warning for its own, and wait for a
   * recovery it did not need.
   */
  private sent<T>(rows: readonly { site: string }[], send: (sql: Sql) => Bounded<T>): Bounded<T> {
    const slot = this.freeSlot();
    const before = slot.warnings;
    slot.running++;
    let attempt = send(slot.sql);
    // Once a worker is back, the session's connections to it that its outage cut while
    // they were cached (db/citus-sessions.ts: one per shard a write reached at once) fail
    // the next statements that take them, one each: "failure on connection marked as
    // essential", SQLSTATE XX000, raised before the coordinator commits (an error ends the
    // statement's transaction: nothing stored). So on XX000 the slot's session is replaced
    // (a new one has no connection cached; at most once a REPLACE_AT_MOST_EVERY_MS) and
    // the write run once more there, within the same deadline (the caller's withDeadline
    // covers both). Another internal error only fails twice.
    const write = Promise.resolve(attempt).catch((err: unknown) => {
      const now = Date.now();
      if (sqlState(err) !== 'XX000' || this.closed || now - slot.replacedAt < REPLACE_AT_MOST_EVERY_MS) throw err;
      // Debug: while a worker is down every write of its sites comes here.
      this.log.debug(
        { err },
        'citus mode: a write failed with an internal error (a cut connection to a worker?); run again on a new session',
      );
      slot.replacedAt = now;
      const old = slot.sql;
      slot.sql = this.connect(slot);
      // Writes queued on the old session still run there; it closes after them.
      void old.end({ timeout: this.deadlineMs / 1000 }).catch(() => undefined);
      attempt = send(slot.sql);
      return attempt;
    });
    const done = () => {
      slot.running--;
    };
    write.then(done, done);
    const answered = write.then(async (answer) => {
      if (slot.warnings === before) return answer;
      const miss = ++this.missed;
      for (const row of rows) this.held.set(row.site, miss);
      if (await this.recover()) return answer;
      throw new DatabaseUnavailable(
        'a worker missed the commit of these events and cannot be reached: they are not counted yet; retry later',
      );
    });
    return Object.defineProperties(answered, {
      cancel: { value: () => attempt.cancel?.() },
      state: { get: () => attempt.state },
    });
  }

  /** A session (a pool of one) for `slot`: its warnings counted there. */
  private connect(slot: Slot): Sql {
    return this.pool((notice) => {
      if (isCommitWarning(notice)) slot.warnings++;
    });
  }

  /** The first slot with the fewest writes running: one write at a time keeps to one connection, as a pool would. */
  private freeSlot(): Slot {
    let best = this.slots[0]!;
    for (const slot of this.slots) if (slot.running < best.running) best = slot;
    return best;
  }

  /** Whether a site of `rows` was written when a commit was missed that no recovery has covered yet. */
  private holds(rows: readonly { site: string }[]): boolean {
    if (this.held.size === 0) return false;
    return rows.some((row) => (this.held.get(row.site) ?? 0) > this.recoveredMissed);
  }

  /**
   * True once a recovery that started after this call has reached every worker. Callers
   * that come while one runs share the next.
   */
  recover(): Promise<boolean> {
    this.next ??= (this.running ?? Promise.resolve(true)).then(() => {
      this.next = undefined;
      this.running = this.runOnce();
      return this.running;
    });
    return this.next;
  }

  /** Stops retrying and closes the recovery's connection and the writer's. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await Promise.all([this.sql, ...this.slots.map((s) => s.sql)].map((sql) => sql.end({ timeout: 1 })));
  }

  private async runOnce(): Promise<boolean> {
    const warned = this.recoveryWarnings;
    const missed = this.missed;
    let failure: unknown = 'a worker could not be reached';
    try {
      const [row] = await withDeadline(
        this.sql<{ recovered: number }[]>`select recover_prepared_transactions() as recovered /* db/citus-commits */`,
        this.deadlineMs,
      );
      if (this.recoveryWarnings === warned) {
        // Nothing to commit (Citus' own recovery came first, or a write held back after a
        // miss asked for one that an earlier recovery already served) is no news: debug.
        const recovered = Number(row?.recovered ?? 0);
        if (recovered > 0 || this.failing)
          this.log.warn({ recovered }, 'a worker missed the commit of a write; its prepared transactions recovered');
        else this.log.debug({ recovered }, 'a recovery of prepared transactions found none left to commit');
        this.failing = false;
        this.recoveredMissed = Math.max(this.recoveredMissed, missed);
        for (const [site, miss] of this.held) if (miss <= this.recoveredMissed) this.held.delete(site);
        return true;
      }
    } catch (err) {
      failure = err;
    }
    // Logged once per spell, not per retry: a worker down for minutes would flood the log.
    if (!this.failing) {
      this.log.error(
        { err: failure },
        'a worker missed the commit of a write and its prepared transactions cannot be recovered now: writes answered 503, recovery retried',
      );
    }
    this.failing = true;
    if (!this.closed && this.retry === undefined) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        void this.recover();
      }, this.retryMs);
      this.retry.unref();
    }
    return false;
  }
}
