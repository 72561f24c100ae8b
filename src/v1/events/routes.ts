import type Router from '@koa/router';
import cors from '@koa/cors';
import { type BodyLimits, type BodySource, readJsonBody } from '../../http/body.js';
import { type AuthDeps, requireKey, siteOf } from '../auth/middleware.js';
import type { Principal } from '../auth/keys.js';
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

/** What POST /v1/events needs besides the request. */
export interface EventsDeps {
  writer: GroupCommitWriter;
  site: string;
  bodies: BodyLimits;
  tracker: Collector;
}

/** POST /v1/events' answer (200): what was stored, what repeated an id, what was refused and why. */
export interface EventsAnswer {
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
  bots?: number;
}

/**
 * POST /v1/events once its key is admitted (`principal`; undefined with V1_AUTH=none): a
 * batch of events, each checked on its own. The valid ones commit together (one unit for
 * the group-commit writer) before the answer, which counts what was stored, what repeated
 * an id already stored, and why each other event was refused. Koa's route and the hot
 * route (src/hot-routes.ts) both answer with it.
 */
export async function acceptEvents(from: BodySource, principal: Principal | undefined, deps: EventsDeps): Promise<EventsAnswer> {
  const body = await readJsonBody(from, deps.bodies, {
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
      site: siteOf(principal, e.site, deps.site),
      timeMs: e.time ?? now,
      kind: e.kind,
      userId: e.user ?? null,
      page: e.page ?? '',
      weight: e.weight ?? 1,
      id: e.id ?? undefined,
      dimensions,
    };
    if (e.user === undefined) {
      visit ??= deps.tracker.visit(from.req);
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
  if (rows.length === 0 && rejected.length === 0) return { accepted: 0, duplicates: 0, rejected, bots };
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
  return { accepted: inserted, duplicates: rows.length - inserted, rejected, ...(bots > 0 ? { bots } : {}) };
}

/** POST /v1/events (and its CORS preflight) on Koa's router: see acceptEvents. */
export function registerEvents(
  router: Router,
  deps: EventsDeps & {
    corsAllowOrigin: string;
    auth: AuthDeps;
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
    ctx.body = await acceptEvents(ctx, ctx.state.principal as Principal | undefined, deps);
  });
}
