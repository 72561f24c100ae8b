import { DatabaseUnavailable, sqlState } from './errors.js';

/**
 * How long a request waits for the database before it is answered 503. postgres.js
 * keeps a query waiting while it reconnects, for as long as the server is down (each
 * attempt restarts its connect timer): without a deadline a client would wait the
 * whole outage.
 */
export const DEFAULT_DEADLINE_MS = 1500;

/** A postgres.js query (or anything settling like one that can be cancelled). */
type Cancellable<T> = PromiseLike<T> & { cancel(): unknown };

type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

const unavailable = (): DatabaseUnavailable => new DatabaseUnavailable('the database did not answer in time');

/**
 * `query`'s result, or a 503 after `ms`. At the deadline the query is cancelled: one
 * not yet sent to the server is dropped (it will never run, so a write was not stored);
 * one already sent is asked to stop, and its own outcome is awaited for up to `ms`
 * more: a write that committed meanwhile resolves as committed. If even that does not
 * come, the answer is 503 while the outcome is unknown (docs/operations.md, "Guarantees and limits").
 */
export async function withDeadline<T>(query: Cancellable<T>, ms: number = DEFAULT_DEADLINE_MS): Promise<T> {
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
      Promise.resolve(query.cancel()).catch(() => undefined);
      settled = await Promise.race([outcome, expire()]);
      if (settled === 'timeout') throw unavailable();
    }
    if (settled.ok) return settled.value;
    // Cancelled before it was sent, or stopped by the server: it did not happen.
    if (sqlState(settled.err) === '57014') throw unavailable();
    throw settled.err;
  } finally {
    clearTimeout(timer);
  }
}
