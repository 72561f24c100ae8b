import type { Logger } from '../log.js';
import { createSql } from './client.js';
import { isRetryableDbError } from './errors.js';

export class DatabaseNotReachableError extends Error {
  override name = 'DatabaseNotReachableError';
}

/** What waitForDatabase waits with: the real clock, or a test's. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
/** The longest one attempt may take to connect (postgres.js's connect_timeout of the pool). */
const MAX_ATTEMPT_MS = 5000;

/** One attempt: a query on a new connection that may take `budgetMs` to connect. */
export type Attempt = (budgetMs: number) => Promise<void>;

const selectOne =
  (url: string): Attempt =>
  async (budgetMs) => {
    const sql = createSql(url, { max: 1, applicationName: 'headcount-start', connectTimeoutMs: budgetMs });
    try {
      await sql`select 1 /* db/connect */`;
    } finally {
      await sql.end({ timeout: 1 });
    }
  };

/**
 * At start, waits for the database to accept a query: a database started beside the
 * service (compose, systemd) may still be initialising, refusing connections or
 * answering "the database system is starting up". Retries with exponential backoff
 * (0.25 s doubling to 5 s) while the error is one a retry may cure, logging each failed
 * attempt; anything else (a wrong password, a missing database) fails at once.
 *
 * `timeoutMs` bounds the whole wait: no pause runs past it (the last is cut short so that
 * the last attempt starts at the deadline) and no attempt's connect outlives it by more
 * than FIRST_DELAY_MS. A backoff schedule that only checks the time between attempts
 * (p-retry's maxRetryTime) gave up 3.8 s into a 2 s timeout: its fifth pause was a whole
 * 2 s begun at 1.75 s.
 */
export async function waitForDatabase(
  url: string,
  timeoutMs: number,
  log: Logger,
  deps: { attempt?: Attempt; clock?: Clock } = {},
): Promise<void> {
  const attempt = deps.attempt ?? selectOne(url);
  const clock = deps.clock ?? realClock;
  const started = clock.now();
  const deadline = started + timeoutMs;
  let attempts = 0;
  let delayMs = FIRST_DELAY_MS;
  for (;;) {
    attempts++;
    try {
      await attempt(Math.min(MAX_ATTEMPT_MS, Math.max(FIRST_DELAY_MS, deadline - clock.now())));
      break;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (!isRetryableDbError(err)) {
        throw new DatabaseNotReachableError(`the database refused the connection: ${why}`, { cause: err });
      }
      const elapsedMs = clock.now() - started;
      const leftMs = deadline - clock.now();
      if (leftMs <= 0) {
        const seconds = Math.round(elapsedMs / 100) / 10;
        throw new DatabaseNotReachableError(
          `the database was not reachable within DATABASE_CONNECT_TIMEOUT_MS=${timeoutMs} (${attempts} attempt${attempts === 1 ? '' : 's'} over ${seconds} s): ${why}`,
          { cause: err },
        );
      }
      log.warn({ attempt: attempts, elapsedMs, timeoutMs, err }, 'the database is not reachable');
      await clock.sleep(Math.min(delayMs, leftMs));
      delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
    }
  }
  if (attempts > 1) log.info({ attempts, elapsedMs: clock.now() - started }, 'the database is reachable');
}
