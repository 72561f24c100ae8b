import type Router from '@koa/router';
import type { Sql } from '../db/client.js';
import { UnavailableError } from '../http/errors.js';
import { withTimeout } from '../ops/probes.js';

const HEALTH_TIMEOUT_MS = 2000;

export function registerHealth(router: Router, deps: { sql: Sql }): void {
  router.get('/health', async (ctx) => {
    try {
      await withTimeout(deps.sql`select 1 /* health */`, HEALTH_TIMEOUT_MS);
    } catch {
      throw new UnavailableError('database_unavailable', 'the database is unreachable', 1);
    }
    ctx.body = { status: 'ok' };
  });
}
