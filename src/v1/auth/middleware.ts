import type Koa from 'koa';
import { HttpError } from '../../http/errors.js';
import type { AuthFailureLimit } from './failures.js';
import { isWellFormedKey, type KeyStore, type Principal } from './keys.js';
import type { Bucket, RateLimiter } from './rate-limit.js';

export type Need = 'ingest' | 'read';

export interface AuthDeps {
  limiter: RateLimiter;
  /** null: V1_AUTH=none, every request may do anything on any site. */
  keys: KeyStore | null;
  limits: Record<Need, Bucket>;
  /** Lookups of keys that may fail, per client address (AUTH_FAILURES_*). */
  failures: AuthFailureLimit;
}

const FORBIDDEN: Record<Need | 'admin', string> = {
  read: 'read statistics or events',
  ingest: 'send events',
  admin: 'create or change sites, or create keys (an admin key may)',
};

const unauthorized = (code: string, message: string): HttpError =>
  new HttpError(401, code, message, undefined, { 'WWW-Authenticate': 'Bearer realm="headcount"' });

/** The key an `Authorization` header carries: undefined without one, 401 if it is not "Bearer <key>". */
export function bearerKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized('invalid_key', 'the Authorization header must be "Bearer <key>"');
  return m[1];
}

/** The key of a request: `Authorization: Bearer <key>`, or (beacons, `allowQueryKey`) `?key=`. */
function keyOf(ctx: Koa.Context, allowQueryKey: boolean): string | undefined {
  const key = bearerKey(ctx.get('Authorization'));
  if (key !== undefined || !allowQueryKey) return key;
  return new URLSearchParams(ctx.querystring).get('key') || undefined;
}

/**
 * Requires a key that may `need` (or an admin key), then takes one token from its rate
 * limit. Puts the key's principal on ctx.state.principal. Keys never appear in answers
 * or logs: the messages here name nothing of the key.
 */
export function requireKey(need: Need | 'admin', deps: AuthDeps, opts: { allowQueryKey?: boolean } = {}): Koa.Middleware {
  return async (ctx, next) => {
    if (!deps.keys) {
      await next();
      return;
    }
    const key = keyOf(ctx, opts.allowQueryKey ?? false);
    if (!key) {
      throw unauthorized(
        'missing_key',
        // The command in the hint must run as shown but for the placeholder: a read or
        // ingest key belongs to one site, so --site is part of it.
        `this endpoint needs a key: Authorization: Bearer <key> (npm run keys -- create --scope ${need}${need === 'admin' ? '' : ' --site <site>'})`,
      );
    }
    // A key looked up less than a second ago and take() from this instance's lease
    // answer without a promise: the common request waits for nothing.
    const principal = isWellFormedKey(key) ? (deps.keys.cached(key) ?? (await lookUp(ctx, key, deps.keys, deps.failures))) : null;
    if (!principal) throw unauthorized('invalid_key', 'the key is not valid');
    await admit(principal, need, deps, (name, value) => ctx.set(name, value));
    ctx.state.principal = principal;
    await next();
  };
}

/**
 * Lets `principal` do what `need` asks, or throws 403; then takes one token from its rate
 * limit, setting the RateLimit-* headers through `setHeader`, or throws 429. Shared by
 * requireKey and the hot route of POST /v1/events (src/hot-routes.ts).
 */
export async function admit(
  principal: Principal,
  need: Need | 'admin',
  deps: AuthDeps,
  setHeader: (name: string, value: string) => void,
): Promise<void> {
  if (principal.scope !== need && principal.scope !== 'admin') {
    throw new HttpError(403, 'forbidden', `this key may not ${FORBIDDEN[need]}`);
  }
  // Site settings are changed seldom, by people: admin requests take from the read bucket.
  const use: Need = need === 'admin' ? 'read' : need;
  const bucket = deps.limits[use];
  const pending = deps.limiter.take(principal.keyId, use, bucket);
  const taken = pending instanceof Promise ? await pending : pending;
  setHeader('RateLimit-Limit', String(bucket.burst));
  setHeader('RateLimit-Remaining', String(taken.remaining));
  setHeader('RateLimit-Reset', String(taken.resetSeconds));
  if (!taken.allowed) {
    throw new HttpError(429, 'rate_limited', `too many requests with this key; retry in ${taken.retryAfterSeconds} s`, undefined, {
      'Retry-After': String(taken.retryAfterSeconds),
    });
  }
}

/**
 * A database lookup of a key this instance has not seen lately, within the client
 * address's allowance for failed lookups (src/v1/auth/failures.ts). Beyond it: 429,
 * whatever the key, so that the answer says nothing of it.
 */
async function lookUp(ctx: Koa.Context, key: string, keys: KeyStore, failures: AuthFailureLimit): Promise<Principal | null> {
  const address = ctx.ip || 'unknown';
  const reserved = failures.reserve(address);
  if (!reserved.allowed) {
    throw new HttpError(
      429,
      'too_many_failures',
      `too many requests with unknown keys from this address; retry in ${reserved.retryAfterSeconds} s`,
      undefined,
      { 'Retry-After': String(reserved.retryAfterSeconds) },
    );
  }
  const principal = await keys.principal(key);
  if (principal) failures.refund(address);
  return principal;
}

/**
 * The site a request acts on: the one asked for (or `fallback`), which a key bound to a
 * site must match. The answer is the same whether the other site exists or not.
 */
export function siteFor(ctx: Koa.Context, requested: string | undefined, fallback: string): string {
  return siteOf(ctx.state.principal as Principal | undefined, requested, fallback);
}

/** siteFor, given the request's principal (undefined: no keys, V1_AUTH=none). */
export function siteOf(principal: Principal | undefined, requested: string | undefined, fallback: string): string {
  if (!principal || principal.site === null) return requested ?? fallback;
  if (requested !== undefined && requested !== principal.site) {
    throw new HttpError(403, 'forbidden', 'this key is for another site');
  }
  return principal.site;
}
