import type { Sql } from '../db/client.js';
import { isRetryableDbError } from '../db/errors.js';
import { HttpError, UnavailableError } from '../http/errors.js';
import type { Logger } from '../log.js';

/** One event as stored: see migrations/ for the column meanings. */
export interface EventRow {
  site: string;
  timeMs: number;
  kind: string;
  userId: string | null;
  page: string;
  weight: number;
  /** The client's id of the event: a resend with the same site, id and time is stored once. */
  id?: string | undefined;
}

export interface WriterOptions {
  /** A flush takes whole requests up to this many rows (one request larger than this goes alone). */
  maxBatchRows: number;
  /** Rows waiting beyond this are refused with 503 + Retry-After. */
  maxQueueRows: number;
  /** 0: flush as soon as rows wait and a flush slot is free. */
  flushDelayMs: number;
  /**
   * Flushes that may run at once, each on its own connection: rows that arrive while one
   * commits go out in the next without waiting for it. 1 is a single writer.
   */
  maxInflightFlushes: number;
  retryAfterSeconds: number;
}

/** What became of one request's rows once their batch committed. */
export interface WriteResult {
  /** Rows stored; the others repeated an id already stored (same site, id and time). */
  inserted: number;
}

interface Pending {
  rows: EventRow[];
  resolve: (result: WriteResult) => void;
  reject: (err: Error) => void;
}

export interface WriterStats {
  batches: number;
  rows: number;
  failedBatches: number;
  rejectedFull: number;
  queuedRows: number;
}

/**
 * Group commit: requests wait on a bounded queue; a flush inserts everything that
 * queued up (up to maxBatchRows) in one statement and one transaction, and only then
 * answers each request. A new flush starts as soon as a slot of maxInflightFlushes is
 * free: with 1 it is a single writer, flushing as soon as the previous flush ends. A
 * request's rows are never split across batches, so a multi-event request is
 * all-or-nothing.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private inflight = 0;
  private scheduled = false;
  private closed = false;
  private drained: (() => void) | undefined;
  readonly stats: WriterStats = { batches: 0, rows: 0, failedBatches: 0, rejectedFull: 0, queuedRows: 0 };

  constructor(
    private readonly sql: Sql,
    private readonly opts: WriterOptions,
    private readonly log: Logger,
    /**
     * Told of every committed batch just before its requests are answered, so that an
     * answer cache it clears can never outlive the acknowledgement.
     */
    private readonly onCommitted: (rows: EventRow[]) => void = () => {},
  ) {}

  /** Resolves once `rows` are committed; rejects with an HttpError otherwise. */
  write(rows: EventRow[]): Promise<WriteResult> {
    if (rows.length === 0) return Promise.resolve({ inserted: 0 });
    if (this.closed) {
      return Promise.reject(new UnavailableError('shutting_down', 'the service is shutting down', this.opts.retryAfterSeconds));
    }
    if (rows.length > this.opts.maxQueueRows) {
      return Promise.reject(
        new HttpError(413, 'too_many_events', `one request may carry at most ${this.opts.maxQueueRows} events; split it`),
      );
    }
    if (this.queuedRows + rows.length > this.opts.maxQueueRows) {
      this.stats.rejectedFull++;
      return Promise.reject(
        new UnavailableError(
          'ingest_queue_full',
          'too many events are waiting to be written; retry later',
          this.opts.retryAfterSeconds,
        ),
      );
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ rows, resolve, reject });
      this.queuedRows += rows.length;
      this.stats.queuedRows = this.queuedRows;
      this.schedule();
    });
  }

  /** Stops taking writes and resolves when everything queued has been flushed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.inflight === 0 && !this.scheduled && this.queue.length === 0) return;
    await new Promise<void>((resolve) => (this.drained = resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const start = (): void => {
      this.scheduled = false;
      this.pump();
    };
    // setImmediate lets every request already parsed in this turn of the event loop join.
    if (this.opts.flushDelayMs > 0) setTimeout(start, this.opts.flushDelayMs);
    else setImmediate(start);
  }

  /** Starts flushes while rows wait and fewer than maxInflightFlushes run. */
  private pump(): void {
    while (this.queue.length > 0 && this.inflight < this.opts.maxInflightFlushes) {
      const batch = this.takeBatch();
      this.inflight++;
      void this.flush(batch).finally(() => {
        this.inflight--;
        // Whatever queued up during the flush goes at once: no timer between flushes.
        this.pump();
        if (this.inflight === 0 && this.queue.length === 0 && !this.scheduled) this.drained?.();
      });
    }
  }

  private takeBatch(): Pending[] {
    let count = 0;
    let rows = 0;
    for (const next of this.queue) {
      if (count > 0 && rows + next.rows.length > this.opts.maxBatchRows) break;
      count++;
      rows += next.rows.length;
    }
    this.queuedRows -= rows;
    this.stats.queuedRows = this.queuedRows;
    return this.queue.splice(0, count);
  }

  private async flush(batch: Pending[]): Promise<void> {
    const rows = batch.flatMap((p) => p.rows);
    let stored: StoredRows;
    try {
      stored = await withRetry(() => insertEvents(this.sql, rows));
    } catch (err) {
      if (!isRetryableDbError(err) && batch.length > 1) {
        // Something in the batch was refused for what it is, not for the database's
        // state: split it, so the good requests commit and only the bad one fails.
        const half = Math.ceil(batch.length / 2);
        await this.flush(batch.slice(0, half));
        await this.flush(batch.slice(half));
        return;
      }
      this.stats.failedBatches++;
      this.log.error('event batch failed', { err, rows: rows.length, requests: batch.length });
      const failure = isRetryableDbError(err)
        ? new UnavailableError('database_unavailable', 'the events could not be stored; retry later', this.opts.retryAfterSeconds)
        : new HttpError(422, 'event_rejected', 'the database refused these events');
      for (const p of batch) p.reject(failure);
      return;
    }
    this.stats.batches++;
    this.stats.rows += rows.length;
    this.onCommitted(rows);
    // In batch order: of two requests resending one event, the first is told it was stored.
    for (const p of batch) p.resolve({ inserted: stored.claim(p.rows) });
  }
}

