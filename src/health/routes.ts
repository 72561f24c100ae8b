import type Router from '@koa/router';
import type { Sql } from '../db/client.js';
import { UnavailableError } from '../http/errors.js';

const HEALTH_TIMEOUT_MS = 2000;

export function registerHealth(router: Router, deps: { sql: Sql }): void {
  router.get('/health', async (ctx) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), HEALTH_TIMEOUT_MS);
    });
    try {
      await Promise.race([deps.sql`select 1 /* health */`, timeout]);
    } catch {
      throw new UnavailableError('database_unavailable', 'the database is unreachable', 1);
    } finally {
      clearTimeout(timer);
    }
    ctx.body = { status: 'ok' };
  });
}
