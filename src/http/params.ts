import { z } from 'zod';
import {
  type EpochUnit,
  eventTimeProblem,
  floorDay,
  parseIsoDate,
  parseIsoTimestamp,
  RETENTION_DAYS,
  RETENTION_MS,
  timeWindowProblem,
} from '../time.js';

/**
 * Building blocks for query-string parameters. A parameter given twice arrives as an
 * array: it is refused by name rather than silently picking one value.
 */
const single = (what: string) => stringOr(`must be given once, as ${what}`);

/** A string; anything else present is refused with `otherwise`. */
export const stringOr = (otherwise: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? 'is required' : otherwise) });

/** An ISO 8601 date-time string (see parseIsoTimestamp) inside the event window, or why not. */
export function checkIsoTimestamp(text: string, opts: { pageViewKey?: boolean } = {}): { ms: number } | { problem: string } {
  const ms = parseIsoTimestamp(text, opts);
  if (ms === null) {
    const forms = opts.pageViewKey ? ' or YYYY-MM-DD_HH:MM' : '';
    return { problem: `must be an ISO 8601 date-time such as 2026-11-23T10:00:00Z${forms}, not ${JSON.stringify(text)}` };
  }
  const problem = timeWindowProblem(ms, Date.now());
  return problem ? { problem } : { ms };
}

/** zod transform: an ISO 8601 date-time string to epoch ms (see checkIsoTimestamp). */
export const toIsoTimestamp =
  (opts: { pageViewKey?: boolean } = {}) =>
  (text: string, ctx: z.RefinementCtx): number => {
    const checked = checkIsoTimestamp(text, opts);
    if ('problem' in checked) {
      ctx.addIssue({ code: 'custom', message: checked.problem });
      return z.NEVER;
    }
    return checked.ms;
  };

/** PostgreSQL text cannot hold U+0000: refused here, not by a failed batch. */
export const NUL_MESSAGE = 'must not contain NUL (\\u0000) characters';
export const hasNul = (text: string): boolean => text.includes('\0');

export const textParam = (what: string, maxLength: number) =>
  single(what)
    .min(1, 'must not be empty')
    .max(maxLength, `must be at most ${maxLength} characters`)
    .refine((text) => !hasNul(text), NUL_MESSAGE);

/** An epoch time in `unit`, inside the accepted event window; returns epoch ms. */
export const epochParam = (unit: EpochUnit) =>
  single(`a number of ${unit}`)
    .regex(/^\d{1,16}(\.\d{1,6})?$/, `must be a non-negative number of ${unit} since the Unix epoch`)
    .transform(Number)
    .superRefine((value, ctx) => {
      const problem = eventTimeProblem(value, unit, Date.now());
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform((value) => (unit === 'seconds' ? Math.round(value * 1000) : Math.round(value)));

/**
 * A GMT calendar day, `YYYY-MM-DD` or `YYYYMMDD`; returns the epoch ms of its midnight.
 * Days after today, or wholly before the retention window, are refused.
 */
export const dayParam = () =>
  single('a date').transform((text, ctx) => {
    const ms = parseIsoDate(text);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `must be a calendar date as YYYY-MM-DD or YYYYMMDD, not ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    const now = Date.now();
    if (ms > floorDay(now)) {
      ctx.addIssue({
        code: 'custom',
        message: `is ${text}, after today (${new Date(floorDay(now)).toISOString().slice(0, 10)} GMT)`,
      });
      return z.NEVER;
    }
    if (ms + 86_400_000 <= now - RETENTION_MS) {
      ctx.addIssue({
        code: 'custom',
        message: `is ${text}, before the ${RETENTION_DAYS}-day retention window: its events are gone`,
      });
      return z.NEVER;
    }
    return ms;
  });

/** An ISO 8601 date-time inside the accepted window; returns epoch ms. */
export const isoTimestampParam = () => single('an ISO 8601 date-time').transform(toIsoTimestamp());

/** A whole number in [min, max]. */
export const intParam = (min: number, max: number) =>
  single('a whole number')
    .regex(/^\d{1,9}$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

/** One of `values`. */
export const enumParam = <const T extends readonly [string, ...string[]]>(values: T) =>
  single(values.join(' or '))
    .pipe(z.enum(values, { error: `must be ${values.join(' or ')}` }))
    // The documented input is the string before the pipe: name its values.
    .meta({ override: { enum: [...values] } });

/** A bare flag such as `&click` (also `&click=1`, `&click=true`). */
export const flagParam = () =>
  single('a bare flag')
    .refine((v) => v === '' || v === '1' || v === 'true', 'is a flag: give it bare (e.g. &click), or =1 / =true')
    .transform(() => true);
