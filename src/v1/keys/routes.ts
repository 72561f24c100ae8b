import type Router from '@koa/router';
import type { Sql } from '../../db/client.js';
import { type BodyLimits, readJsonBody } from '../../http/body.js';
import { parseWith } from '../../http/validate.js';
import { createKey } from '../auth/keys.js';
import { type AuthDeps, requireKey } from '../auth/middleware.js';
import { type CreatedKey, NewKey } from './schemas.js';

/**
 * POST /v1/keys (admin key): a new ingest key for a site, answered once (the database
 * keeps its hash): what the dashboard's embed panel puts in the script tag.
 */
export function registerKeys(router: Router, deps: { sql: Sql; auth: AuthDeps; bodies: BodyLimits }): void {
  router.post('/v1/keys', requireKey('admin', deps.auth), async (ctx) => {
    const body = parseWith(NewKey, await readJsonBody(ctx, deps.bodies), 'body');
    const { key, record } = await createKey(deps.sql, { scope: body.scope, site: body.site, name: body.name ?? '' });
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { key, id: record.id, scope: 'ingest', site: body.site, name: record.name } satisfies CreatedKey;
  });
}