/** A transaction that lost a deadlock or a serialization conflict did nothing: run it again. */
async function withRetry<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= attempts || (code !== '40P01' && code !== '40001')) throw err;
    }
  }
}

/**
 * Which rows of a batch an insert stored: every row without an id, and each (site, id,
 * time) it returned, claimed once — by the first row carrying it.
 */
export class StoredRows {
  constructor(private readonly insertedKeys: Map<string, number> | null) {}

  /** How many of `rows` were stored, claiming their keys so that no later row counts them again. */
  claim(rows: EventRow[]): number {
    if (this.insertedKeys === null) return rows.length;
    let stored = 0;
    for (const row of rows) {
      if (row.id === undefined) {
        stored++;
        continue;
      }
      const key = eventKey(row.site, row.id, row.timeMs);
      const left = this.insertedKeys.get(key) ?? 0;
      if (left > 0) {
        this.insertedKeys.set(key, left - 1);
        stored++;
      }
    }
    return stored;
  }
}

const eventKey = (site: string, id: string, timeMs: number): string => `${site}\u0000${id}\u0000${timeMs}`;

/**
 * One statement for the whole batch: the columns as arrays, unnested into rows. Rows
 * with an id that is already stored (same site, id and time) are skipped; the keys of
 * those stored are returned so that each request can learn which of its rows were new.
 */
export async function insertEvents(sql: Sql, rows: EventRow[]): Promise<StoredRows> {
  const sites = rows.map((r) => r.site);
  const times = rows.map((r) => new Date(r.timeMs).toISOString());
  const kinds = rows.map((r) => r.kind);
  const users = rows.map((r) => r.userId);
  const pages = rows.map((r) => r.page);
  const weights = rows.map((r) => r.weight);
  if (!rows.some((r) => r.id !== undefined)) {
    await sql`
      insert into events (site, time, kind, user_id, page, weight) /* ingest/writer */
      select *
      from unnest(${sites}::text[], ${times}::timestamptz[], ${kinds}::text[], ${users}::text[], ${pages}::text[], ${weights}::int4[])
    `;
    return new StoredRows(null);
  }
  const ids = rows.map((r) => r.id ?? null);
  const inserted = await sql<{ site: string; id: string; time: Date }[]>`
    with stored as ( /* ingest/writer */
      insert into events (site, time, kind, user_id, page, weight, id)
      select *
      from unnest(${sites}::text[], ${times}::timestamptz[], ${kinds}::text[], ${users}::text[], ${pages}::text[], ${weights}::int4[], ${ids}::text[])
      on conflict (site, id, time) where id is not null do nothing
      returning site, id, time
    )
    select site, id, time from stored where id is not null
  `;
  const keys = new Map<string, number>();
  for (const r of inserted) {
    const key = eventKey(r.site, r.id, r.time.getTime());
    keys.set(key, (keys.get(key) ?? 0) + 1);
  }
  return new StoredRows(keys);
}
