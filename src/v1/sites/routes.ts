import type Router from '@koa/router';
import type Koa from 'koa';
import type { Sql } from '../../db/client.js';
import { type BodyLimits, readJsonBody } from '../../http/body.js';
import { badRequest, HttpError } from '../../http/errors.js';
import { parseWith, queryOf } from '../../http/validate.js';
import type { Principal } from '../auth/keys.js';
import { type AuthDeps, requireKey, siteFor } from '../auth/middleware.js';
import { knowsEverySite, unknownSite } from './known.js';
import { type Change, emptySite, readSites, saveSite, SettingError } from './queries.js';
import { NewSite, NoQuery, SitePath, SiteSettings } from './schemas.js';

/**
 * /v1/sites: the sites a key may read, with their first and last event and event count
 * (read-your-writes: what is still queued for the roller included), and, with an admin
 * key, creating a site and changing its settings (time zone, declared rollups).
 */
export function registerSites(router: Router, deps: { sql: Sql; site: string; auth: AuthDeps; bodies: BodyLimits }): void {
  router.get('/v1/sites', requireKey('read', deps.auth), async (ctx) => {
    parseWith(NoQuery, queryOf(ctx), 'query');
    const bound = (ctx.state.principal as Principal | undefined)?.site ?? null;
    // A key bound to a site may read that one, events or not (as GET /v1/stats answers it zeros).
    const sites = await readSites(deps.sql, bound);
    ctx.body = { data: bound !== null && sites.length === 0 ? [emptySite(bound)] : sites };
  });

  router.get('/v1/sites/:site', requireKey('read', deps.auth), async (ctx) => {
    parseWith(NoQuery, queryOf(ctx), 'query');
    const site = siteFor(ctx, parseWith(SitePath, ctx.params, 'query').site, deps.site);
    const [found] = await readSites(deps.sql, site);
    if (!found && knowsEverySite(ctx)) throw unknownSite(site);
    ctx.body = found ?? emptySite(site);
  });

  router.post('/v1/sites', requireKey('admin', deps.auth), async (ctx) => {
    const body = parseWith(NewSite, await readJsonBody(ctx, deps.bodies), 'body');
    const { site, ...settings } = body;
    const change = await save(deps.sql, site, settings, { create: true });
    if ('exists' in change)
      throw new HttpError(409, 'site_exists', `site ${site} exists already: change it with PATCH /v1/sites/${site}`);
    if ('created' in change) {
      ctx.status = 201;
      ctx.set('Location', `/v1/sites/${site}`);
      ctx.body = change.created;
    }
  });

  router.patch('/v1/sites/:site', requireKey('admin', deps.auth), async (ctx: Koa.Context) => {
    const { site } = parseWith(SitePath, ctx.params, 'query');
    const settings = parseWith(SiteSettings, await readJsonBody(ctx, deps.bodies), 'body');
    const change = await save(deps.sql, site, settings, { create: false });
    if ('missing' in change) throw unknownSite(site);
    if ('changed' in change) ctx.body = change.changed;
  });
}

async function save(sql: Sql, site: string, settings: SiteSettings, mode: { create: boolean }): Promise<Change> {
  try {
    return await saveSite(sql, site, settings, mode);
  } catch (err) {
    if (err instanceof SettingError)
      throw badRequest('invalid_body', err.message, [{ parameter: err.field, message: err.message }]);
    throw err;
  }
}
