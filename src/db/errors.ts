/**
 * PostgreSQL trouble, classified by SQLSTATE (never by message text): what a retry
 * may cure becomes a 503 for the client.
 */
const RETRYABLE_CLASSES = new Set([
  '08', // connection exception
  '53', // insufficient resources (disk full, out of memory, too many connections)
  '57', // operator intervention (admin shutdown, crash shutdown, cannot connect now)
  '58', // system error (I/O)
]);
const RETRYABLE_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
]);
const CONNECTION_ERRNOS = new Set([
  'ENOENT', // a Unix-domain socket that is gone: the managed cluster is down
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/** The database did not answer in time, or could not be reached: a retry may succeed. */
export class DatabaseUnavailable extends Error {
  override name = 'DatabaseUnavailable';
}

/**
 * The code of a database error: PostgreSQL's SQLSTATE (a postgres.js PostgresError), or
 * for a connection that failed, Node's or postgres.js's (ECONNREFUSED, CONNECTION_CLOSED);
 * undefined for anything else.
 */
export function sqlState(err: unknown): string | undefined {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

export function isRetryableDbError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailable) return true;
  const code = sqlState(err);
  if (code === undefined) return false;
  if (CONNECTION_ERRNOS.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && (RETRYABLE_CODES.has(code) || RETRYABLE_CLASSES.has(code.slice(0, 2)));
}
