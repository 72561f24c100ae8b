import type Koa from 'koa';
import type { Sql } from '../../db/client.js';
import { HttpError } from '../../http/errors.js';
import type { Principal } from '../auth/keys.js';
import { siteFor } from '../auth/middleware.js';
import { siteStatus } from './queries.js';

/** Whether the request's key may know which sites exist: an admin key (it may read every one). */
export const knowsEverySite = (ctx: Koa.Context): boolean => (ctx.state.principal as Principal | undefined)?.scope === 'admin';

export const unknownSite = (site: string): HttpError =>
  new HttpError(404, 'unknown_site', `there is no site ${site}: it has no events and was not created (POST /v1/sites)`);

/**
 * The site a /v1 read acts on (siteFor: the one asked for, or the key's, or `fallback`)
 * and its default time zone (null: none set). An admin key asking for a site that does not
 * exist (no row in headcount_sites, no event queued for it) gets 404 unknown_site; any
 * other key gets what it always got, so that it cannot tell a site it may not read that
 * exists from one that does not (403 for another site, an empty answer for its own).
 */
export async function siteToRead(
  ctx: Koa.Context,
  sql: Sql,
  requested: string | undefined,
  fallback: string,
): Promise<{ site: string; timezone: string | null }> {
  const site = siteFor(ctx, requested, fallback);
  const status = await siteStatus(sql, site);
  if (!status.known && knowsEverySite(ctx)) throw unknownSite(site);
  return { site, timezone: status.timezone };
}
