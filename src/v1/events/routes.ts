import type Router from '@koa/router';
import cors from '@koa/cors';
import { type BodyLimits, readJsonBody } from '../../http/body.js';
import { type AuthDeps, requireKey, siteFor } from '../auth/middleware.js';
import { badRequest, HttpError } from '../../http/errors.js';
import { parseWith } from '../../http/validate.js';
import type { EventRow, GroupCommitWriter } from '../../ingest/writer.js';
import type { Collector, Visit } from '../../tracker/collector.js';
import { withSource } from '../../tracker/sources.js';
import { CheckedEvent, EventsBody, MAX_BODY_BYTES, MAX_EVENTS, type Rejection, rejectionOf } from './schemas.js';

/** The events of a body not yet validated: 0 if it has no array of them. */
const eventCount = (body: unknown): number => {
  const events = (body as { events?: unknown } | null)?.events;
  return Array.isArray(events) ? events.length : 0;
};

const tooManyEvents = (events: number, max: number): HttpError =>
  new HttpError(413, 'too_many_events', `a request may carry at most ${max} events, not ${events}; split it`);

/**
 * POST /v1/events: a batch of events, each checked on its own. The valid ones commit
 * together (one unit for the group-commit writer) before the answer, which counts what
 * was stored, what repeated an id already stored, and why each other event was refused.
 */
export function registerEvents(
  router: Router,
  deps: {
    writer: GroupCommitWriter;
    site: string;
    corsAllowOrigin: string;
    bodies: BodyLimits;
    auth: AuthDeps;
    tracker: Collector;
  },
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
    // Events without a user (the tracker's): what the request says, read once.
    let visit: Visit | undefined;
    const anonymous: EventRow[] = [];
    let bots = 0;
    batch.events.forEach((raw, index) => {
      const parsed = CheckedEvent.safeParse(raw);
      if (!parsed.success) {
        rejected.push(rejectionOf(index, parsed.error.issues, raw));
        return;
      }
      const { event: e, dimensions } = parsed.data;
      const row: EventRow = {
        site: siteFor(ctx, e.site, deps.site),
        timeMs: e.time ?? now,
        kind: e.kind,
        userId: e.user ?? null,
        page: e.page ?? '',
        weight: e.weight ?? 1,
        id: e.id ?? undefined,
        dimensions,
      };
      if (e.user === undefined) {
        visit ??= deps.tracker.visit(ctx);
        if (visit.bot) {
          bots++;
          return;
        }
        row.dimensions = deps.tracker.dimensions(dimensions, e.screen_width ?? undefined, visit);
        anonymous.push(row);
      }
      row.dimensions = withSource(row.dimensions, e.user === undefined);
      rows.push(row);
    });
    deps.tracker.botsDropped(bots);
    if (rows.length === 0 && rejected.length === 0) {
      ctx.body = { accepted: 0, duplicates: 0, rejected, bots };
      return;
    }
    if (rows.length === 0) {
      throw badRequest(
        'invalid_events',
        `every event is invalid; the first: event ${rejected[0]!.index}: ${rejected[0]!.message}`,
        rejected,
      );
    }
    if (visit) {
      const ids = new Map<string, string>();
      for (const row of anonymous) {
        let id = ids.get(row.site);
        if (id === undefined) ids.set(row.site, (id = await deps.tracker.visitorId(row.site, visit)));
        row.userId = id;
      }
    }
    const { inserted } = await deps.writer.write(rows);
    ctx.body = { accepted: inserted, duplicates: rows.length - inserted, rejected, ...(bots > 0 ? { bots } : {}) };
  });
}
