import type postgres from 'postgres';
import type { Config } from './config.js';
import { PreparedCommitRecovery } from './db/citus-commits.js';
import { SitePlacement } from './db/citus-placement.js';
import { citusWriterSettings } from './db/citus-sessions.js';
import { createSql, type Sql } from './db/client.js';
import { PartitionMaintainer } from './db/partitions.js';
import { AggregateRefresher } from './db/refresher.js';
import { DimensionRoller } from './db/roller.js';
import { readStorageMode, type StorageMode } from './db/storage.js';
import { GroupCommitWriter, insertEvents } from './ingest/writer.js';
import type { Logger } from './log.js';
import type { JobStatus } from './db/job-health.js';
import { Metrics } from './ops/metrics.js';
import { Readiness } from './ops/probes.js';

/**
 * The moving parts behind the HTTP app, wired for the database's storage mode: the
 * group-commit writer, and either the aggregate refresher (timescaledb) or the
 * partition maintainer (postgres, citus).
 */
export interface Runtime {
  mode: StorageMode;
  writer: GroupCommitWriter;
  /** timescaledb mode only. */
  refresher: AggregateRefresher | undefined;
  /** postgres and citus modes. */
  partitions: PartitionMaintainer | undefined;
  /** Moves queued events into the dimension rollups (citus mode too: site by site, sql/citus/headcount_roll_up_batch.sql). */
  roller: DimensionRoller;
  /** The background jobs' health, for /health and /readyz. */
  jobs: () => JobStatus[];
  /** What the writer and the background jobs report, for /metrics and /readyz. */
  metrics: Metrics;
  readiness: Readiness;
  /** Flushes what is queued and stops the background work; the pool stays open. */
  stop(): Promise<void>;
}

export type RuntimeConfig = Pick<
  Config,
  | 'ingest'
  | 'refreshIntervalMs'
  | 'rollupIntervalMs'
  | 'foldIntervalMs'
  | 'foldMinWrites'
  | 'rollupMinRows'
  | 'rollupMaxWaitMs'
  | 'partitionMaintenanceIntervalMs'
  | 'sketchRetentionDays'
>;

/**
 * `databaseUrl` opens the writer's own pool (INGEST_MAX_INFLIGHT_FLUSHES connections) and
 * the refresher's own connection: its lock is a session lock, and its passes must not
 * wait behind the pool.
 */
