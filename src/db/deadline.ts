import type postgres from 'postgres';
import type { Sql } from './client.js';
import { DatabaseUnavailable, sqlState } from './errors.js';

/**
 * How long a request waits for the database before it is answered 503. postgres.js
 * keeps a query waiting while it reconnects, for as long as the server is down (each
 * attempt restarts its connect timer): without a deadline a client would wait the
 * whole outage.
 */
export const DEFAULT_DEADLINE_MS = 1500;

/**
 * A postgres.js query, or any other promise. `state` is set once postgres.js has handed
 * the query to a connection (written to the server or queued behind another query on it).
 */
export type Bounded<T> = PromiseLike<T> & { cancel?(): unknown; state?: unknown };

type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

const unavailable = (): DatabaseUnavailable => new DatabaseUnavailable('the database did not answer in time');

/**
 * `query`'s result, or a 503 after `ms`. At the deadline a query still waiting for a
 * connection is dropped (it never reaches the server, so a write was not stored). One
 * already sent is never cancelled from here: postgres.js 3.4.9 does not reset its row
 * counter when an error ends a query after some of its rows, and the next query on that
 * connection then answers an array with holes (porsager/postgres#1181) — a cancel
 * request is such an error. What stops a sent query is the server: the ingest pool's
 * statement_timeout, or readWithin's. Its own outcome is awaited up to `ms` more: a write
 * that committed meanwhile resolves as committed; if even that does not come, the answer
 * is 503 while the outcome is unknown (docs/operations.md, "Guarantees and limits"); the
 * ingest pool's statement_timeout (1.8 deadlines) ends an insert before that.
 */
export async function withDeadline<T>(query: Bounded<T>, ms: number = DEFAULT_DEADLINE_MS): Promise<T> {
  const outcome: Promise<Outcome<T>> = Promise.resolve(query).then(
    (value) => ({ ok: true, value }),
    (err: unknown) => ({ ok: false, err }),
  );
  let timer: NodeJS.Timeout | undefined;
  const expire = () => new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    let settled = await Promise.race([outcome, expire()]);
    if (settled === 'timeout') {
      clearTimeout(timer);
      // postgres.js's cancel() of a query no connection has taken only removes it from
      // the pool's queue: nothing goes to the server.
      if (query.cancel && (query.state ?? null) === null) Promise.resolve(query.cancel()).catch(() => undefined);
      settled = await Promise.race([outcome, expire()]);
      if (settled === 'timeout') throw unavailable();
    }
    if (settled.ok) return settled.value;
    // Dropped before it was sent, or stopped by the server (statement_timeout): it did not happen.
    if (sqlState(settled.err) === '57014') throw unavailable();
    throw settled.err;
  } finally {
    clearTimeout(timer);
  }
}

/** What readWithin hands its read: a connection of its own, in a transaction. */
export type ReadSql = postgres.ReservedSql;

/**
 * A read the server stops after `ms`: `read` runs on a connection reserved for it, in a
 * transaction whose statements have `statement_timeout = ms` (set local, so the
 * connection keeps its default). The transaction is REPEATABLE READ, READ ONLY: every
 * statement, function and plan of it reads one snapshot, the watermarks TimescaleDB
 * reads while planning included (under READ COMMITTED a plan made inside a function can
 * read a newer watermark than the snapshot its rows come from:
 * sql/timescaledb/headcount_check_snapshot.sql); read-only, it never fails to serialize.
 * However a statement of it ends — the timeout, an error,
 * rows cut short — the transaction's COMMIT or ROLLBACK runs on that connection before the
 * pool hands it to anyone else, and that command's completion resets the row counter an
 * error mid-stream leaves behind (see withDeadline). A connection not reserved within
 * `ms` (the pool busy, the database down) is given back untouched when it comes: 503 at
 * once, and nothing runs.
 *
 * And no JIT, on the workers too in citus mode. The read functions turn it off for
 * themselves (`set jit = off`, sql/common/headcount_stats.sql), but Citus runs their
 * statements on the workers, which plan them with their own settings: there a 28-day
 * `day` read in Asia/Kolkata filtered by page, on 3,000 events, took ~0.5 s (about 370 ms
 * of it compiling) and 4-6 s while the shards' statistics were stale (a 503 at the
 * deadline), against 40-60 ms in postgres mode. A `SET LOCAL` reaches every worker of the
 * transaction while `citus.propagate_set_commands` is `local` (elsewhere that setting is
 * a placeholder nothing reads). One round trip with the BEGIN and the timeout (a
 * parameterless query goes as a simple query, several statements in one).
 */
export async function readWithin<T>(sql: Sql, ms: number, read: (tx: ReadSql) => Promise<T>): Promise<T> {
  const reserving = sql.reserve();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  const reserved = await Promise.race([reserving, late]).finally(() => clearTimeout(timer));
  if (reserved === null) {
    reserving.then(
      (conn) => conn.release(),
      () => undefined,
    );
    throw unavailable();
  }
  const conn = reserved;
  const run = async (): Promise<T> => {
    try {
      await conn.unsafe(
        `begin isolation level repeatable read, read only; set local statement_timeout = ${Math.ceil(ms)}; ` +
          "set local citus.propagate_set_commands = 'local'; set local jit = off /* db/deadline */",
      );
      const result = await read(conn);
      await conn`commit /* db/deadline */`;
      return result;
    } catch (err) {
      // A connection that died with it needs none: it reconnects afresh (and postgres.js's
      // first query on a new connection, its array types, resets the counter too).
      await conn`rollback /* db/deadline */`.catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  };
  return withDeadline(run(), ms);
}
