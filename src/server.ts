import cluster from 'node:cluster';
import type { Server, ServerResponse } from 'node:http';
import { createService } from './app.js';
import { bodyLimits } from './http/body.js';
import { createGuardedServer } from './http/server-guards.js';
import { type Config, ConfigError, loadConfig, loadDotEnv, misspelledSettings } from './config.js';
import { DASHBOARD_DIR } from './dashboard/routes.js';
import { createSql, lostDatabaseConnection } from './db/client.js';
import { waitForDatabase } from './db/connect.js';
import { type LocalCluster, startManagedCluster } from './db/local-cluster.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './log.js';
import { startMetricsServer } from './ops/metrics-access.js';
import { Metrics, serveClusterMetrics } from './ops/metrics.js';
import { startRuntime } from './runtime.js';

/** How the primary hands the database URL (maybe of its managed cluster) to its workers. */
const WORKER_DATABASE_URL = 'HEADCOUNT_WORKER_DATABASE_URL';

/**
 * Entry point: config -> database (managed local cluster when DATABASE_URL is unset)
 * -> migrations -> HTTP, in this process or in WORKERS processes sharing the port.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    loadDotEnv();
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`headcount: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, cluster.isWorker ? { worker: cluster.worker?.id } : {});
  if (cluster.isWorker) return serve(config, process.env[WORKER_DATABASE_URL]!, log, onStopped(log));
  // Once, by the primary: its workers inherit the same environment.
  for (const warning of misspelledSettings()) log.warn(warning);
  if (!config.metrics.listen && !config.metrics.token && !/^(127\.|::1$|localhost$)/.test(config.host)) {
    log.warn(
      { host: config.host },
      'GET /metrics is open to whoever reaches this address: set METRICS_LISTEN=127.0.0.1:9464 or METRICS_TOKEN',
    );
  }

  let local: LocalCluster | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    local = await startManagedCluster(config.localPg, log);
    databaseUrl = local.url;
  } else await waitForDatabase(databaseUrl, config.databaseConnectTimeoutMs, log);
  if (config.migrateOnStart)
    await migrate({ databaseUrl, storageMode: config.storageMode, defaultSite: config.defaultSite, log });
  const description = local ? `local cluster in ${local.dataDir} (port ${local.port})` : 'DATABASE_URL';
  const stopDatabase = async (): Promise<void> => {
    await local?.stop();
    log.info('stopped');
  };
  if (config.workers === 1) return serve(config, databaseUrl, log, stopDatabase, description);
  return supervise(config, databaseUrl, log, stopDatabase, description);
}

const onStopped = (log: Logger) => (): Promise<void> => {
  log.info('worker stopped');
  return Promise.resolve();
};

/** One HTTP server with its pool, writer and background jobs; stops gracefully on a signal. */
async function serve(
  config: Config,
  databaseUrl: string,
  log: Logger,
  afterStop: () => Promise<void>,
  description?: string,
): Promise<void> {
  const sql = createSql(databaseUrl, { max: config.databasePoolMax, deadlineMs: config.databaseTimeoutMs });
  const metrics = new Metrics({ processMetrics: true, worker: cluster.worker?.id });
  const runtime = await startRuntime(sql, databaseUrl, config, log, metrics);
  const service = createService({
    sql,
    writer: runtime.writer,
    site: config.defaultSite,
    retryAfterSeconds: config.ingest.retryAfterSeconds,
    jobs: runtime.jobs,
    bodies: bodyLimits(config.http.bodyMemoryBytes, {
      timeoutMs: config.http.bodyTimeoutMs,
      maxRows: config.http.maxRowsPerRequest,
      retryAfterSeconds: config.ingest.retryAfterSeconds,
    }),
    metrics,
    readiness: runtime.readiness,
    logRequests: config.logRequests,
    corsAllowOrigin: config.corsAllowOrigin,
    v1Auth: config.v1Auth,
    rateLimits: config.rateLimits,
    authFailures: config.authFailures,
    metricsExposure: config.metrics,
    reads: config.reads,
    seedApis: config.seedApis,
    dashboard: config.dashboard ? { dir: DASHBOARD_DIR } : false,
    tracker: config.tracker,
    log,
  });
  // WORKERS > 1: the primary serves METRICS_LISTEN (supervise), with every worker's metrics.
  const metricsServer =
    config.metrics.listen && !cluster.isWorker
      ? await startMetricsServer(config.metrics.listen, config.metrics.token, () => metrics.scrape(), config.http, log)
      : undefined;
  const server = createGuardedServer(service.listener(), config.http);
  server.listen(config.port, config.host);
  // Longer than common load balancers' idle timeouts, so they close first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  if (description) {
    log.info({ url: listenUrl(config), storageMode: runtime.mode, database: description }, listening(config));
  }

  onSignals(log, async (signal) => {
    runtime.readiness.draining = true;
    log.info({ signal }, 'shutting down: no new connections; flushing queued events');
    const force = setTimeout(() => {
      log.warn('shutdown timeout: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    await Promise.all([closeServer(server), metricsServer && closeServer(metricsServer)]);
    await runtime.stop();
    log.info({ ...runtime.writer.stats }, 'ingest totals');
    await sql.end({ timeout: 5 });
    clearTimeout(force);
    await afterStop();
  });
}

/**
 * WORKERS > 1: the primary forks that many workers (Node's cluster module shares the
 * port among them), replaces one that dies, and on a signal lets them drain before it
 * stops the managed database.
 */
async function supervise(
  config: Config,
  databaseUrl: string,
  log: Logger,
  afterStop: () => Promise<void>,
  description: string,
): Promise<void> {
  let stopping = false;
  const scrape = serveClusterMetrics();
  const metricsServer = config.metrics.listen
    ? await startMetricsServer(config.metrics.listen, config.metrics.token, scrape, config.http, log)
    : undefined;
  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork({ [WORKER_DATABASE_URL]: databaseUrl });
      worker.once('listening', () => resolve());
      worker.once('exit', (code) => {
        if (stopping) return;
        log.error({ worker: worker.id, code }, 'worker exited; starting another');
        reject(new Error(`worker ${worker.id} exited with ${code} before listening`));
        setTimeout(() => void fork().catch((err: unknown) => log.error({ err }, 'restarting a worker failed')), 1000);
      });
    });
  await Promise.all(Array.from({ length: config.workers }, fork));
  log.info({ url: listenUrl(config), workers: config.workers, database: description }, listening(config));

  onSignals(log, async (signal) => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    log.info({ signal, workers: workers.length }, 'shutting down workers');
    if (metricsServer) await closeServer(metricsServer);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    await afterStop();
  });
}

