import type Router from '@koa/router';
import cors from '@koa/cors';
import { type BodyLimits, readJsonBody } from '../../http/body.js';
import { type AuthDeps, requireKey, siteFor } from '../auth/middleware.js';
import { badRequest, HttpError } from '../../http/errors.js';
import { parseWith } from '../../http/validate.js';
import type { EventRow, GroupCommitWriter } from '../../ingest/writer.js';
import { type EventDimensions, STANDARD_DIMENSIONS } from '../../dimensions.js';
import { EventsBody, MAX_BODY_BYTES, MAX_EVENTS, type Rejection, rejectionOf, V1Event } from './schemas.js';

/** The events of a body not yet validated: 0 if it has no array of them. */
const eventCount = (body: unknown): number => {
  const events = (body as { events?: unknown } | null)?.events;
  return Array.isArray(events) ? events.length : 0;
};

const tooManyEvents = (events: number, max: number): HttpError =>
  new HttpError(413, 'too_many_events', `a request may carry at most ${max} events, not ${events}; split it`);

/** The dimensions of a valid event; undefined when it has none (the insert then sends none). */
function dimensionsOf(e: V1Event): EventDimensions | undefined {
  let dims: EventDimensions | undefined;
  for (const name of STANDARD_DIMENSIONS) {
    const value = e[name];
    if (value) (dims ??= {})[name] = value;
  }
  if (e.props !== undefined) (dims ??= {}).props = e.props;
  return dims;
}

/**
 * POST /v1/events: a batch of events, each checked on its own. The valid ones commit
 * together (one unit for the group-commit writer) before the answer, which counts what
 * was stored, what repeated an id already stored, and why each other event was refused.
 */
export function registerEvents(
  router: Router,
  deps: { writer: GroupCommitWriter; site: string; corsAllowOrigin: string; bodies: BodyLimits; auth: AuthDeps },
): void {
  // Browsers send beacons cross-origin: text/plain needs no preflight, JSON does.
  const allowCors = cors({
    origin: deps.corsAllowOrigin,
    allowMethods: ['POST', 'OPTIONS'],
    allowHeaders: ['Content-Type', 'Authorization'],
    maxAge: 86_400,
  });

  router.options('/v1/events', allowCors, (ctx) => {
    // Reached by an OPTIONS that is not a CORS preflight.
    ctx.set('Allow', 'POST, OPTIONS');
    ctx.status = 204;
  });

  // Beacons (navigator.sendBeacon) cannot set headers: their ingest key may come as ?key=.
  router.post('/v1/events', allowCors, requireKey('ingest', deps.auth, { allowQueryKey: true }), async (ctx) => {
    const body = await readJsonBody(ctx, deps.bodies, {
      limitBytes: MAX_BODY_BYTES,
      rows: { count: eventCount, tooMany: tooManyEvents },
    });
    const events = eventCount(body);
    if (events > MAX_EVENTS) throw tooManyEvents(events, MAX_EVENTS);
    const batch = parseWith(EventsBody, body, 'body');
    const now = Date.now();
    const rows: EventRow[] = [];
    const rejected: Rejection[] = [];
    batch.events.forEach((raw, index) => {
      const parsed = V1Event.safeParse(raw);
      if (!parsed.success) {
        rejected.push(rejectionOf(index, parsed.error.issues));
        return;
      }
      const e = parsed.data;
      rows.push({
        site: siteFor(ctx, e.site, deps.site),
        timeMs: e.time ?? now,
        kind: e.kind,
        userId: e.user,
        page: e.page ?? '',
        weight: e.weight ?? 1,
        id: e.id ?? undefined,
        dimensions: dimensionsOf(e),
      });
    });
    if (rows.length === 0) {
      throw badRequest(
        'invalid_events',
        `every event is invalid; the first: event ${rejected[0]!.index}: ${rejected[0]!.message}`,
        rejected,
      );
    }
    const { inserted } = await deps.writer.write(rows);
    ctx.body = { accepted: inserted, duplicates: rows.length - inserted, rejected };
  });
}
