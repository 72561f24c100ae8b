import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Koa from 'koa';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../log.js';

declare module 'koa' {
  interface DefaultContext {
    /** The request's logger: every line carries its `reqId`. */
    log: Logger;
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** A caller's id is kept when it is short and printable ASCII; anything else is replaced. */
const ACCEPTABLE_ID = /^[\x21-\x7e]{1,128}$/;

/** The caller's X-Request-Id when acceptable, else a new UUID; sent back in the response. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/**
 * First in the chain: gives the request its id and `ctx.log`, a child logger with that
 * id. With `accessLog`, pino-http also writes one line per request when it ends
 * (method, URL, status, response time); without it, pino-http is not on the hot path.
 */
export function requestLog(log: Logger, opts: { accessLog: boolean }): Koa.Middleware {
  if (!opts.accessLog) {
    return async (ctx, next) => {
      ctx.log = log.child({ reqId: requestId(ctx.req, ctx.res) });
      await next();
    };
  }
  const http = pinoHttp({
    logger: log,
    genReqId: requestId,
    // ctx.log carries the id only; the access line carries the request and response.
    quietReqLogger: true,
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'warn' : 'info'),
    // No headers: they may carry credentials (cookies, Authorization).
    serializers: {
      req: (req: { method: string; url: string; remoteAddress?: string }) => ({
        method: req.method,
        // A beacon's key travels in the URL (?key=, src/v1/auth): never in a log line.
        url: req.url.replace(/([?&]key=)[^&]*/g, '$1[redacted]'),
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.errWithCause,
    },
    // pino-http wraps the serializer of its error key in pino's plain one, which folds a
    // cause into the message: its own key is `error`, so that `err` keeps the nested
    // cause chain of src/log.ts (codes included) in ctx.log's lines.
    customAttributeKeys: { err: 'error' },
  });
  return async (ctx, next) => {
    http(ctx.req, ctx.res);
    ctx.log = ctx.req.log;
    await next();
  };
}
