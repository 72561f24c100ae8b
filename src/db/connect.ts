import pRetry, { AbortError } from 'p-retry';
import type { Logger } from '../log.js';
import { createSql } from './client.js';
import { isRetryableDbError } from './errors.js';

export class DatabaseNotReachableError extends Error {
  override name = 'DatabaseNotReachableError';
}

/**
 * At start, waits for the database to accept a query: a database started beside the
 * service (compose, systemd) may still be initialising, refusing connections or
 * answering "the database system is starting up". Retries with exponential backoff
 * (0.25 s doubling to 5 s) while the error is one a retry may cure, for at most
 * `timeoutMs`, logging each failed attempt; anything else (a wrong password, a missing
 * database) fails at once.
 */
export async function waitForDatabase(url: string, timeoutMs: number, log: Logger): Promise<void> {
  const started = Date.now();
  let attempts = 0;
  const attempt = async (): Promise<void> => {
    attempts++;
    const sql = createSql(url, { max: 1, applicationName: 'headcount-start' });
    try {
      await sql`select 1 /* db/connect */`;
    } catch (err) {
      // Not worth a retry: p-retry stops and rethrows it as it is.
      throw isRetryableDbError(err) ? err : new AbortError(err as Error);
    } finally {
      await sql.end({ timeout: 1 });
    }
  };
  try {
    await pRetry(attempt, {
      // Bounded by maxRetryTime (which takes 0 for "no limit": hence no retries at 0);
      // retry's `retries: Infinity` would build an endless schedule.
      retries: timeoutMs === 0 ? 0 : 10_000,
      minTimeout: 250,
      factor: 2,
      maxTimeout: 5000,
      maxRetryTime: timeoutMs,
      onFailedAttempt: (err) => {
        log.warn(
          { attempt: err.attemptNumber, elapsedMs: Date.now() - started, timeoutMs, err },
          'the database is not reachable',
        );
      },
    });
  } catch (err) {
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const why = err instanceof Error ? err.message : String(err);
    throw new DatabaseNotReachableError(
      isRetryableDbError(err)
        ? `the database was not reachable within DATABASE_CONNECT_TIMEOUT_MS=${timeoutMs} (${attempts} attempts over ${seconds} s): ${why}`
        : `the database refused the connection: ${why}`,
      { cause: err },
    );
  }
  if (attempts > 1) log.info({ attempts, elapsedMs: Date.now() - started }, 'the database is reachable');
}
