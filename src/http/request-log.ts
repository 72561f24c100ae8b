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

/** Query parameters whose value is a credential (src/v1/auth reads a beacon's `key`). */
const SECRET_PARAMETERS = new Set(['key']);

/**
 * The URL with the value of every secret parameter replaced by `[redacted]`. A parameter
 * is recognised by its name as the application parses it (URLSearchParams: percent-escapes
 * and `+` decoded), so `?k%65y=` is redacted like `?key=`; the rest stays as sent.
 */
export function redactKeys(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const parts = url
    .slice(at + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      const [name] = new URLSearchParams(`${rawName}=`).keys();
      return name !== undefined && SECRET_PARAMETERS.has(name) ? `${rawName}=[redacted]` : part;
    });
  return `${url.slice(0, at)}?${parts.join('&')}`;
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
        url: redactKeys(req.url),
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
