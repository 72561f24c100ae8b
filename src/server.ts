import type { Server, ServerResponse } from 'node:http';
import { createApp } from './app.js';
import { type Config, ConfigError, loadConfig, loadDotEnv } from './config.js';
import { createSql } from './db/client.js';
import { type LocalCluster, startLocalCluster } from './db/local-cluster.js';
import { migrate } from './db/migrate.js';
import { createLogger, type Logger } from './log.js';
import { startRuntime } from './runtime.js';

/** Entry point: config -> database -> migrations -> runtime -> app -> listen. */
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
  const log = createLogger(config.logLevel);

  let cluster: LocalCluster | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    cluster = await startLocalCluster({
      dataDir: config.localPg.dataDir,
      port: config.localPg.port,
      binDir: config.localPg.binDir,
      log,
    });
    databaseUrl = cluster.url;
  }
  if (config.migrateOnStart) await migrate({ databaseUrl, storageMode: config.storageMode, log });

  const sql = createSql(databaseUrl, { max: config.databasePoolMax });
  const runtime = await startRuntime(sql, config, log);
  const app = createApp({ sql, writer: runtime.writer, log });
  const server = app.listen(config.port, config.host);
  // Longer than common load balancers' idle timeouts, so they close first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  log.info('headcount listening', {
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`,
    storageMode: runtime.mode,
    database: cluster ? `local cluster in ${cluster.dataDir} (port ${cluster.port})` : 'DATABASE_URL',
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down: no new connections; flushing queued events', { signal });
    const force = setTimeout(() => {
      log.warn('shutdown timeout: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    await closeServer(server);
    await runtime.stop();
    await sql.end({ timeout: 5 });
    await cluster?.stop();
    clearTimeout(force);
    log.info('stopped');
  };
  const onSignal = (signal: string): void => {
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

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

main().catch((err: unknown) => {
  const log: Logger = createLogger('info');
  log.error('headcount failed to start', { err });
  process.exit(1);
});
