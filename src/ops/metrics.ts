import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import type Koa from 'koa';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RefreshPass } from '../db/refresher.js';
import type { RollPass } from '../db/roller.js';
import type { PartitionRun } from '../db/partitions.js';
import type { FlushOutcome, GroupCommitWriter } from '../ingest/writer.js';

/** Seconds; requests and flushes take from tens of microseconds to (during trouble) seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What each metric of headcount's own counts (its HELP line). */
const HELP = {
  headcount_http_request_duration_seconds:
    'HTTP requests by method, route (the router pattern; "unmatched" when none) and status',
  headcount_requests_rejected_total:
    'Requests refused: queue_full, database_unavailable, shutting_down, unavailable (503); invalid (4xx)',
  headcount_ingest_queue_rows: 'Event rows waiting for a flush (the queue refuses beyond INGEST_MAX_QUEUE_ROWS)',
  headcount_ingest_flush_duration_seconds: 'Group-commit flushes, from the insert to its commit, by outcome (ok | failed)',
  headcount_ingest_batch_rows: 'Event rows per committed flush',
  headcount_ingest_events_acknowledged_total:
    'Event rows committed, then acknowledged (a page-view row may stand for several views: its weight)',
  headcount_ingest_events_failed_total: 'Event rows of flushes that failed (their requests were answered 503 or 422)',
  headcount_refresh_duration_seconds:
    'Continuous-aggregate refresh passes (timescaledb mode) by outcome: ok | failed | locked (another instance refreshes)',
  headcount_refresh_lag_seconds:
    'Seconds since the last refresh pass this process completed (since start if none); across workers the least',
  headcount_rollup_duration_seconds:
    'Dimension roller passes (move queued events into the dimension rollups) by outcome: ok | failed',
  headcount_rollup_events_total: 'Queued events the dimension roller moved into the rollups',
  headcount_partition_maintenance_runs_total:
    'Day-partition maintenance runs (postgres mode) by outcome: ok | failed | locked (another instance maintains)',
  headcount_partition_maintenance_failures_total: 'Day-partition maintenance runs that failed (postgres mode)',
  headcount_key_lookups_total:
    'Database lookups of /v1 keys this process had not read within the last second, by outcome: found | unknown',
  headcount_bots_dropped_total:
    'Events of POST /v1/events sent without a user (the tracker) whose user agent is a bot or crawler (isbot): dropped, not stored',
  headcount_info: 'One series per process serving HTTP: its Node.js version and worker id (0: no cluster)',
} as const;
type MetricName = keyof typeof HELP;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const REJECTION_REASONS = ['queue_full', 'database_unavailable', 'shutting_down', 'unavailable', 'invalid'] as const;
/** Why a request was refused (headcount_requests_rejected_total's `reason`). */
export type RejectionReason = (typeof REJECTION_REASONS)[number];
const JOB_OUTCOMES = ['ok', 'failed', 'locked'] as const;

