import Router from '@koa/router';
import Koa from 'koa';
import { registerAnalytics } from './analytics/routes.js';
import { registerCollect } from './collect/routes.js';
import type { Sql } from './db/client.js';
import { registerHealth } from './health/routes.js';
import { errorEnvelope } from './http/middleware.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';
import { registerPageViews } from './pageviews/routes.js';
import { registerV1 } from './v1/routes.js';

export interface AppDeps {
  sql: Sql;
  writer: GroupCommitWriter;
  /** The site of the seed APIs (DEFAULT_SITE). */
  site: string;
  /** Access-Control-Allow-Origin of POST /v1/events; default `*`. */
  corsAllowOrigin?: string;
  log: Logger;
}

/** The HTTP application: middleware order and routes. Never listens; no side effects. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.use(errorEnvelope(deps.log));

  const router = new Router();
  registerCollect(router, deps);
  registerAnalytics(router, deps);
  registerPageViews(router, deps);
  registerHealth(router, deps);
  registerV1(router, { ...deps, corsAllowOrigin: deps.corsAllowOrigin ?? '*' });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
