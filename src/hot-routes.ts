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
}

/**
 * The seed APIs' single-event writes (`GET /collect`, `POST /analytics`: most of the
 * traffic of a busy site) answered on node:http, without Koa's per-request context,
 * router and middleware chain (npm run bench: Koa alone costs more CPU per request than
 * the rest of a write). Only a valid request is answered here, with what Koa would send:
 * the same event (collectEvent, analyticsEvent), status, headers, request id, metrics
 * and error envelope (failureOf). Anything else (another route, a bad parameter, HEAD)
 * goes to `koa`, which answers it as it always has.
 */
export function withHotRoutes(deps: HotRouteDeps, koa: RequestListener): RequestListener {
  return (req, res) => {
    const url = req.url ?? '';
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
    const failure = failureOf(err, {
      rejections: deps.rejections,
      retryAfterSeconds: deps.retryAfterSeconds,
      log: deps.log.child({ reqId: id }),
      method: req.method ?? '',
      path: hot.route,
    });
    const body = JSON.stringify(failure.body);
    res.statusCode = failure.status;
    for (const [name, value] of Object.entries(failure.headers)) res.setHeader(name, value);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }
  done(req.method ?? '', hot.route, res.statusCode);
}
