import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { analyticsEvent } from './analytics/routes.js';
import { AnalyticsWriteQuery } from './analytics/schemas.js';
import { collectEvent } from './collect/routes.js';
import { CollectQuery } from './collect/schemas.js';
import type { EventRow, GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';
import type { Metrics } from './ops/metrics.js';
import type { Rejections } from './ops/rejections.js';
import { failureOf } from './http/middleware.js';
import { requestId } from './http/request-log.js';
import { parseQuery } from './http/validate.js';
import { isWellFormedKey, type Principal } from './v1/auth/keys.js';
import { admit, type AuthDeps, bearerKey } from './v1/auth/middleware.js';
import { acceptEvents, type EventsDeps } from './v1/events/routes.js';

/** A write route of a seed API: its query, the event it stores and its status. */
interface HotRoute {
  route: string;
  schema: z.ZodType;
  event: (site: string, q: never) => EventRow;
  /** 200 with an empty text body, or 204. */
  status: 200 | 204;
}

const HOT_ROUTES: Record<string, HotRoute> = {
  'GET /collect': { route: '/collect', schema: CollectQuery, event: collectEvent, status: 200 },
  'POST /analytics': { route: '/analytics', schema: AnalyticsWriteQuery, event: analyticsEvent, status: 204 },
};

export interface HotRouteDeps {
  writer: GroupCommitWriter;
  site: string;
  metrics: Metrics;
  rejections: Rejections;
  retryAfterSeconds: number;
  log: Logger;
  /** The seed APIs' write routes (SEED_APIS): false leaves them to Koa, which then has none. */
  seedApis?: boolean;
  /** POST /v1/events: what its route needs (src/v1/events/routes.ts); absent, Koa answers it. */
  events?: HotEventsDeps;
}

type HotEventsDeps = EventsDeps & { auth: AuthDeps; corsAllowOrigin: string };

/**
 * The seed APIs' single-event writes (`GET /collect`, `POST /analytics`: most of the
 * traffic of a busy site) answered on node:http, without Koa's per-request context,
 * router and middleware chain (npm run bench: Koa alone costs more CPU per request than
 * the rest of a write). Only a valid request is answered here, with what Koa would send:
 * the same event (collectEvent, analyticsEvent), status, headers, request id, metrics
 * and error envelope (failureOf). Anything else (another route, a bad parameter, HEAD)
 * goes to `koa`, which answers it as it always has.
 *
 * `POST /v1/events` from a server-side client likewise (eventsRequest says which): its
 * key admitted and its body read, checked and written by the route's own code
 * (admit, acceptEvents), answered as Koa answers it, errors included.
 */
export function withHotRoutes(deps: HotRouteDeps, koa: RequestListener): RequestListener {
  const seedApis = deps.seedApis ?? true;
  return (req, res) => {
    const url = req.url ?? '';
    if (deps.events && url === '/v1/events' && req.method === 'POST') {
      const admitted = eventsRequest(req, deps.events.auth);
      if (!admitted) return koa(req, res);
      void answerEvents(deps, deps.events, admitted.principal, req, res);
      return;
    }
    if (!seedApis) return koa(req, res);
    const q = url.indexOf('?');
    const hot = HOT_ROUTES[`${req.method} ${q === -1 ? url : url.slice(0, q)}`];
    if (!hot) return koa(req, res);
    let parsed: z.ZodSafeParseResult<unknown>;
    try {
      parsed = hot.schema.safeParse(parseQuery(q === -1 ? '' : url.slice(q + 1)));
    } catch {
      return koa(req, res); // a NUL: Koa's 400
    }
    if (!parsed.success) return koa(req, res);
    void answer(deps, hot, req, res, hot.event(deps.site, parsed.data as never));
  };
}

/**
 * Whether a `POST /v1/events` (no query: a beacon's `?key=` is Koa's) is answered here,
 * and with which principal: a request without an Origin (no CORS to answer) whose key
 * this instance looked up lately (KeyStore.cached), or any such request where keys are
 * off (V1_AUTH=none). A missing, malformed or unknown key goes to Koa, which answers 401
 * or looks the key up (within the client address's allowance for failures).
 */
function eventsRequest(req: IncomingMessage, auth: AuthDeps): { principal: Principal | undefined } | undefined {
  if (req.headers.origin !== undefined) return undefined;
  if (!auth.keys) return { principal: undefined };
  let key: string | undefined;
  try {
    key = bearerKey(req.headers.authorization);
  } catch {
    return undefined;
  }
  const principal = key !== undefined && isWellFormedKey(key) ? auth.keys.cached(key) : undefined;
  return principal ? { principal } : undefined;
}

async function answerEvents(
  deps: HotRouteDeps,
  events: HotEventsDeps,
  principal: Principal | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const done = deps.metrics.requestTimer();
  const id = requestId(req, res);
  // What @koa/cors sets on every POST of the route, with an Origin or not.
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Origin', events.corsAllowOrigin);
  try {
    if (principal) await admit(principal, 'ingest', events.auth, (name, value) => res.setHeader(name, value));
    sendJson(res, 200, await acceptEvents({ req, res }, principal, events));
  } catch (err) {
    fail(deps, '/v1/events', req, res, id, err);
  }
  done(req.method ?? '', '/v1/events', res.statusCode);
}

async function answer(
  deps: HotRouteDeps,
  hot: HotRoute,
  req: IncomingMessage,
  res: ServerResponse,
  event: EventRow,
): Promise<void> {
  const done = deps.metrics.requestTimer();
  const id = requestId(req, res);
  try {
    await deps.writer.write([event]);
    res.statusCode = hot.status;
    if (hot.status === 200) {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('Content-Length', '0');
    }
    res.end();
  } catch (err) {
    fail(deps, hot.route, req, res, id, err);
  }
  done(req.method ?? '', hot.route, res.statusCode);
}

/** The error envelope of `err`, as Koa's errorEnvelope answers it. */
function fail(deps: HotRouteDeps, route: string, req: IncomingMessage, res: ServerResponse, id: string, err: unknown): void {
  const failure = failureOf(err, {
    rejections: deps.rejections,
    retryAfterSeconds: deps.retryAfterSeconds,
    log: deps.log.child({ reqId: id }),
    method: req.method ?? '',
    path: route,
  });
  for (const [name, value] of Object.entries(failure.headers)) res.setHeader(name, value);
  sendJson(res, failure.status, failure.body);
}

/** `body` as JSON, as Koa sends an object body. */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
