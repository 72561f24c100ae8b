import type { Config } from './config.js';
import type { Sql } from './db/client.js';
import { PartitionMaintainer } from './db/partitions.js';
import { AggregateRefresher } from './db/refresher.js';
import { readStorageMode, type StorageMode } from './db/storage.js';
import { type EventRow, GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';
import { AnswerCache } from './stats/cache.js';

/**
 * The moving parts behind the HTTP app, wired for the database's storage mode: the
 * group-commit writer, the answer cache, and either the aggregate refresher (timescaledb) or the
 * partition maintainer (postgres).
 */
export interface Runtime {
  mode: StorageMode;
  writer: GroupCommitWriter;
  /** Answers of the read routes, dropped when the data under them changes. */
  cache: AnswerCache;
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
  const cache = new AnswerCache(config.refreshIntervalMs);
  const refresher =
    mode === 'timescaledb' ? new AggregateRefresher(sql, config.refreshIntervalMs, log, () => cache.invalidateAll()) : undefined;
  const partitions = mode === 'postgres' ? new PartitionMaintainer(sql, config.partitionMaintenanceIntervalMs, log) : undefined;
  // timescaledb mode: a commit changes no answer until the next refresh.
  const onCommitted = mode === 'postgres' ? (rows: EventRow[]) => cache.invalidateHours(rows.map((r) => r.timeMs)) : undefined;
  const writer = new GroupCommitWriter(sql, config.ingest, log, onCommitted);
  refresher?.start();
  await partitions?.start();
  return {
    mode,
    writer,
    cache,
    refresher,
    partitions,
    async stop() {
      await writer.close();
      partitions?.stop();
      await refresher?.stop();
    },
  };
}
