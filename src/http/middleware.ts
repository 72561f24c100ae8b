import type Koa from 'koa';
import { isRetryableDbError } from '../db/errors.js';
import { EventsRejected, QueueFull, ShuttingDown, TooManyEvents } from '../ingest/errors.js';
import type { Logger } from '../log.js';
import type { Rejections } from '../ops/rejections.js';
import { HttpError, UnavailableError } from './errors.js';

/** Errors thrown by koa itself and by @koa/router carry a status and an expose flag. */
interface KoaHttpError extends Error {
  status?: number;
  expose?: boolean;
}

const codeByStatus: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  501: 'not_implemented',
};

function toHttpError(err: unknown, retryAfterSeconds: number): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof QueueFull) return new UnavailableError('ingest_queue_full', err.message, retryAfterSeconds);
  if (err instanceof ShuttingDown) return new UnavailableError('shutting_down', err.message, retryAfterSeconds);
  if (err instanceof TooManyEvents) return new HttpError(413, 'too_many_events', err.message);
  if (err instanceof EventsRejected) return new HttpError(422, 'event_rejected', err.message);
  if (isRetryableDbError(err)) {
    return new UnavailableError('database_unavailable', 'the database is unavailable; retry later', retryAfterSeconds);
  }
  const e = err as KoaHttpError;
  if (e instanceof Error && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return new HttpError(e.status, codeByStatus[e.status] ?? 'bad_request', e.message);
  }
  return new HttpError(500, 'internal', 'internal error');
}

/**
 * First in the chain after the request logger and the metrics (which cannot throw):
 * every error leaves as { error: { code, message, details? } }. 4xx messages are shown
 * and counted; a 503 is counted and summarised (see Rejections); any other 5xx shows a
 * generic message and is logged in full, with the request's id.
 */
export function errorEnvelope(rejections: Rejections, retryAfterSeconds: number): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.body == null && ctx.status >= 400) throw emptyStatusError(ctx);
    } catch (err) {
      const failure = failureOf(err, { rejections, retryAfterSeconds, log: ctx.log, method: ctx.method, path: ctx.path });
      ctx.status = failure.status;
      ctx.set(failure.headers);
      ctx.body = failure.body;
    }
  };
}

/** What a failed request answers: a status, its headers (Retry-After) and the envelope. */
export interface Failure {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string; details?: unknown } };
}

/**
 * The answer to `err`, counted or logged as errorEnvelope says: used by errorEnvelope
 * and by the hot routes (src/hot-routes.ts), which answer without Koa.
 */
export function failureOf(
  err: unknown,
  at: { rejections: Rejections; retryAfterSeconds: number; log: Logger; method: string; path: string },
): Failure {
  const httpError = toHttpError(err, at.retryAfterSeconds);
  if (httpError.status === 503) at.rejections.unavailable(httpError.code, err === httpError ? undefined : err);
  else if (httpError.status >= 500) {
    at.log.error({ err, method: at.method, path: at.path, status: httpError.status }, 'request failed');
  } else at.rejections.invalid();
  return {
    status: httpError.status,
    headers: httpError.headers,
    body: {
      error: {
        code: httpError.code,
        message: httpError.message,
        ...(httpError.details ? { details: httpError.details } : {}),
      },
    },
  };
}

/**
 * A status set without a body (no route matched: 404; the router's 405 with its Allow
 * header; 501) leaves in the envelope too.
 */
function emptyStatusError(ctx: Koa.Context): HttpError {
  if (ctx.status === 404) return new HttpError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
  if (ctx.status === 405) {
    return new HttpError(
      405,
      'method_not_allowed',
      `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow')}`,
    );
  }
  if (ctx.status === 501) {
    // The router's answer to a method it knows nothing of (TRACE, PROPFIND): the client's
    // mistake, not the server's, so a 4xx like any other unsupported method.
    return new HttpError(405, 'method_not_allowed', `${ctx.method} is not supported`);
  }
  return new HttpError(ctx.status, codeByStatus[ctx.status] ?? 'error', `${ctx.method} ${ctx.path} failed`);
}