export async function startRuntime(
  sql: Sql,
  databaseUrl: string,
  config: RuntimeConfig,
  log: Logger,
  metrics: Metrics = new Metrics(),
): Promise<Runtime> {
  const mode = await readStorageMode(sql);
  await applySketchRetention(sql, mode, config.sketchRetentionDays);
  const refresher =
    mode === 'timescaledb'
      ? new AggregateRefresher(
          // keepSessions: a pass holds a session lock across its statements, and the pool
          // would otherwise end its connection at its lifetime (30-60 minutes) whenever it
          // is idle, between two statements of a pass too, and the lock with it.
          () => createSql(databaseUrl, { max: 1, applicationName: 'headcount-refresher', keepSessions: true }),
          config.refreshIntervalMs,
          log,
          (pass) => metrics.refreshed(pass),
        )
      : undefined;
  if (refresher) metrics.watchRefresher();
  const partitions =
    mode === 'postgres' || mode === 'citus'
      ? new PartitionMaintainer(sql, config.partitionMaintenanceIntervalMs, log, (run) => metrics.partitionsMaintained(run))
      : undefined;
  // The writer's own connections: reads, however many or slow, never take the ones it
  // needs. The server ends an insert that runs past 1.8 deadlines (a statement of this
  // pool answers at most one row: see db/deadline.ts), before the writer stops waiting
  // for its outcome at two: the writer learns whether it committed, and a 503 still
  // means "not stored".
  const writerSettings = mode === 'citus' ? await citusWriterSettings(sql) : undefined;
  const ingestPool = (max: number, onNotice?: (notice: postgres.Notice) => void) =>
    createSql(databaseUrl, {
      max,
      applicationName: 'headcount-ingest',
      deadlineMs: config.ingest.deadlineMs,
      statementTimeoutMs: Math.round(1.8 * config.ingest.deadlineMs),
      onNotice,
      settings: writerSettings,
    });
  // citus mode: no trigger on events; the insert calls headcount_events_inserted itself,
  // and a write a worker missed the commit of is answered once that commit is recovered:
  // the writer's connections are the recovery's, a pool of one each, so that a warning is
  // the write's on its connection only (db/citus-commits.ts).
  const recovery =
    mode === 'citus'
      ? new PreparedCommitRecovery(
          databaseUrl,
          (onNotice) => ingestPool(1, onNotice),
          config.ingest.maxInflightFlushes,
          config.ingest.deadlineMs,
          log,
        )
      : undefined;
  const ingestSql = recovery ? undefined : ingestPool(config.ingest.maxInflightFlushes);
  // citus mode: a flush takes the requests of one worker's sites (db/citus-placement.ts).
  const placement = mode === 'citus' ? new SitePlacement(sql, log) : undefined;
  placement?.start();
  const writer = new GroupCommitWriter(
    ingestSql,
    config.ingest,
    log,
    metrics.flushed,
    recovery && ((rows) => recovery.write(rows, (slot) => insertEvents(slot, rows, { callInserted: true }))),
    placement?.groupOf,
  );
  metrics.watchWriter(writer);
  // Its own connection: a pass must not wait behind reads for a pool connection.
  // citus mode: a roll over sites of several workers commits in two phases too; one a
  // worker missed the commit of is recovered at once (reads still count right meanwhile:
  // a site's move is on its worker, whole or not at all), so that the next roll of those
  // sites does not wait for its locks.
  const rollerSql = createSql(databaseUrl, {
    max: 1,
    applicationName: 'headcount-roller',
    onNotice: mode === 'citus' ? (notice) => recovery?.noticeInBackground(notice) : undefined,
    settings: writerSettings,
  });
  const roller = new DimensionRoller(
    rollerSql,
    {
      intervalMs: config.rollupIntervalMs,
      minRows: config.rollupMinRows,
      maxWaitMs: config.rollupMaxWaitMs,
      foldIntervalMs: config.foldIntervalMs,
      foldMinWrites: config.foldMinWrites,
      written: () => writer.stats.batches,
    },
    log,
    metrics.rolled,
  );
  const jobs = (): JobStatus[] =>
    [refresher?.health.status(), partitions?.health.status(), roller.health.status()].filter((s) => s !== undefined);
  refresher?.start();
  roller.start();
  await partitions?.start();
  return {
    mode,
    writer,
    refresher,
    partitions,
    roller,
    jobs,
    metrics,
    readiness: new Readiness(jobs),
    async stop() {
      await writer.close();
      placement?.stop();
      // Everything queued is flushed: nothing left on these connections is needed.
      await ingestSql?.end({ timeout: 1 });
      await recovery?.close();
      partitions?.stop();
      await refresher?.stop();
      // A pass still waiting for a database that is down is abandoned: its queries fail.
      await refresher?.end();
      await roller.stop();
      await rollerSql.end({ timeout: 1 });
    },
  };
}

/**
 * Day sketches are kept SKETCH_RETENTION_DAYS: recorded in headcount_settings (postgres
 * mode's maintenance reads it) and, in timescaledb mode, set on the retention policies of
 * the day-level continuous aggregates.
 */
async function applySketchRetention(sql: Sql, mode: StorageMode, days: number): Promise<void> {
  const keep = `${days} days`;
  // make_interval, not a text cast: Citus refuses a stable function (interval_in) in an
  // UPDATE of its reference table.
  await sql`
    update headcount_settings set sketch_retention = make_interval(days => ${days}::int) /* runtime */
    where sketch_retention <> make_interval(days => ${days}::int)
  `;
  if (mode !== 'timescaledb') return;
  await sql`
    select alter_job(j.job_id, config => jsonb_set(j.config, '{drop_after}', to_jsonb(${keep}::text))) /* runtime */
    from timescaledb_information.jobs j
    where j.proc_name = 'policy_retention'
      and j.hypertable_name in ('events_daily_cagg', 'totals_daily_cagg')
      and j.config->>'drop_after' is distinct from ${keep}
  `;
}