/**
 * The Prometheus registry of one process and every metric headcount keeps. Ingest and
 * database code know nothing of it: they report through callbacks (the writer's
 * onFlushed, the refresher's onPass, the partition maintainer's onRun) that
 * src/runtime.ts connects to the methods below.
 *
 * WORKERS > 1: each worker keeps its own registry; a worker asked for /metrics asks
 * the primary (over the cluster IPC channel), whose AggregatorRegistry collects every
 * worker's registry and merges them (sums, except where an `aggregator` says otherwise),
 * so one scrape answers for the whole service whichever worker took the connection.
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly httpDuration = this.seconds('headcount_http_request_duration_seconds', ['method', 'route', 'status']);
  private readonly rejected = this.counter('headcount_requests_rejected_total', ['reason']);
  private readonly flushDuration = this.seconds('headcount_ingest_flush_duration_seconds', ['outcome']);
  private readonly batchRows = new Histogram({
    name: 'headcount_ingest_batch_rows',
    help: HELP.headcount_ingest_batch_rows,
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
    registers: [this.registry],
  });
  private readonly acknowledged = this.counter('headcount_ingest_events_acknowledged_total');
  private readonly failedRows = this.counter('headcount_ingest_events_failed_total');
  private readonly refreshDuration = this.seconds('headcount_refresh_duration_seconds', ['outcome']);
  private readonly rollupDuration = this.seconds('headcount_rollup_duration_seconds', ['outcome']);
  private readonly rolledUp = this.counter('headcount_rollup_events_total');
  private readonly partitionRuns = this.counter('headcount_partition_maintenance_runs_total', ['outcome']);
  private readonly partitionFailures = this.counter('headcount_partition_maintenance_failures_total');
  private readonly keyLookups = this.counter('headcount_key_lookups_total', ['outcome']);
  private readonly bots = this.counter('headcount_bots_dropped_total');

  private lastRefreshOkMs: number | undefined;
  private readonly startedMs = Date.now();

  constructor(opts: { processMetrics?: boolean; worker?: number } = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    // Every series from the start, at 0: rate() and alerts see the first refusal or failure.
    for (const reason of REJECTION_REASONS) this.rejected.inc({ reason }, 0);
    for (const outcome of JOB_OUTCOMES) this.partitionRuns.inc({ outcome }, 0);
    for (const outcome of ['found', 'unknown']) this.keyLookups.inc({ outcome }, 0);
    new Gauge({
      name: 'headcount_info',
      help: HELP.headcount_info,
      labelNames: ['node', 'worker'] as const,
      registers: [this.registry],
    }).set({ node: process.version, worker: String(opts.worker ?? 0) }, 1);
    if (cluster.isWorker) {
      // Constructing one makes this worker answer the primary's requests for metrics.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([this.registry]);
    }
  }

  private seconds<L extends string>(name: MetricName, labelNames: readonly L[]): Histogram<L> {
    return new Histogram<L>({ name, help: HELP[name], labelNames, buckets: LATENCY_BUCKETS, registers: [this.registry] });
  }

  private counter<L extends string = never>(name: MetricName, labelNames: readonly L[] = []): Counter<L> {
    return new Counter<L>({ name, help: HELP[name], labelNames, registers: [this.registry] });
  }

  /** Times each request; put it outside the error middleware, so it sees the final status. */
  http(): Koa.Middleware {
    return async (ctx, next) => {
      const end = this.requestTimer();
      try {
        await next();
      } finally {
        // A pattern, never the raw path: one series per route, whatever the ids in URLs.
        end(ctx.method, ctx._matchedRoute === undefined ? 'unmatched' : String(ctx._matchedRoute), ctx.status);
      }
    };
  }

  /** Starts timing one request; the function returned records it under its route pattern. */
  requestTimer(): (method: string, route: string, status: number) => void {
    const end = this.httpDuration.startTimer();
    return (method, route, status) => {
      end({ method: KNOWN_METHODS.has(method) ? method : 'other', route, status });
    };
  }

  /** Events of a bot the tracker's collector dropped. */
  readonly botsDropped = (events: number): void => {
    this.bots.inc(events);
  };

  reject(reason: RejectionReason): void {
    this.rejected.inc({ reason });
  }

  /** The writer's onFlushed. */
  readonly flushed = (flush: FlushOutcome): void => {
    this.flushDuration.observe({ outcome: flush.ok ? 'ok' : 'failed' }, flush.durationMs / 1000);
    if (flush.ok) {
      this.batchRows.observe(flush.rows);
      this.acknowledged.inc(flush.rows);
    } else this.failedRows.inc(flush.rows);
  };

  /** Queue depth is read from the writer at each scrape. */
  watchWriter(writer: Pick<GroupCommitWriter, 'stats'>): void {
    new Gauge({
      name: 'headcount_ingest_queue_rows',
      help: HELP.headcount_ingest_queue_rows,
      registers: [this.registry],
      collect() {
        this.set(writer.stats.queuedRows);
      },
    });
    new Gauge({
      name: 'headcount_ingest_queue_bytes',
      help: 'Bytes of event data waiting for the writer (an estimate of the memory they hold).',
      registers: [this.registry],
      collect() {
        this.set(writer.stats.queuedBytes);
      },
    });
  }

  /** timescaledb mode: refresh lag is exported only where a refresher runs. */
  watchRefresher(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const metrics = this;
    new Gauge({
      name: 'headcount_refresh_lag_seconds',
      help: HELP.headcount_refresh_lag_seconds,
      aggregator: 'min',
      registers: [this.registry],
      collect() {
        this.set((Date.now() - (metrics.lastRefreshOkMs ?? metrics.startedMs)) / 1000);
      },
    });
  }

  /** The refresher's onPass. */
  readonly refreshed = (pass: RefreshPass): void => {
    const outcome = pass.error !== undefined ? 'failed' : pass.result?.ran ? 'ok' : 'locked';
    this.refreshDuration.observe({ outcome }, pass.durationMs / 1000);
    if (outcome === 'ok') this.lastRefreshOkMs = Date.now();
  };

  /** The dimension roller's onPass. */
  readonly rolled = (pass: RollPass): void => {
    this.rollupDuration.observe({ outcome: pass.error !== undefined ? 'failed' : 'ok' }, pass.durationMs / 1000);
    this.rolledUp.inc(pass.moved);
  };

  /** The key store's onLookup. */
  readonly keyLookedUp = (found: boolean): void => {
    this.keyLookups.inc({ outcome: found ? 'found' : 'unknown' });
  };

  /** The partition maintainer's onRun. */
  readonly partitionsMaintained = (run: PartitionRun): void => {
    const outcome = run.error !== undefined ? 'failed' : run.ran ? 'ok' : 'locked';
    this.partitionRuns.inc({ outcome });
    if (outcome === 'failed') this.partitionFailures.inc();
  };

  /** The Prometheus text of this process, or with WORKERS > 1 of every worker (see above). */
  async scrape(): Promise<{ contentType: string; text: string }> {
    if (!cluster.isWorker) return { contentType: this.registry.contentType, text: await this.registry.metrics() };
    return askPrimary();
  }
}

