import type { Config } from './config.js';
import type { Sql } from './db/client.js';
import { PartitionMaintainer } from './db/partitions.js';
import { AggregateRefresher } from './db/refresher.js';
import { readStorageMode, type StorageMode } from './db/storage.js';
import { GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';

/**
 * The moving parts behind the HTTP app, wired for the database's storage mode: the
 * group-commit writer, and either the back-dated-bucket refresher (timescaledb) or the
 * partition maintainer (postgres).
 */
export interface Runtime {
  mode: StorageMode;
  writer: GroupCommitWriter;
  /** timescaledb mode only. */
  refresher: AggregateRefresher | undefined;
  /** postgres mode only. */
  partitions: PartitionMaintainer | undefined;
  /** Flushes what is queued and stops the timers; the pool stays open. */
  stop(): Promise<void>;
}

export type RuntimeConfig = Pick<Config, 'ingest' | 'refreshIntervalMs' | 'partitionMaintenanceIntervalMs'>;

export async function startRuntime(sql: Sql, config: RuntimeConfig, log: Logger): Promise<Runtime> {
  const mode = await readStorageMode(sql);
  const refresher = mode === 'timescaledb' ? new AggregateRefresher(sql, config.refreshIntervalMs, log) : undefined;
  const partitions = mode === 'postgres' ? new PartitionMaintainer(sql, config.partitionMaintenanceIntervalMs, log) : undefined;
  const writer = new GroupCommitWriter(sql, config.ingest, log);
  refresher?.start();
  await partitions?.start();
  return {
    mode,
    writer,
    refresher,
    partitions,
    async stop() {
      await writer.close();
      partitions?.stop();
      await refresher?.stop();
    },
  };
}
