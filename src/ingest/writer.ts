import type { Sql } from '../db/client.js';
import { type EventDimensions, STANDARD_DIMENSIONS } from '../dimensions.js';
import { withDeadline } from '../db/deadline.js';
import { DatabaseUnavailable, isRetryableDbError, sqlState } from '../db/errors.js';
import type { Logger } from '../log.js';
import { EventsRejected, QueueFull, ShuttingDown, TooManyEvents } from './errors.js';

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
  /** Its dimensions and props (POST /v1/events); the seed APIs send none (null columns). */
  dimensions?: EventDimensions | undefined;
}

export interface WriterOptions {
  /** A flush takes whole requests up to this many rows (one request larger than this goes alone). */
  maxBatchRows: number;
  /** Rows waiting beyond this are refused (QueueFull). */
  maxQueueRows: number;
  /** Bytes of event data waiting beyond this are refused too: memory is bounded by size, not rows only. */
  maxQueueBytes: number;
  /** 0: flush as soon as rows wait and a flush slot is free. */
  flushDelayMs: number;
  /**
   * Flushes that may run at once, each on its own connection: rows that arrive while one
   * commits go out in the next without waiting for it. 1 is a single writer.
   */
  maxInflightFlushes: number;
  /**
   * A flush beyond the first starts only while at least this many rows wait: fewer wait
   * for the flush in progress and go out together after it, in one larger statement
   * (a statement's fixed cost in PostgreSQL outweighs a few rows'). Large requests still
   * flush side by side. 0: every slot is used as soon as rows wait.
   */
  parallelFlushMinRows: number;
  /** How long a flush waits for the database before its requests are answered DatabaseUnavailable. */
  deadlineMs: number;
}

/** What became of one request's rows once their batch committed. */
export interface WriteResult {
  /** Rows stored; the others repeated an id already stored (same site, id and time). */
  inserted: number;
}

interface Pending {
  rows: EventRow[];
  bytes: number;
  /** Its flush group (see GroupCommitWriter's groupOf); undefined: any. */
  group: string | undefined;
  resolve: (result: WriteResult) => void;
  reject: (err: Error) => void;
}

/**
 * The group a request's rows flush with, where it matters which requests share a
 * transaction (citus mode: the worker holding their site, db/citus-placement.ts);
 * undefined when it does not, or is not known.
 */
export type FlushGroupOf = (rows: EventRow[]) => string | undefined;

/** What a flush did, for metrics: its rows, its requests, how long it took, whether it committed. */
export interface FlushOutcome {
  rows: number;
  requests: number;
  durationMs: number;
  ok: boolean;
}

export interface WriterStats {
  batches: number;
  rows: number;
  failedBatches: number;
  rejectedFull: number;
  queuedRows: number;
  queuedBytes: number;
}

/**
 * Stores a batch and answers the keys it stored (insertEvents' StoredAnswer); a
 * postgres.js query, which withDeadline may drop while it waits for a connection.
 */
export type InsertEvents = (rows: EventRow[]) => PromiseLike<StoredAnswer> & { cancel?(): unknown; state?: unknown };

/** What a row holds in memory, roughly: strings are UTF-16, plus the object and array slots. */
const rowBytes = (r: EventRow): number =>
  96 +
  2 * (r.site.length + r.kind.length + r.page.length + (r.userId?.length ?? 0) + (r.id?.length ?? 0)) +
  (r.dimensions ? dimensionBytes(r.dimensions) : 0);

function dimensionBytes(dims: EventDimensions): number {
  let chars = 0;
  let count = 0;
  for (const name of STANDARD_DIMENSIONS) {
    const value = dims[name];
    if (value === undefined) continue;
    chars += value.length;
    count++;
  }
  if (dims.props) {
    for (const name in dims.props) {
      chars += name.length + dims.props[name]!.length;
      count++;
    }
  }
  return 16 + 16 * count + 2 * chars;
}

