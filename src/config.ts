import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { SITE_PATTERN, SITE_RULE } from './site.js';
import { ROW_BYTES } from './http/body.js';
import { parseTrustProxy, type TrackerSettings } from './tracker/settings.js';

export const StorageModeSetting = z.enum(['auto', 'timescaledb', 'postgres', 'citus']);
export type StorageModeSetting = z.infer<typeof StorageModeSetting>;

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();

/**
 * Every setting the service reads, parsed once at boot. `.env.example` documents each
 * one; a bad value stops the service with a message naming the variable.
 */
const EnvSchema = z
  .object({
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: port.default(8080),
    HTTP_REQUEST_TIMEOUT_MS: positiveInt.min(1000).max(600_000).default(15_000),
    HTTP_MAX_CONNECTIONS: positiveInt.max(1_000_000).default(10_000),
    HTTP_BODY_MEMORY_BYTES: positiveInt.min(8 * 1024 * 1024).default(16 * 1024 * 1024),
    HTTP_BODY_TIMEOUT_MS: positiveInt.min(100).max(600_000).default(10_000),
    HTTP_MAX_ROWS_PER_REQUEST: positiveInt.max(1_000_000).default(10_000),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
    DATABASE_POOL_MAX: positiveInt.max(1000).default(10),
    DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
    WORKERS: positiveInt.max(64).default(1),
    STORAGE_MODE: StorageModeSetting.default('auto'),
    DEFAULT_SITE: z.string().regex(SITE_PATTERN, SITE_RULE).default('default'),
    CORS_ALLOW_ORIGIN: z.string().min(1).default('*'),
    V1_AUTH: z.enum(['keys', 'none']).default('keys'),
    SEED_APIS: z.stringbool().default(true),
    RATE_LIMIT_INGEST_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(50),
    RATE_LIMIT_INGEST_BURST: positiveInt.max(10_000_000).default(200),
    RATE_LIMIT_READ_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(10),
    RATE_LIMIT_READ_BURST: positiveInt.max(10_000_000).default(40),
    DASHBOARD: z.stringbool().default(true),
    SKETCH_RETENTION_DAYS: positiveInt.min(60, 'must be at least 60 (the raw retention)').max(36_600).default(400),
    MIGRATE_ON_START: z.stringbool().default(true),
    LOCAL_PG_DATA_DIR: z.string().min(1).default('.data/postgres'),
    LOCAL_PG_PORT: port.default(54329),
    LOCAL_PG_BIN_DIR: z.string().min(1).optional(),
    // Citus (issue 21): with no DATABASE_URL, 0 runs one local PostgreSQL; N > 0 runs a
    // local Citus cluster instead: LOCAL_PG_DATA_DIR and LOCAL_PG_PORT are its coordinator,
    // <LOCAL_PG_DATA_DIR>-worker-<n> on LOCAL_PG_PORT + n its N workers.
    LOCAL_CITUS_WORKERS: z.coerce.number().int().min(0).max(32).default(0),
    INGEST_MAX_BATCH_ROWS: positiveInt.max(1_000_000).default(5000),
    INGEST_MAX_QUEUE_ROWS: positiveInt.max(10_000_000).default(100_000),
    INGEST_MAX_QUEUE_BYTES: positiveInt.min(1024 * 1024).default(64 * 1024 * 1024),
    DATABASE_TIMEOUT_MS: positiveInt.min(100).max(60_000).default(1500),
    INGEST_FLUSH_DELAY_MS: z.coerce.number().int().min(0).max(10_000).default(0),
    INGEST_MAX_INFLIGHT_FLUSHES: positiveInt.max(64).default(2),
    INGEST_PARALLEL_FLUSH_MIN_ROWS: z.coerce.number().int().min(0).max(1_000_000).default(256),
    INGEST_RETRY_AFTER_SECONDS: positiveInt.max(3600).default(1),
    REFRESH_INTERVAL_MS: positiveInt.max(60_000).default(1000),
    // The dimension roller looks at the queue of events every ROLLUP_INTERVAL_MS and
    // rolls it up once it holds ROLLUP_MIN_ROWS, or ROLLUP_MAX_WAIT_MS after its last
    // pass: a roll costs per group of values, so rolls of a few events cost ~40 times more
    // per event than rolls of thousands (docs/benchmarks.md, "Roller"). Reads add what is
    // queued: these bound how long the queue grows, never what a read sees.
    ROLLUP_INTERVAL_MS: positiveInt.max(60_000).default(1000),
    // The same loop folds the parts every insert appends (headcount_fold_events) every
    // FOLD_INTERVAL_MS while this instance's writer stores rows (every ROLLUP_INTERVAL_MS
    // otherwise), during a pass too: reads of the last minutes union the parts not yet
    // folded (docs/benchmarks.md, "After the parts").
    FOLD_INTERVAL_MS: positiveInt.max(60_000).default(250),
    // …once it stored FOLD_MIN_WRITES writes since the last fold: a fold costs per key it
    // rewrites, so a few large writes a second are folded once every ROLLUP_INTERVAL_MS.
    FOLD_MIN_WRITES: positiveInt.max(100_000).default(16),
    ROLLUP_MIN_ROWS: positiveInt.max(20_000).default(2000),
    ROLLUP_MAX_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    PARTITION_MAINTENANCE_INTERVAL_MS: positiveInt.default(3_600_000),
    SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
    // /v1 reads: how many run at once, how large a stats answer may be, how slowly an export may be read.
    STATS_MAX_CONCURRENT: positiveInt.max(1000).default(4),
    STATS_MAX_CONCURRENT_PER_KEY: positiveInt.max(1000).default(4),
    STATS_HEAVY_ROWS: positiveInt.max(100_000_000).default(10_000),
    STATS_MAX_ROWS: positiveInt.max(100_000_000).default(100_000),
    // A stats shape no rollup answers is read from raw events: refused (400 too_expensive)
    // when that would read more than this many (estimated from the hours' event counts).
    STATS_MAX_RAW_ROWS: positiveInt.max(1_000_000_000).default(2_000_000),
    EXPORT_MAX_CONCURRENT: positiveInt.max(1000).default(2),
    EXPORT_MAX_CONCURRENT_PER_KEY: positiveInt.max(1000).default(1),
    EXPORT_MIN_BYTES_PER_SECOND: z.coerce.number().int().min(0).max(1_000_000_000).default(65_536),
    EXPORT_SLOW_WINDOW_MS: positiveInt.min(100).max(3_600_000).default(30_000),
    EXPORT_MAX_DURATION_MS: positiveInt.min(1000).max(86_400_000).default(1_800_000),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
    LOG_REQUESTS: z.stringbool().default(false),
    // Hygiene (issue 17): failed key lookups per client address.
    AUTH_FAILURES_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(1),
    AUTH_FAILURES_BURST: positiveInt.max(1_000_000).default(10),
    // /metrics on a listener of its own (host:port) and/or behind a bearer token.
    METRICS_LISTEN: z
      .string()
      .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6)')
      .transform((text, ctx) => {
        const at = text.lastIndexOf(':');
        const portNumber = Number(text.slice(at + 1));
        if (portNumber < 1 || portNumber > 65535) {
          ctx.addIssue({ code: 'custom', message: 'must have a port from 1 to 65535' });
          return z.NEVER;
        }
        return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: portNumber };
      })
      .optional(),
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters (openssl rand -hex 24)').optional(),
    // The tracker (issue 20): the script's second path, the proxies trusted with
    // X-Forwarded-For (comma-separated addresses), and the country lookup.
    TRACKER_SCRIPT_PATH: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]{1,200}\.js$/, 'must be a path ending in .js, such as /js/hc.js')
      .refine((p) => !p.startsWith('/v1/') && !p.startsWith('/assets/'), 'must not be under /v1/ or /assets/')
      .optional(),
    TRUST_PROXY: z
      .string()
      .optional()
      .transform((text, ctx) => {
        try {
          return parseTrustProxy(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `must be comma-separated IP addresses of proxies: ${(err as Error).message}` });
          return z.NEVER;
        }
      }),
    TRACKER_COUNTRY: z.enum(['on', 'off']).default('on'),
  })
  .refine((e) => e.HTTP_MAX_ROWS_PER_REQUEST * ROW_BYTES <= e.HTTP_BODY_MEMORY_BYTES / 2, {
    path: ['HTTP_MAX_ROWS_PER_REQUEST'],
    message: `a request's rows (${ROW_BYTES} bytes each) must fit in half of HTTP_BODY_MEMORY_BYTES; raise that too`,
  });

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly http: {
    /** A request must arrive whole within this; slower clients get 408. */
    readonly requestTimeoutMs: number;
    readonly maxConnections: number;
    /** Memory that request bodies being read, parsed and written may hold at once (8 × the bytes received, or by rows). */
    readonly bodyMemoryBytes: number;
    /** A request body must arrive within this after the headers (shorter than requestTimeoutMs): 408. */
    readonly bodyTimeoutMs: number;
    /** Rows (events, page and time pairs) one request body may become: 413 beyond. */
    readonly maxRowsPerRequest: number;
  };
  /** Unset: the service manages a local PostgreSQL cluster in `localPg.dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly databasePoolMax: number;
  /** At start, how long to keep retrying a database that refuses connections (0: try once). */
  readonly databaseConnectTimeoutMs: number;
  /** HTTP processes (Node's cluster module); 1 serves in the main process. */
  readonly workers: number;
  readonly storageMode: StorageModeSetting;
  /** The site the seed APIs write and read. */
  readonly defaultSite: string;
  /** Access-Control-Allow-Origin of POST /v1/events (browser beacons). */
  readonly corsAllowOrigin: string;
  /** The dashboard at GET / (reading /v1/stats). */
  readonly dashboard: boolean;
  /** How long day sketches are kept (raw events, minutes and hours: 60 days). */
  readonly sketchRetentionDays: number;
  /** keys: /v1 needs API keys; none: anyone who reaches the port may use /v1 (loopback only). */
  readonly v1Auth: 'keys' | 'none';
  /** Serve the seed APIs (they need no key and use defaultSite). */
  readonly seedApis: boolean;
  /** Token buckets per key: requests per second and burst, per kind of route. */
  readonly rateLimits: {
    readonly ingest: { readonly ratePerSecond: number; readonly burst: number };
    readonly read: { readonly ratePerSecond: number; readonly burst: number };
  };
  readonly migrateOnStart: boolean;
  readonly localPg: {
    readonly dataDir: string;
    readonly port: number;
    readonly binDir: string | undefined;
    /** 0: one local PostgreSQL; N: a local Citus cluster of a coordinator and N workers. */
    readonly citusWorkers: number;
  };
  readonly ingest: {
    readonly maxBatchRows: number;
    readonly maxQueueRows: number;
    readonly maxQueueBytes: number;
    readonly flushDelayMs: number;
    readonly maxInflightFlushes: number;
    readonly parallelFlushMinRows: number;
    readonly retryAfterSeconds: number;
    /** How long a flush waits for the database before its requests get 503. */
    readonly deadlineMs: number;
  };
  /** How long a request waits for the database before it is answered 503. */
  readonly databaseTimeoutMs: number;
  readonly refreshIntervalMs: number;
  readonly rollupIntervalMs: number;
  /** How often at most the roller folds the per-insert parts (also between the batches of a pass)… */
  readonly foldIntervalMs: number;
  /** …once the writer stored this many writes since the last fold (fewer: every rollupIntervalMs). */
  readonly foldMinWrites: number;
  /** The roller rolls the queue up once it holds this many events… */
  readonly rollupMinRows: number;
  /** …or this long after its last pass. */
  readonly rollupMaxWaitMs: number;
  readonly partitionMaintenanceIntervalMs: number;
  readonly shutdownTimeoutMs: number;
  /** Bounds on /v1/stats and /v1/export (per process: each worker has its own). */
  readonly reads: ReadLimits;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** An access log line per request. */
  readonly logRequests: boolean;
  /** Per client address: key lookups that may fail, per second and burst (then 429). */
  readonly authFailures: { readonly ratePerSecond: number; readonly burst: number };
  /** Where GET /metrics is served (undefined: the service's own listener) and its bearer token. */
  readonly metrics: {
    readonly listen: { readonly host: string; readonly port: number } | undefined;
    readonly token: string | undefined;
  };
  /** The tracker: GET /script.js also at scriptPath; proxies whose X-Forwarded-For is believed; the country lookup. */
  readonly tracker: TrackerSettings;
}

