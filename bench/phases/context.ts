/**
 * What the phases of npm run bench share: the settings (from BENCH_* variables), the
 * progress log, and the stack under test (the run's database and the services on it).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Sql } from '../../src/db/client.js';
import type { LocalCluster } from '../../src/db/local-cluster.js';
import type { StorageMode } from '../../src/db/storage.js';
import type { Service } from '../service.js';
import { childPids } from '../system.js';

/** The run's settings: each a BENCH_* variable, with a full and a BENCH_QUICK=1 default. */
export function readSettings(env: NodeJS.ProcessEnv) {
  const quick = env.BENCH_QUICK === '1';
  const num = (name: string, full: number, short: number): number => Number(env[name] ?? (quick ? short : full));
  // The order of the keys is the order the run prints them and stores them in its results.
  return {
    quick,
    // Which phases run: "all" (default), "core" (without the dimension phases),
    // "dimensions" (the volume, then only the dimension phases: issue 19's targets) or
    // "cost" (only what a write costs and the batch ingest: issue 22's loop), or "citus"
    // (the service on a local Citus cluster beside one PostgreSQL: bench/phases/citus.ts).
    phases: (env.BENCH_PHASES ?? 'all') as 'all' | 'core' | 'cost' | 'dimensions' | 'citus',
    durationS: num('BENCH_DURATION_S', 10, 4),
    runs: num('BENCH_RUNS', 3, 2),
    warmupS: num('BENCH_WARMUP_S', 5, 2),
    connections: (env.BENCH_CONNECTIONS ?? '64').split(',').map(Number),
    wrkThreads: num('BENCH_WRK_THREADS', 1, 1),
    currentHourEvents: num('BENCH_CURRENT_HOUR_EVENTS', 1_000_000, 100_000),
    ingestRate: num('BENCH_INGEST_RATE', 5000, 5000),
    queryDurationS: num('BENCH_QUERY_DURATION_S', 5, 2),
    volumeDays: num('BENCH_VOLUME_DAYS', 60, 3),
    volumeEventsPerDay: num('BENCH_VOLUME_EVENTS_PER_DAY', 1_000_000, 100_000),
    accuracyUsers: quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000],
    batchEvents: num('BENCH_BATCH_EVENTS', 1000, 1000),
    copyRows: num('BENCH_COPY_ROWS', 500_000, 100_000),
    batchConnections: num('BENCH_BATCH_CONNECTIONS', 4, 4),
    readAfterWriteS: num('BENCH_READ_AFTER_WRITE_S', 10, 4),
    // Events a headcount_roll_up call moves when the bench drains the queue (the service's roller: 20,000).
    rollBatchRows: num('BENCH_ROLL_BATCH_ROWS', 20_000, 20_000),
    keep: env.BENCH_KEEP === '1',
  };
}
export type Settings = ReturnType<typeof readSettings>;

/** Numbered steps with the seconds since the run began, and indented notes under them. */
export interface Progress {
  step: (what: string) => void;
  note: (what: string) => void;
}

export function progress(startedMs = Date.now()): Progress {
  let stepNo = 0;
  return {
    step: (what) => {
      stepNo++;
      console.log(`[${((Date.now() - startedMs) / 1000).toFixed(0).padStart(4)} s] ${stepNo}. ${what}`);
    },
    note: (what) => console.log(`         ${what}`),
  };
}

/** Peak resident memory of a process and its children (WORKERS > 1), sampled every 200 ms. */
export class RssSampler {
  peakKb = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 200);
  }
  private sample(): void {
    const pids = [this.pid, ...childPids(this.pid)];
    let kb = 0;
    for (const p of pids) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        // the process is gone
      }
    }
    this.peakKb = Math.max(this.peakKb, kb);
  }
  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

/** The stack every phase measures: set up by startStack, torn down by stopStack (bench/phases/stack.ts). */
export interface BenchContext {
  settings: Settings;
  progress: Progress;
  cluster: LocalCluster;
  /** The cluster's `postgres` database (to create and drop the run's own), and the run's own. */
  adminUrl: string;
  dbName: string;
  dbUrl: string;
  /** A pool of 4 on the run's database, for seeding and the SQL-only latencies. */
  sql: Sql;
  /** PostgreSQL's postmaster: the "store" in CPU accounting (undefined: not split out). */
  pgPid: number | undefined;
  /** headcount_settings.storage_mode: timescaledb or postgres. */
  storageMode: StorageMode;
  /** The service with WORKERS=1 (all phases), and with WORKERS=2 (stopped after the batch ingest). */
  service: Service;
  service2: Service;
  /** Peak RSS of `service`, over the whole run. */
  rss: RssSampler;
}

/** CPU count and model, memory, Node, kernel: the first line of the run and part of its results. */
export const describeMachine = (): string =>
  `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const randomId = (): string => Math.random().toString(36).slice(2, 12);
export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