function onSignals(log: Logger, stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}

const listenUrl = (config: Config): string =>
  `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;

/** The start-up line: where to send events, and where the dashboard is. */
const listening = (config: Config): string =>
  `headcount listening on ${listenUrl(config)}${config.dashboard ? `; dashboard: ${listenUrl(config)}/` : ''}`;

/**
 * Resolves when every connection has ended: no new connections; requests in flight
 * finish (their events are flushed) and their keep-alive connections then close.
 */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.on('request', (_req, res: ServerResponse) => res.setHeader('Connection', 'close'));
    const reaper = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(reaper);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * postgres.js (3.4) leaves some failures of a database connection where nothing handles
 * them, and each would take the whole service down with it; the connection is gone
 * either way and the pool opens another:
 *
 * - It writes to a socket it has already closed when a connection dies in the middle of
 *   a batch of writes (seen in the outage tests): a TypeError (over TCP) or an EPIPE
 *   error with no listener left on the socket (over a unix socket, once in a full suite
 *   run at a load of 18 on 2 cores), thrown from a setImmediate, outside any query.
 * - It rejects a promise nobody holds, its array-types query on a new connection, with
 *   the error of a connection lost before the answer: lostDatabaseConnection in
 *   src/db/client.ts (seen in the outage tests over a unix socket: in CI, and in 3 of 29
 *   runs on a loaded machine, "connect ENOENT" from the reconnect).
 *
 * Every other uncaught error or unhandled rejection still stops the process.
 */
process.on('uncaughtException', (err) => {
  const fromPostgresJs = /postgres\/src\/connection\.js/.test(err.stack ?? '');
  const code = (err as NodeJS.ErrnoException).code;
  const closedSocketWrite =
    fromPostgresJs &&
    ((err instanceof TypeError && /reading 'write'/.test(err.message)) || code === 'EPIPE' || code === 'ECONNRESET');
  if (closedSocketWrite) {
    createLogger('warn').warn({ err }, 'postgres.js wrote to a connection it had closed; the pool reconnects');
    return;
  }
  createLogger('info').fatal({ err }, 'uncaught error');
  process.exit(1);
});
process.on('unhandledRejection', (reason) => {
  if (lostDatabaseConnection(reason)) {
    createLogger('warn').warn({ err: reason }, 'postgres.js lost a connection while setting it up; the pool reconnects');
    return;
  }
  createLogger('info').fatal({ err: reason }, 'unhandled rejection');
  process.exit(1);
});

main().catch((err: unknown) => {
  createLogger('info').error({ err }, 'headcount failed to start');
  process.exit(1);
});
