import type { Config } from '../config.js';
import { startManagedCluster } from '../db/local-cluster.js';
import type { Logger } from '../log.js';

/**
 * Runs `fn` with the URL of the configured database: DATABASE_URL, or the managed local
 * cluster (started for the command when the service is not running it, stopped after).
 */
export async function withDatabase<T>(config: Config, log: Logger, fn: (databaseUrl: string) => Promise<T>): Promise<T> {
  if (config.databaseUrl) return fn(config.databaseUrl);
  const cluster = await startManagedCluster(config.localPg, log);
  try {
    return await fn(cluster.url);
  } finally {
    await cluster.stop();
  }
}