const SCRAPE_REQUEST = 'headcount:scrape';
const SCRAPE_ANSWER = 'headcount:scrape-answer';
const SCRAPE_TIMEOUT_MS = 10_000;

interface ScrapeAnswer {
  type: typeof SCRAPE_ANSWER;
  id: string;
  contentType?: string;
  text?: string;
  error?: string;
}

const isScrapeAnswer = (message: unknown, id: string): message is ScrapeAnswer =>
  typeof message === 'object' &&
  message !== null &&
  (message as ScrapeAnswer).type === SCRAPE_ANSWER &&
  (message as ScrapeAnswer).id === id;

function askPrimary(): Promise<{ contentType: string; text: string }> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the primary process did not answer the metrics request'));
    }, SCRAPE_TIMEOUT_MS);
    const onMessage = (message: unknown): void => {
      if (!isScrapeAnswer(message, id)) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (message.error !== undefined || message.text === undefined) reject(new Error(message.error ?? 'no metrics'));
      else resolve({ contentType: message.contentType ?? Registry.PROMETHEUS_CONTENT_TYPE, text: message.text });
    };
    process.on('message', onMessage);
    process.send?.({ type: SCRAPE_REQUEST, id });
  });
}

/**
 * In the primary of WORKERS > 1: answers the workers' scrape requests with every worker's
 * metrics merged; returns that scrape, for METRICS_LISTEN's listener in the primary.
 */
export function serveClusterMetrics(): () => Promise<{ contentType: string; text: string }> {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: unknown; id?: unknown }) => {
    if (message.type !== SCRAPE_REQUEST || typeof message.id !== 'string') return;
    const id = message.id;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: SCRAPE_ANSWER, id, contentType: aggregator.contentType, text }),
      (err: unknown) => worker.send({ type: SCRAPE_ANSWER, id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  return async () => ({ contentType: aggregator.contentType, text: await aggregator.clusterMetrics() });
}