export interface ReadLimits {
  readonly stats: {
    /** Stats queries running at once, and per key (beyond: a wait of up to a stats query's deadline, then 503 or 429). */
    readonly maxConcurrent: number;
    readonly maxConcurrentPerKey: number;
    /** Buckets × groups one request may ask for (beyond: 400 saying what to ask instead). */
    readonly maxRows: number;
    /** A request for more rows is heavy: half of maxConcurrent heavy ones run at once, one per key. */
    readonly heavyRows: number;
    /** STATS_MAX_RAW_ROWS */
    readonly maxRawRows: number;
  };
  readonly export: {
    readonly maxConcurrent: number;
    readonly maxConcurrentPerKey: number;
    /** An export whose client reads less than this over a window of slowWindowMs is ended (0: never). */
    readonly minBytesPerSecond: number;
    readonly slowWindowMs: number;
    /** An export still running after this is ended. */
    readonly maxDurationMs: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads `.env` of the working directory into process.env, if there is one; the environment wins. */
export function loadDotEnv(file = '.env'): void {
  if (!existsSync(file)) return;
  // Every name in .env is meant for headcount or its compose file: any other is a mistake.
  const unknown = Object.keys(parseEnv(readFileSync(file, 'utf8'))).filter(
    (name) => !SETTINGS.includes(name) && !COMPOSE_VARIABLES.includes(name),
  );
  if (unknown.length > 0) {
    const problems = unknown.map((name) => `${name}: not a setting (the nearest is ${nearestSetting(name).setting})`);
    throw new ConfigError(`invalid configuration in ${file}\n  ${problems.join('\n  ')}`);
  }
  process.loadEnvFile(file);
}

/** The names of every setting, as in `.env.example`. */
export const SETTINGS: readonly string[] = Object.keys(EnvSchema.shape);

/** What docker-compose.yml reads from the same `.env` besides settings (docs/operations.md, "Docker Compose"). */
export const COMPOSE_VARIABLES: readonly string[] = ['POSTGRES_PASSWORD', 'DB_MEMORY', 'DB_CPUS', 'HEADCOUNT_PUBLISH'];

/**
 * Variables of the environment that look like a mistyped setting (`DASHBORD`, `port`),
 * one message each naming the setting: the service logs them at start. Short names must
 * be nearer, so that HOME, PATH and the like are not taken for HOST or PORT.
 */
export function misspelledSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(env)
    .filter((name) => !SETTINGS.includes(name))
    .flatMap((name) => {
      // Two edits at most, so only settings within two characters of its length: the
      // environment of a shell or npm holds a hundred variables or more, and comparing
      // each with every setting took ~100 ms of every start.
      const near = SETTINGS.filter((setting) => Math.abs(setting.length - name.length) <= 2);
      const { setting, distance } = nearestSetting(name, near);
      return setting !== undefined && distance <= (setting.length < 8 ? 1 : 2)
        ? [`${name} is not a setting: did you mean ${setting}?`]
        : [];
    });
}

function nearestSetting(name: string, settings: readonly string[] = SETTINGS): { setting: string | undefined; distance: number } {
  let best: { setting: string | undefined; distance: number } = { setting: undefined, distance: Infinity };
  for (const setting of settings) {
    const distance = editDistance(name.toUpperCase(), setting);
    if (distance < best.distance) best = { setting, distance };
  }
  return best;
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  // Row i holds the distances between the first i characters of a and the first j of b,
  // for every j; a swap looks two rows back, so three rows are kept.
  let before = new Int32Array(b.length + 1);
  let above = Int32Array.from({ length: b.length + 1 }, (_, j) => j);
  let row = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, before[j - 2]! + 1);
    }
    [before, above, row] = [above, row, before];
  }
  return above[b.length]!;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  // Stats and exports hold a pooled connection each while they run: leave at least one to
  // key lookups, rate limits and the seed reads (the writer has a pool of its own).
  if (e.STATS_MAX_CONCURRENT + e.EXPORT_MAX_CONCURRENT >= e.DATABASE_POOL_MAX) {
    throw new ConfigError(
      `invalid configuration\n  STATS_MAX_CONCURRENT (${e.STATS_MAX_CONCURRENT}) + EXPORT_MAX_CONCURRENT (${e.EXPORT_MAX_CONCURRENT}) must be less than DATABASE_POOL_MAX (${e.DATABASE_POOL_MAX})`,
    );
  }
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    http: Object.freeze({
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      bodyMemoryBytes: e.HTTP_BODY_MEMORY_BYTES,
      bodyTimeoutMs: e.HTTP_BODY_TIMEOUT_MS,
      maxRowsPerRequest: e.HTTP_MAX_ROWS_PER_REQUEST,
    }),
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    workers: e.WORKERS,
    storageMode: e.STORAGE_MODE,
    defaultSite: e.DEFAULT_SITE,
    corsAllowOrigin: e.CORS_ALLOW_ORIGIN,
    dashboard: e.DASHBOARD,
    sketchRetentionDays: e.SKETCH_RETENTION_DAYS,
    v1Auth: e.V1_AUTH,
    seedApis: e.SEED_APIS,
    rateLimits: Object.freeze({
      ingest: Object.freeze({ ratePerSecond: e.RATE_LIMIT_INGEST_PER_SECOND, burst: e.RATE_LIMIT_INGEST_BURST }),
      read: Object.freeze({ ratePerSecond: e.RATE_LIMIT_READ_PER_SECOND, burst: e.RATE_LIMIT_READ_BURST }),
    }),
    migrateOnStart: e.MIGRATE_ON_START,
    localPg: Object.freeze({
      dataDir: path.resolve(e.LOCAL_PG_DATA_DIR),
      port: e.LOCAL_PG_PORT,
      binDir: e.LOCAL_PG_BIN_DIR,
      citusWorkers: e.LOCAL_CITUS_WORKERS,
    }),
    ingest: Object.freeze({
      maxBatchRows: e.INGEST_MAX_BATCH_ROWS,
      maxQueueRows: e.INGEST_MAX_QUEUE_ROWS,
      maxQueueBytes: e.INGEST_MAX_QUEUE_BYTES,
      flushDelayMs: e.INGEST_FLUSH_DELAY_MS,
      maxInflightFlushes: e.INGEST_MAX_INFLIGHT_FLUSHES,
      parallelFlushMinRows: e.INGEST_PARALLEL_FLUSH_MIN_ROWS,
      retryAfterSeconds: e.INGEST_RETRY_AFTER_SECONDS,
      deadlineMs: e.DATABASE_TIMEOUT_MS,
    }),
    databaseTimeoutMs: e.DATABASE_TIMEOUT_MS,
    refreshIntervalMs: e.REFRESH_INTERVAL_MS,
    rollupIntervalMs: e.ROLLUP_INTERVAL_MS,
    foldIntervalMs: e.FOLD_INTERVAL_MS,
    foldMinWrites: e.FOLD_MIN_WRITES,
    rollupMinRows: e.ROLLUP_MIN_ROWS,
    rollupMaxWaitMs: e.ROLLUP_MAX_WAIT_MS,
    partitionMaintenanceIntervalMs: e.PARTITION_MAINTENANCE_INTERVAL_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    reads: Object.freeze({
      stats: Object.freeze({
        maxConcurrent: e.STATS_MAX_CONCURRENT,
        maxConcurrentPerKey: e.STATS_MAX_CONCURRENT_PER_KEY,
        maxRows: e.STATS_MAX_ROWS,
        heavyRows: e.STATS_HEAVY_ROWS,
        maxRawRows: e.STATS_MAX_RAW_ROWS,
      }),
      export: Object.freeze({
        maxConcurrent: e.EXPORT_MAX_CONCURRENT,
        maxConcurrentPerKey: e.EXPORT_MAX_CONCURRENT_PER_KEY,
        minBytesPerSecond: e.EXPORT_MIN_BYTES_PER_SECOND,
        slowWindowMs: e.EXPORT_SLOW_WINDOW_MS,
        maxDurationMs: e.EXPORT_MAX_DURATION_MS,
      }),
    }),
    logLevel: e.LOG_LEVEL,
    logRequests: e.LOG_REQUESTS,
    authFailures: Object.freeze({ ratePerSecond: e.AUTH_FAILURES_PER_SECOND, burst: e.AUTH_FAILURES_BURST }),
    metrics: Object.freeze({ listen: e.METRICS_LISTEN && Object.freeze(e.METRICS_LISTEN), token: e.METRICS_TOKEN }),
    tracker: Object.freeze({ scriptPath: e.TRACKER_SCRIPT_PATH, trustProxy: e.TRUST_PROXY, country: e.TRACKER_COUNTRY === 'on' }),
  });
}
