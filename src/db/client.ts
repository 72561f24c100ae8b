import net from 'node:net';
import postgres from 'postgres';
import { DEFAULT_DEADLINE_MS } from './deadline.js';
import { sqlState } from './errors.js';

export type Sql = postgres.Sql;

export interface SqlOptions {
  max?: number;
  applicationName?: string;
  /** How long a request waits for this pool's answer before 503 (see deadline.ts); default 1500 ms. */
  deadlineMs?: number;
  /** How long a new connection may take to be established; default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * The server ends each statement of this pool that runs longer (statement_timeout, a
   * session setting of its connections). Only for a pool whose statements return at most
   * one row (the ingest pool): see db/deadline.ts. Default: the server's.
   */
  statementTimeoutMs?: number;
  /** What the server says besides answers (NOTICE, WARNING); default: nothing. */
  onNotice?: (notice: postgres.Notice) => void;
  /** Further session settings of its connections (sent when each connects). */
  settings?: Record<string, string>;
  /**
   * Its connections are never closed by the pool: not when idle, and not at their end
   * of life (postgres.js reopens a connection after 30 to 60 minutes by default). For a
   * session whose backend matters for longer (a session-level advisory lock, its CPU).
   */
  keepSessions?: boolean;
}

const deadlines = new WeakMap<Sql, number>();

/** The deadline of requests on `sql` (its SqlOptions.deadlineMs). */
export const deadlineOf = (sql: Sql): number => deadlines.get(sql) ?? DEFAULT_DEADLINE_MS;

/** Every error a database socket reported (see lostDatabaseConnection). */
const socketErrors = new WeakSet<object>();
const remember = (err: unknown): void => {
  if (typeof err === 'object' && err !== null) socketErrors.add(err);
};

/** postgres.js's codes for a connection that failed, closed or timed out while connecting. */
const POSTGRES_JS_CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

/**
 * Whether `err` says only that a database connection is gone: an error one of this
 * service's database sockets reported (connect ENOENT, ECONNREFUSED, a reset, ...),
 * postgres.js's own for a closed connection, or the server's for a connection it ended
 * (SQLSTATE class 08, or 57P01-57P03: shut down, crashed, starting up).
 *
 * postgres.js rejects with such errors a promise nobody holds: on each new connection it
 * first asks for the server's array types (fetchArrayTypes, started from its
 * ReadyForQuery handler, its promise dropped); when the server goes away before that
 * answer, the query fails with the connection's error and the rejection is unhandled,
 * which Node turns into an uncaught exception (test/faults/outage.test.ts, a Unix socket:
 * "connect ENOENT" at the crash, from the reconnect; test/faults/connection-setup.test.ts). The pool
 * reconnects by itself; the service must not stop for it (src/server.ts).
 */
export function lostDatabaseConnection(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (socketErrors.has(err)) return true;
  const code = sqlState(err);
  if (code === undefined) return false;
  if (POSTGRES_JS_CONNECTION_CODES.has(code)) return true;
  return (err as Error).name === 'PostgresError' && (code.startsWith('08') || /^57P0[1-3]$/.test(code));
}

/**
 * The socket of a database connection, as postgres.js asks for it (its `socket` option).
 *
 * Ours, first, because postgres.js leaves Nagle's algorithm on; with delayed ACKs a
 * batch's last packet can then wait ~40 ms. Our own socket turns it off.
 *
 * And it never loses its last 'error' listener. postgres.js removes every listener of a
 * socket it is done with (removeAllListeners, in its 'close' handler, on whichever socket
 * it holds then): a socket left connected without one, reset by the server when it
 * crashed, threw ECONNRESET from libuv with no handler and stopped the service (a clean
 * run of the suite, test/faults/outage.test.ts over TCP, Node 24: "uncaught error: read
 * ECONNRESET" at the crash). Such a socket's error means only that it is gone, which its
 * connection, if it still has one, learns from its own listener. That listener of ours
 * remembers the error, for lostDatabaseConnection. test/db/client.test.ts.
 */
export function databaseSocket(options: { host: string[]; port: number[]; path?: string | false }): net.Socket {
  const socket = options.path
    ? net.connect({ path: options.path })
    : net.connect({ host: options.host[0], port: options.port[0] ?? 5432, noDelay: true });
  socket.on('error', remember);
  const removeAll = socket.removeAllListeners.bind(socket);
  socket.removeAllListeners = (event?: string | symbol) => {
    // Node reads an explicit undefined as an event name: all of them only without one.
    if (event === undefined) removeAll();
    else removeAll(event);
    if (event === undefined || event === 'error') socket.on('error', remember);
    return socket;
  };
  return socket;
}

/**
 * The one way this service opens a database pool. bigint (count, sum) comes back as a
 * JS number: counts stay far below 2^53.
 */
export function createSql(url: string, opts: SqlOptions = {}): Sql {
  // libpq's form for a Unix-domain socket, `?host=/socket/dir`, which postgres.js does
  // not read: turned into its `path` option.
  const parsed = new URL(url);
  const socketDir = parsed.searchParams.get('host');
  let path: string | undefined;
  if (socketDir?.startsWith('/')) {
    parsed.searchParams.delete('host');
    path = `${socketDir}/.s.PGSQL.${parsed.port || 5432}`;
  }
  const sql = postgres(parsed.toString(), {
    ...(path ? { path } : {}),
    max: opts.max ?? 10,
    idle_timeout: opts.keepSessions ? 0 : 60,
    ...(opts.keepSessions ? { max_lifetime: 0 } : {}),
    connect_timeout: (opts.connectTimeoutMs ?? 5000) / 1000,
    // Reconnect within half a second of the server's return (the default grows to 20 s,
    // and requests would wait that long). Requests do not wait for it: see deadline.ts.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
    onnotice: opts.onNotice ?? (() => {}),
    // A write is acknowledged once its COMMIT returns, so that COMMIT must be durable
    // whatever the server's default (some tune synchronous_commit off for speed).
    connection: {
      application_name: opts.applicationName ?? 'headcount',
      TimeZone: 'UTC',
      synchronous_commit: 'on',
      ...(opts.statementTimeoutMs ? { statement_timeout: String(opts.statementTimeoutMs) } : {}),
      ...opts.settings,
    },
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
    socket: databaseSocket,
  } as postgres.Options<Record<string, postgres.PostgresType>>);
  deadlines.set(sql, opts.deadlineMs ?? DEFAULT_DEADLINE_MS);
  return sql;
}
