/** A fresh, migrated database on a bench cluster, for the bench scripts that need one of their own. */
import { createSql } from '../src/db/client.js';
import { prepareDatabase, startLocalCluster } from '../src/db/local-cluster.js';
import { migrate } from '../src/db/migrate.js';
import type { Logger } from '../src/log.js';

export interface BenchDatabase {
  url: string;
  /** The same database as the cluster's superuser (for extensions only a superuser may create). */
  adminUrl: string;
  /** Drops the database (unless reused) and stops the cluster. */
  close(): Promise<void>;
}

/**
 * Starts the cluster `cluster` describes (default: the bench's, `.data/bench-postgres` on
 * BENCH_PG_PORT), creates database `name` anew and migrates it in STORAGE_MODE (auto).
 * `reuse`: database `name` is used as it is (a database a run kept), and kept.
 */
export async function benchDatabase(
  name: string,
  log: Logger,
  cluster: Omit<Parameters<typeof startLocalCluster>[0], 'log'>,
  opts: { reuse?: boolean } = {},
): Promise<BenchDatabase> {
  const started = await startLocalCluster({ ...cluster, log });
  const admin = createSql(started.adminUrl, { max: 1 });
  const url = started.urlOf(name);
  if (!opts.reuse) {
    await admin`drop database if exists ${admin(name)} with (force)`;
    // Owned by the service's role (no superuser), the extensions made by the superuser.
    await prepareDatabase(started.adminUrl, name, { timescaledb: started.timescaledb });
    await migrate({ databaseUrl: url, storageMode: (process.env.STORAGE_MODE as 'auto' | undefined) ?? 'auto', log });
  }
  const adminUrl = new URL(started.adminUrl);
  adminUrl.pathname = `/${name}`;
  return {
    url,
    adminUrl: adminUrl.toString(),
    async close() {
      if (!opts.reuse) await admin`drop database if exists ${admin(name)} with (force)`;
      await admin.end();
      await started.stop();
    },
  };
}
