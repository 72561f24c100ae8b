import { z } from 'zod';
import { eventTimeProblem, parseIsoTimestamp, timeWindowProblem } from '../../time.js';
import { hasNul, NUL_MESSAGE } from '../../http/params.js';
import { SITE_PATTERN, SITE_RULE } from '../../site.js';
import { KIND_PATTERN, KIND_RULE, PAGE_MAX_CHARS } from '../params.js';
import { DIMENSION_FIELDS, parseDimensions, PROPS_FIELD } from './dimensions.js';

export const MAX_EVENTS = 10_000;
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
export const WEIGHT_MAX = 1_000_000;
export const SCREEN_WIDTH_MAX = 100_000;

const ZONED_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[zZ]|[+-]\d{2}:?\d{2})$/;

/** Why an event time is refused; `code` is the rejection's code. */
const timeIssue = (ctx: z.RefinementCtx, code: string, message: string): never => {
  ctx.addIssue({ code: 'custom', message, params: { code } });
  return z.NEVER;
};

/** `time`: ISO 8601 with a zone, or epoch milliseconds; inside retention, ≤ 5 minutes ahead. Returns epoch ms. */
const EventTime = z
  .union([z.string(), z.number()], { error: 'must be an ISO 8601 date-time string with a zone, or epoch milliseconds' })
  .transform((value, ctx): number => {
    const now = Date.now();
    if (typeof value === 'number') {
      if (!Number.isFinite(value) || value < 0)
        return timeIssue(ctx, 'invalid_time', 'must be epoch milliseconds, a non-negative number');
      const problem = eventTimeProblem(value, 'milliseconds', now);
      if (problem) return timeIssue(ctx, windowCode(problem), problem);
      return Math.round(value);
    }
    const ms = ZONED_TIMESTAMP.test(value) ? parseIsoTimestamp(value) : null;
    if (ms === null) {
      return timeIssue(
        ctx,
        'invalid_time',
        `must be an ISO 8601 date-time with a zone such as 2026-11-23T10:00:00Z or 2026-11-23T15:30:00+05:30, not ${JSON.stringify(value)}`,
      );
    }
    const problem = timeWindowProblem(ms, now);
    return problem ? timeIssue(ctx, windowCode(problem), problem) : ms;
  })
  .meta({
    description:
      'ISO 8601 date-time with a zone, or epoch milliseconds; default: now. From the start of the 60-day retention window to 5 minutes ahead.',
    example: '2026-11-23T10:00:00Z',
    override: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'number' }] },
  });

/** Half of a UTF-16 pair alone: it would reach the database as U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u;

const windowCode = (problem: string): string =>
  problem.includes('older than') ? 'too_old' : problem.includes('future') ? 'too_far_ahead' : 'invalid_time';

/**
 * One event of `POST /v1/events`. Unknown fields are refused rather than dropped. The
 * optional fields stored as SQL null when absent (id, the dimensions, props) also take
 * JSON null, as the export writes them: an export can be sent back as it is.
 */
export const V1Event = z
  .strictObject(
    {
      user: z
        .string({ error: 'must be a string' })
        .min(1, 'must not be empty')
        .max(256, 'must be at most 256 characters')
        .refine((v) => !hasNul(v), NUL_MESSAGE)
        .optional()
        .meta({
          description:
            'Who did it: any id of 1–256 characters, stored as sent. Without it (the tracker, docs/tracker.md) the service derives a visitor id from a daily salt, the site, the client address and the user agent, and adds country, device, browser and os from the request where the event has none; an event of a bot is then dropped.',
          example: 'user-42',
        }),
      kind: z
        .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') })
        .regex(KIND_PATTERN, KIND_RULE)
        .meta({ description: 'What happened.', example: 'signup' }),
      time: EventTime.optional(),
      site: z
        .string({ error: 'must be a string' })
        .regex(SITE_PATTERN, SITE_RULE)
        .optional()
        .meta({ description: 'Default: DEFAULT_SITE.', example: 'shop' }),
      page: z
        .string({ error: 'must be a string' })
        .max(PAGE_MAX_CHARS, `must be at most ${PAGE_MAX_CHARS} characters`)
        .refine((v) => !hasNul(v), NUL_MESSAGE)
        .refine((v) => !LONE_SURROGATE.test(v), 'must be valid Unicode: it holds a lone surrogate')
        .optional()
        .meta({ description: `Default: empty. At most ${PAGE_MAX_CHARS} characters.`, example: '/pricing' }),
      weight: z
        .int({ error: `must be a whole number from 1 to ${WEIGHT_MAX}` })
        .min(1, `must be a whole number from 1 to ${WEIGHT_MAX}`)
        .max(WEIGHT_MAX, `must be a whole number from 1 to ${WEIGHT_MAX}`)
        .optional()
        .meta({ description: 'How many events this one stands for; default 1.' }),
      id: z
        .string({ error: 'must be a string' })
        .min(1, 'must not be empty')
        .max(128, 'must be at most 128 characters')
        .refine((v) => !hasNul(v), NUL_MESSAGE)
        .nullable()
        .optional()
        .meta({
          description:
            'The client’s id of the event: a resend with the same site, id and time is not stored again (give time with it). Null means absent.',
          example: '0f8b8c1e-5d1a-4d8e-9a57-1d2b3c4d5e6f',
        }),
      ...DIMENSION_FIELDS,
      props: PROPS_FIELD,
      screen_width: z
        .int({ error: `must be a whole number from 0 to ${SCREEN_WIDTH_MAX}` })
        .min(0, `must be a whole number from 0 to ${SCREEN_WIDTH_MAX}`)
        .max(SCREEN_WIDTH_MAX, `must be a whole number from 0 to ${SCREEN_WIDTH_MAX}`)
        .nullable()
        .optional()
        .meta({
          description:
            'The screen width in CSS pixels (the tracker sends it): an event without `user` and without `device` gets device mobile (< 576), tablet (< 992) or desktop. Not stored.',
          example: 1440,
        }),
    },
    { error: (i) => (i.code === 'invalid_type' ? 'must be a JSON object' : undefined) },
  )
  .meta({ id: 'Event' });
