import { z } from 'zod';
import { type EpochUnit, eventTimeProblem, floorDay, parseIsoDate, RETENTION_DAYS, RETENTION_MS } from '../time.js';

/**
 * Building blocks for query-string parameters. A parameter given twice arrives as an
 * array: it is refused by name rather than silently picking one value.
 */
const single = (what: string) =>
  z.string({
    error: (issue) => (issue.input === undefined ? 'is required' : `must be given once, as ${what}`),
  });

export const textParam = (what: string, maxLength: number) =>
  single(what).min(1, 'must not be empty').max(maxLength, `must be at most ${maxLength} characters`);

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
