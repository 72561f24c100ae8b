import type Router from '@koa/router';
import { deadlineOf, type Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import type { JobStatus } from '../db/job-health.js';
import { UnavailableError } from '../http/errors.js';

/**
 * `GET /health` (seed 003): 200 {"status":"ok"} when the database answers; 503 when it
 * does not. A background job that keeps failing (refresh, partition maintenance) turns
 * the answer into 200 {"status":"degraded","jobs":[...]} until it recovers: the
 * service still takes and answers requests, but someone should look.
 */
export function registerHealth(router: Router, deps: { sql: Sql; jobs: () => JobStatus[] }): void {
  router.get('/health', async (ctx) => {
    try {
      await withDeadline(deps.sql`select 1 /* health */`, Math.min(deadlineOf(deps.sql), 2000));
    } catch {
      throw new UnavailableError('database_unavailable', 'the database is unreachable', 1);
    }
    const failing = deps.jobs().filter((j) => !j.ok);
    ctx.body = failing.length === 0 ? { status: 'ok' } : { status: 'degraded', jobs: failing };
  });
}