/**
 * Group commit: requests wait on a bounded queue; a flush inserts everything that
 * queued up (up to maxBatchRows) in one statement and one transaction, and only then
 * answers each request. A new flush starts as soon as a slot of maxInflightFlushes is
 * free: with 1 it is a single writer, flushing as soon as the previous flush ends. A
 * request's rows are never split across batches, so a multi-event request is
 * all-or-nothing. With `groupOf`, a flush takes only requests of one group (the first
 * waiting request's, or the first of a group no flush is writing), so that one group's
 * trouble (a Citus worker down) fails no request of another: undefined is a group too.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private queuedBytes = 0;
  private inflight = 0;
  /** The groups of the flushes in progress, with how many of each. */
  private readonly flushing = new Map<string | undefined, number>();
  private scheduled = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  readonly stats: WriterStats = { batches: 0, rows: 0, failedBatches: 0, rejectedFull: 0, queuedRows: 0, queuedBytes: 0 };

  constructor(
    /** The pool the default `insert` runs on; none when `insert` is given. */
    sql: Sql | undefined,
    private readonly opts: WriterOptions,
    private readonly log: Logger,
    private readonly onFlushed: (flush: FlushOutcome) => void = () => {},
    /**
     * The database statement: citus mode's runs on a connection of its own choosing
     * (db/citus-commits.ts); unit tests run the writer without a database.
     */
    private readonly insert: InsertEvents = (rows) => {
      if (sql === undefined) throw new Error('a GroupCommitWriter needs a pool or an insert');
      return insertEvents(sql, rows);
    },
    private readonly groupOf?: FlushGroupOf,
  ) {}

  /** Resolves once `rows` are committed; rejects with an IngestError or DatabaseUnavailable otherwise. */
  write(rows: EventRow[]): Promise<WriteResult> {
    if (rows.length === 0) return Promise.resolve({ inserted: 0 });
    if (this.closed) return Promise.reject(new ShuttingDown('the service is shutting down'));
    if (rows.length > this.opts.maxQueueRows) {
      return Promise.reject(new TooManyEvents(`one request may carry at most ${this.opts.maxQueueRows} events; split it`));
    }
    let bytes = 0;
    for (const r of rows) bytes += rowBytes(r);
    if (this.queuedRows + rows.length > this.opts.maxQueueRows || this.queuedBytes + bytes > this.opts.maxQueueBytes) {
      this.stats.rejectedFull++;
      return Promise.reject(new QueueFull('too many events are waiting to be written; retry later'));
    }
    const group = this.groupOf?.(rows);
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ rows, bytes, group, resolve, reject });
      this.queuedRows += rows.length;
      this.queuedBytes += bytes;
      this.countQueue();
      this.schedule();
    });
  }

  /** Stops taking writes and resolves when everything queued has been flushed. May be called again. */
  close(): Promise<void> {
    this.closed = true;
    if (this.idle()) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.inflight === 0 && !this.scheduled && this.queue.length === 0;
  }

  /** Tells close() when nothing is queued, scheduled or in flight. */
  private signalIfDrained(): void {
    if (!this.idle()) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private countQueue(): void {
    this.stats.queuedRows = this.queuedRows;
    this.stats.queuedBytes = this.queuedBytes;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const start = (): void => {
      this.scheduled = false;
      this.pump();
      this.signalIfDrained();
    };
    // setImmediate lets every request already parsed in this turn of the event loop join.
    if (this.opts.flushDelayMs > 0) setTimeout(start, this.opts.flushDelayMs);
    else setImmediate(start);
  }

  /**
   * Starts flushes while rows wait and fewer than maxInflightFlushes run: another beside
   * one in progress when parallelFlushMinRows wait, or for a group no flush is writing.
   */
  private pump(): void {
    while (this.queue.length > 0 && this.inflight < this.opts.maxInflightFlushes) {
      const idle = this.groupOf ? this.queue.find((p) => p.group !== undefined && !this.flushing.has(p.group)) : undefined;
      const next = this.inflight === 0 || this.queuedRows >= this.opts.parallelFlushMinRows ? this.queue[0] : idle;
      if (next === undefined) break;
      const group = next.group;
      const batch = this.takeBatch(group);
      this.inflight++;
      this.flushing.set(group, (this.flushing.get(group) ?? 0) + 1);
      void this.flush(batch).finally(() => {
        this.inflight--;
        const left = this.flushing.get(group)! - 1;
        if (left === 0) this.flushing.delete(group);
        else this.flushing.set(group, left);
        // Whatever queued up during the flush goes at once: no timer between flushes.
        this.pump();
        this.signalIfDrained();
      });
    }
  }

  /** The first waiting requests of `group`, in order, up to maxBatchRows (at least one). */
  private takeBatch(group: string | undefined): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    let rows = 0;
    let bytes = 0;
    let full = false;
    for (const next of this.queue) {
      if (full || next.group !== group) {
        rest.push(next);
        continue;
      }
      if (batch.length > 0 && rows + next.rows.length > this.opts.maxBatchRows) {
        // Requests keep their order: none of this group goes before this one.
        full = true;
        rest.push(next);
        continue;
      }
      batch.push(next);
      rows += next.rows.length;
      bytes += next.bytes;
    }
    this.queue = rest;
    this.queuedRows -= rows;
    this.queuedBytes -= bytes;
    this.countQueue();
    return batch;
  }

  private async flush(batch: Pending[]): Promise<void> {
    const rows = batch.length === 1 ? batch[0]!.rows : batch.flatMap((p) => p.rows);
    const started = performance.now();
    const outcome = (ok: boolean): FlushOutcome => ({
      rows: rows.length,
      requests: batch.length,
      durationMs: performance.now() - started,
      ok,
    });
    let answer: StoredAnswer;
    try {
      answer = await withRetry(() => withDeadline(this.insert(rows), this.opts.deadlineMs));
    } catch (err) {
      if (isRefusal(err) && batch.length > 1) {
        // Something in the batch was refused for what it is, not for the database's
        // state: split it, so the good requests commit and only the bad one fails.
        const half = Math.ceil(batch.length / 2);
        await this.flush(batch.slice(0, half));
        await this.flush(batch.slice(half));
        return;
      }
      this.stats.failedBatches++;
      const retryable = isRetryableDbError(err);
      // Unavailability is counted, not logged per batch: an outage would flood the log.
      if (!retryable) this.log.error({ err, rows: rows.length }, 'event batch refused by the database');
      this.onFlushed(outcome(false));
      // Only the database's own refusal of the rows (a SQLSTATE of class 22 or 23: the
      // statement failed, nothing of it is stored) is the client's fault. Anything else
      // it cannot know the outcome of is a 503 (retry; ids make a resend harmless).
      const failure = isRefusal(err)
        ? new EventsRejected('the database refused these events', { cause: err })
        : new DatabaseUnavailable('the events could not be stored; retry later', { cause: err });
      for (const p of batch) p.reject(failure);
      return;
    }
    // The statement returned: the batch is committed, whatever its answer says. Nothing
    // after this point may fail a request.
    const stored = storedRows(rows, answer, this.log);
    this.stats.batches++;
    this.stats.rows += rows.length;
    this.onFlushed(outcome(true));
    // In batch order: of two requests resending one event, the first is told it was stored.
    for (const p of batch) p.resolve({ inserted: stored.claim(p.rows) });
  }
}

