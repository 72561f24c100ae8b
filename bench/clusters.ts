/**
 * One PostgreSQL in postgres mode beside a local Citus cluster (a coordinator and two
 * workers) in citus mode, both on this machine in temporary folders, migrated, removed
 * by stop(): what npm run bench:citus-insert and BENCH_PHASES=citus compare.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  freePort,
  type LocalCitusCluster,
  type LocalCluster,
  startLocalCluster,
  startThrowawayCitusCluster,
} from '../src/db/local-cluster.js';
import { migrate } from '../src/db/migrate.js';
import type { Logger } from '../src/log.js';

export interface BenchClusters {
  /** One PostgreSQL, postgres mode (the trigger keeps the aggregates). */
  single: LocalCluster;
  /** A coordinator and two workers, 8 shards, citus mode. */
  citus: LocalCitusCluster;
  stop: () => Promise<void>;
}

export async function startBenchClusters(log: Logger): Promise<BenchClusters> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'hc-bench-single-'));
  await fs.chmod(parent, 0o755);
  const started: LocalCluster[] = [];
  const stop = async (): Promise<void> => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    await fs.rm(parent, { recursive: true, force: true });
  };
  try {
    const single = await startLocalCluster({
      dataDir: path.join(parent, 'single'),
      port: await freePort(),
      log,
      throwaway: true,
    });
    started.push(single);
    const citus = await startThrowawayCitusCluster({ prefix: 'hc-bench-citus-', workers: 2, log });
    started.push(citus);
    await migrate({ databaseUrl: single.url, storageMode: 'postgres', log });
    await migrate({ databaseUrl: citus.url, storageMode: 'citus', log });
    return { single, citus, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
