import type Router from '@koa/router';
import type { ReadLimits } from '../config.js';
import type { Sql } from '../db/client.js';
import type { BodyLimits } from '../http/body.js';
import type { GroupCommitWriter } from '../ingest/writer.js';
import type { Collector } from '../tracker/collector.js';
import type { AuthDeps } from './auth/middleware.js';
import { registerEvents } from './events/routes.js';
import { registerExport } from './export/routes.js';
import { registerKeys } from './keys/routes.js';
import { registerOpenApi } from './openapi/routes.js';
import { registerSites } from './sites/routes.js';
import { registerStats } from './stats/routes.js';

/** The /v1 API (and /docs). */
export function registerV1(
  router: Router,
  deps: {
    sql: Sql;
    writer: GroupCommitWriter;
    site: string;
    corsAllowOrigin: string;
    bodies: BodyLimits;
    auth: AuthDeps;
    reads: ReadLimits;
    retryAfterSeconds: number;
    tracker: Collector;
  },
): void {
  registerEvents(router, deps);
  registerStats(router, deps);
  registerExport(router, deps);
  registerSites(router, deps);
  registerKeys(router, deps);
  registerOpenApi(router);
}
