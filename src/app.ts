import Router from '@koa/router';
import Koa from 'koa';
import { registerCollect } from './collect/routes.js';
import type { Sql } from './db/client.js';
import { registerHealth } from './health/routes.js';
import { HttpError } from './http/errors.js';
import { errorEnvelope, notFound } from './http/middleware.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';

export interface AppDeps {
  sql: Sql;
  writer: GroupCommitWriter;
  log: Logger;
}

/** The HTTP application: middleware order and routes. Never listens; no side effects. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.use(errorEnvelope(deps.log));
  app.use(notFound);

  const router = new Router();
  registerCollect(router, deps);
  registerHealth(router, deps);
  app.use(router.routes());
  app.use(
    router.allowedMethods({
      throw: true,
      methodNotAllowed: () => new HttpError(405, 'method_not_allowed', 'method not allowed on this route'),
      notImplemented: () => new HttpError(501, 'not_implemented', 'method not implemented'),
    }),
  );
  return app;
}
