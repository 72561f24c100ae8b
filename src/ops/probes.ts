import type Router from '@koa/router';
import type Koa from 'koa';
import type { Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import { sqlState } from '../db/errors.js';
import type { JobStatus } from '../db/job-health.js';
import { shippedMigrations } from '../db/migrate.js';
import { readSqlObjects } from '../db/sql-objects.js';
import type { StorageMode } from '../db/storage.js';
import { HttpError } from '../http/errors.js';
import { METRICS_UNAUTHORIZED, type MetricsExposure, scrapeAllowed } from './metrics-access.js';
import type { Metrics } from './metrics.js';

/** /readyz gives the database this long to answer; a load balancer probes every few seconds. */
const READY_TIMEOUT_MS = 1000;
/** A background job is failing after this many failed runs in a row: one blip does not pull the instance. */
const FAILING_AFTER_RUNS = 3;

/**
 * What /readyz weighs besides the database: whether the process is draining (a signal
 * came) and whether a background job has failed FAILING_AFTER_RUNS times in a row
 * (the jobs' own JobHealth, as /health reports it).
 */
export class Readiness {
  draining = false;

  constructor(private readonly jobs: () => JobStatus[] = () => []) {}

  failingJobs(): string[] {
    return this.jobs()
      .filter((j) => j.failuresInARow >= FAILING_AFTER_RUNS)
      .map((j) => j.job);
  }
}

interface NotReady {
  code: 'draining' | 'database_unavailable' | 'not_migrated' | 'background_job_failing';
  message: string;
}

/**
 * The functions, views and triggers of sql/ this build ships that the database has not
 * applied as they are (a service started with MIGRATE_ON_START=false on a database an
 * older build migrated, or after a `migrate down`, which drops them).
 */
async function objectsBehind(sql: Sql, shipped: Record<StorageMode, Promise<string[]>>): Promise<string[]> {
  const [row]: [{ mode: StorageMode; applied: string[] }?] = await withDeadline(
    sql`
      select s.storage_mode as mode,
             array(select o.name || ':' || o.sha256 from headcount_sql_objects o order by o.position) as applied
      from headcount_settings s /* ops/probes */
    `,
    READY_TIMEOUT_MS,
  );
  if (!row) return [];
  const expected = await shipped[row.mode];
  // name:sha256 on either side only: a file changed, added or removed since the last apply.
  const differ = [...expected.filter((o) => !row.applied.includes(o)), ...row.applied.filter((o) => !expected.includes(o))];
  return [...new Set(differ.map((o) => o.slice(0, o.lastIndexOf(':'))))];
}

async function whyNotReady(
  sql: Sql,
  readiness: Readiness,
  expected: string[],
  objects: Record<StorageMode, Promise<string[]>>,
): Promise<NotReady | undefined> {
  if (readiness.draining) return { code: 'draining', message: 'the service is shutting down' };
  let applied: string[];
  try {
    const rows = await withDeadline(sql<{ name: string }[]>`select name from pgmigrations /* ops/probes */`, READY_TIMEOUT_MS);
    applied = rows.map((r) => r.name);
  } catch (err) {
    // An unmigrated database has no pgmigrations table (42P01): reachable, not migrated.
    if (sqlState(err) === '42P01') applied = [];
    else return { code: 'database_unavailable', message: `the database did not answer within ${READY_TIMEOUT_MS} ms` };
  }
  const pending = expected.filter((name) => !applied.includes(name));
  if (pending.length > 0) {
    return { code: 'not_migrated', message: `pending migrations: ${pending.join(', ')} (npm run migrate -- up)` };
  }
  let behind: string[];
  try {
    behind = await objectsBehind(sql, objects);
  } catch (err) {
    // Before the layer's migration a database has no headcount_sql_objects (42P01); the
    // pending migration said so above.
    if ((err as { code?: unknown }).code === '42P01') behind = [];
    else return { code: 'database_unavailable', message: `the database did not answer within ${READY_TIMEOUT_MS} ms` };
  }
  if (behind.length > 0) {
    return { code: 'not_migrated', message: `SQL objects not applied as shipped: ${behind.join(', ')} (npm run migrate -- up)` };
  }
  const failing = readiness.failingJobs();
  if (failing.length > 0) {
    return {
      code: 'background_job_failing',
      message: `${failing.join(' and ')}: the last ${FAILING_AFTER_RUNS} runs failed (see the logs)`,
    };
  }
  return undefined;
}

export interface OpsDeps {
  sql: Sql;
  metrics: Metrics;
  readiness: Readiness;
  /** METRICS_LISTEN / METRICS_TOKEN; default: /metrics here, open. */
  metricsExposure?: MetricsExposure;
}

/** /livez, /readyz and /metrics. */
export function registerOps(router: Router, deps: OpsDeps): void {
  const expected = shippedMigrations();
  const objectsOf = async (mode: StorageMode) => (await readSqlObjects(mode)).map((o) => `${o.name}:${o.sha256}`);
  const objects = { timescaledb: objectsOf('timescaledb'), postgres: objectsOf('postgres'), citus: objectsOf('citus') };
  // Read once; a failed read is reported by the probe that awaits it.
  for (const read of Object.values(objects)) read.catch(() => undefined);

  // The process runs its event loop and serves: nothing else is checked, so that an
  // orchestrator restarts it only when a restart can help.
  router.get('/livez', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx: Koa.Context) => {
    const problem = await whyNotReady(deps.sql, deps.readiness, expected, objects);
    if (!problem) {
      ctx.body = { status: 'ok' };
      return;
    }
    // Answered here rather than thrown: a probe saying "not ready" is not a refused request.
    ctx.status = 503;
    ctx.set('Retry-After', '1');
    ctx.body = { error: problem };
  });

  // With METRICS_LISTEN, /metrics is served there only (src/ops/metrics-access.ts).
  if (deps.metricsExposure?.listen) return;
  const token = deps.metricsExposure?.token;
  router.get('/metrics', async (ctx) => {
    if (!scrapeAllowed(ctx.get('Authorization') || undefined, token)) {
      const { code, message, headers } = METRICS_UNAUTHORIZED;
      throw new HttpError(401, code, message, undefined, headers);
    }
    const { contentType, text } = await deps.metrics.scrape();
    ctx.type = contentType;
    ctx.body = text;
  });
}
