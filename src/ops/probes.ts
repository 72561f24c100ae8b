import { readdirSync } from 'node:fs';
import path from 'node:path';
import type Router from '@koa/router';
import type Koa from 'koa';
import type { Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import type { JobStatus } from '../db/job-health.js';
import { MIGRATIONS_DIR } from '../db/migrate.js';
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

/** The migrations this build ships, as node-pg-migrate names them (file name without extension). */
function shippedMigrations(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /\.(ts|js|sql)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => path.basename(f, path.extname(f)));
}

interface NotReady {
  code: 'draining' | 'database_unavailable' | 'not_migrated' | 'background_job_failing';
  message: string;
}

async function whyNotReady(sql: Sql, readiness: Readiness, expected: string[]): Promise<NotReady | undefined> {
  if (readiness.draining) return { code: 'draining', message: 'the service is shutting down' };
  let applied: string[];
  try {
    const rows = await withDeadline(sql<{ name: string }[]>`select name from pgmigrations /* ops/probes */`, READY_TIMEOUT_MS);
    applied = rows.map((r) => r.name);
  } catch (err) {
    // An unmigrated database has no pgmigrations table (42P01): reachable, not migrated.
    if ((err as { code?: unknown }).code === '42P01') applied = [];
    else return { code: 'database_unavailable', message: `the database did not answer within ${READY_TIMEOUT_MS} ms` };
  }
  const pending = expected.filter((name) => !applied.includes(name));
  if (pending.length > 0) {
    return { code: 'not_migrated', message: `pending migrations: ${pending.join(', ')} (npm run migrate -- up)` };
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

  // The process runs its event loop and serves: nothing else is checked, so that an
  // orchestrator restarts it only when a restart can help.
  router.get('/livez', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx: Koa.Context) => {
    const problem = await whyNotReady(deps.sql, deps.readiness, expected);
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