/** The database refused the rows themselves (bad data, a constraint): SQLSTATE class 22 or 23. */
const isRefusal = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
};

/** A transaction that lost a deadlock or a serialization conflict did nothing: run it again. */
async function withRetry<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = sqlState(err);
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
 * What insertEvents answers: no rows for a batch without ids, else one row whose `keys`
 * lists each stored row's [site, id, epoch milliseconds].
 */
export type StoredAnswer = readonly { keys?: unknown }[];

/** Which of `rows` were stored, from insertEvents' answer for them. */
export function storedRows(rows: EventRow[], answer: StoredAnswer, log?: Logger): StoredRows {
  if (!rows.some((r) => r.id !== undefined)) return new StoredRows(null);
  const returned = answer.length === 1 ? answer[0]?.keys : undefined;
  if (!Array.isArray(returned)) {
    // Cannot happen with a sound connection; if it did, the rows are stored all the same.
    log?.error({ answer: answer.length }, 'the insert answered no keys; its rows are counted as stored');
    return new StoredRows(null);
  }
  const keys = new Map<string, number>();
  for (const [site, id, timeMs] of returned as [string, string, number][]) {
    const key = eventKey(site, id, Number(timeMs));
    keys.set(key, (keys.get(key) ?? 0) + 1);
  }
  return new StoredRows(keys);
}

/**
 * What separates the values of one dimension in the text the insert sends for it (see
 * insertEvents): U+001F, which no stored value holds, as "" stands for none. The rules of
 * POST /v1/events make both true: a control character refuses the event, an empty value
 * is absent (src/v1/events/dimensions.ts). Were one broken, the column would get more
 * values than the batch has rows, and the statement fails whole on the rows it makes
 * without a site (not null): nothing is stored shifted.
 */
const SEPARATOR = '\u001f';

/**
 * One statement for the whole batch: the columns as arrays, unnested into rows. Rows
 * with an id that is already stored (same site, id and time) are skipped; the keys of
 * those stored are returned (storedRows) so that each request can learn which of its
 * rows were new. Those keys come back in one row, built once the insert has finished: an
 * error (a statement_timeout) can then only come before any row, never in the middle of
 * them (see db/deadline.ts). Returns the query itself, so that a caller can drop it while
 * it waits for a connection.
 *
 * `callInserted` (citus mode, where events has no trigger): the same statement passes the
 * rows it stored, and only those (a resent id is not), to headcount_events_inserted, which
 * folds them into the aggregates and the dimension queue: one statement, one transaction,
 * as the trigger does in the other modes.
 */