export type V1Event = z.infer<typeof V1Event>;

/** What the route parses an event with: V1Event, then its dimensions and props checked and normalized. */
export const CheckedEvent = V1Event.transform((event, ctx) => ({ event, dimensions: parseDimensions(event, ctx) }));

/** The body's shape; each event is checked on its own (V1Event). */
export const EventsBody = z
  .object(
    {
      events: z
        .array(z.unknown(), { error: 'must be an array of events' })
        .min(1, 'must hold at least one event')
        .max(MAX_EVENTS, `must hold at most ${MAX_EVENTS} events; split the batch`)
        .meta({ override: { items: { $ref: '#/components/schemas/Event' } } }),
    },
    { error: 'must be a JSON object {"events": [...]}' },
  )
  .meta({ id: 'EventsBody' });

export const Rejection = z
  .object({
    index: z.int().nonnegative().meta({ description: 'Position of the event in events.' }),
    code: z.string().meta({
      description:
        'missing, invalid_type, invalid_format, invalid_value, out_of_range, unknown_field, not_an_object, invalid_time, too_old, too_far_ahead',
      example: 'too_old',
    }),
    message: z.string(),
    field: z.string().nullable().meta({
      description: 'The offending field (props.<name> for one property); null when the event itself is wrong.',
    }),
  })
  .meta({ id: 'Rejection' });
export type Rejection = z.infer<typeof Rejection>;

export const EventsResponse = z
  .object({
    accepted: z.int().nonnegative().meta({ description: 'Events stored by this request.' }),
    duplicates: z.int().nonnegative().meta({ description: 'Valid events whose site, id and time were already stored.' }),
    rejected: z.array(Rejection),
    bots: z
      .int()
      .positive()
      .optional()
      .meta({ description: 'Events sent without `user` by a bot or crawler (by its user agent): dropped, neither stored nor refused. Absent when none.' }),
  })
  .meta({ id: 'EventsResponse' });
export type EventsResponse = z.infer<typeof EventsResponse>;

/** Why one event was refused, from its first zod issue; `event` as sent tells a missing field from one of the wrong type. */
export function rejectionOf(index: number, issues: z.core.$ZodIssue[], event: unknown): Rejection {
  const issue = issues[0]!;
  // A property's issue is at ['props', name]: its field is props.<name>.
  const field = typeof issue.path[0] === 'string' ? issue.path.join('.') : null;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return { index, code: 'unknown_field', message: `${key} is not a field of an event`, field: key };
  }
  if (field === null) return { index, code: 'not_an_object', message: 'the event must be a JSON object', field: null };
  const custom = issue.code === 'custom' ? (issue.params as { code?: string } | undefined)?.code : undefined;
  const code =
    custom ??
    (issue.code === 'invalid_type'
      ? (event as Record<string, unknown>)[issue.path[0] as string] === undefined
        ? 'missing'
        : 'invalid_type'
      : issue.code === 'too_small' || issue.code === 'too_big'
        ? 'out_of_range'
        : issue.code === 'invalid_format'
          ? 'invalid_format'
          : 'invalid_value');
  return { index, code, message: `${field} ${issue.message}`, field };
}