export function insertEvents(sql: Sql, rows: EventRow[], opts: { callInserted?: boolean } = {}) {
  const sites = rows.map((r) => r.site);
  // Epoch milliseconds, made timestamps by PostgreSQL: cheaper to build and to send than
  // ISO strings (a Date keeps whole milliseconds, so does trunc).
  const times = rows.map((r) => Math.trunc(r.timeMs));
  const kinds = rows.map((r) => r.kind);
  const users = rows.map((r) => r.userId);
  const pages = rows.map((r) => r.page);
  const weights = rows.map((r) => r.weight);
  // The columns of the batch: each an array unnested into rows side by side (ROWS FROM,
  // `names` in r), and the values inserted from them. The id only when a row has one. The
  // dimensions only when a row has them, so that batches of the seed APIs carry nothing
  // more: then each as one text of its values joined by SEPARATOR, "" for none, split by
  // string_to_array. Per event with every dimension that costs the service ~3.5 µs less
  // than eleven arrays postgres.js escapes element by element, and PostgreSQL ~4 µs less
  // than one JSON array read by jsonb_to_recordset (bench/dimensions.ts). At most four
  // statements.
  const columns = ['site', 'time', 'kind', 'user_id', 'page', 'weight'];
  const names = ['site', 'ms', 'kind', 'user_id', 'page', 'weight'];
  let sources = sql`
    unnest(${sites}::text[]), unnest(${times}::int8[]), unnest(${kinds}::text[]), unnest(${users}::text[]),
    unnest(${pages}::text[]), unnest(${weights}::int4[])
  `;
  // unnest's `ms` as a timestamp, exactly: whole milliseconds times an interval of one.
  let values = sql`site, timestamptz 'epoch' + ms * interval '1 millisecond', kind, user_id, page, weight`;
  const withIds = rows.some((r) => r.id !== undefined);
  if (withIds) {
    columns.push('id');
    names.push('id');
    sources = sql`${sources}, unnest(${rows.map((r) => r.id ?? null)}::text[])`;
    values = sql`${values}, id`;
  }
  if (rows.some((r) => r.dimensions !== undefined)) {
    const joined = (value: (dims: EventDimensions) => string | undefined): string =>
      rows.map((r) => (r.dimensions ? (value(r.dimensions) ?? '') : '')).join(SEPARATOR);
    const split = (text: string) => sql`unnest(string_to_array(${text}::text, ${SEPARATOR}, ''))`;
    for (const name of STANDARD_DIMENSIONS) sources = sql`${sources}, ${split(joined((d) => d[name]))}`;
    // JSON.stringify escapes every control character: SEPARATOR never appears in it.
    sources = sql`${sources}, ${split(joined((d) => (d.props ? JSON.stringify(d.props) : undefined)))}`;
    columns.push(...STANDARD_DIMENSIONS, 'props');
    names.push(...STANDARD_DIMENSIONS, 'props');
    values = sql`${values}, ${sql(STANDARD_DIMENSIONS)}, props::jsonb`;
  }
  const insert = sql`
    insert into events (${sql(columns)}) /* ingest/writer */
    select ${values}
    from rows from (${sources}) as r (${sql(names)})
  `;
  const onConflict = sql`on conflict (site, id, time) where id is not null do nothing`;
  // The stored rows' keys (site, id, epoch ms) as JSON, for the duplicates' count.
  const storedKeys = sql`
    (select coalesce(json_agg(json_build_array(site, id, (extract(epoch from time) * 1000)::int8)), '[]') from stored where id is not null)
  `;
  if (opts.callInserted) {
    // A CTE's side effects run only when something reads it: the keys are read from kept.
    return sql<StoredAnswer[number][]>`
      with stored as ( /* ingest/writer */
        ${insert}
        ${withIds ? onConflict : sql``}
        returning *
      ),
      kept as (
        -- As text: Citus keeps a CTE's rows as an intermediate result, which cannot be void.
        select headcount_events_inserted(array_agg(s::events))::text as done from stored s
      )
      select ${withIds ? storedKeys : sql`null`} as keys
      from kept
    `;
  }
  if (!withIds) return sql<StoredAnswer[number][]>`${insert}`;
  return sql<StoredAnswer[number][]>`
    with stored as ( /* ingest/writer */
      ${insert}
      ${onConflict}
      returning site, id, time
    )
    select ${storedKeys} as keys
  `;
}
