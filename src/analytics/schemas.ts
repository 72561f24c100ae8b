import { z } from 'zod';
import { enumParam, epochParam, flagParam, textParam } from '../http/params.js';

export const AnalyticsEvent = z.enum(['click', 'impression']);
export type AnalyticsEvent = z.infer<typeof AnalyticsEvent>;

/**
 * `POST /analytics?timestamp=<ms>&user=<id>&event=click|impression` (seeds 001, 002),
 * or with a bare `&click` / `&impression` flag instead of `event` (seed 004).
 */
export const AnalyticsWriteQuery = z
  .object({
    timestamp: epochParam('milliseconds'),
    user: textParam('a user id', 256),
    event: enumParam(['click', 'impression']).optional(),
    click: flagParam().optional(),
    impression: flagParam().optional(),
  })
  .transform((q, ctx) => {
    const given: AnalyticsEvent[] = [
      ...(q.event ? [q.event] : []),
      ...(q.click ? (['click'] as const) : []),
      ...(q.impression ? (['impression'] as const) : []),
    ];
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['event'],
        message:
          given.length === 0
            ? 'is required: event=click or event=impression (or a bare &click or &impression)'
            : 'must be given once: one of event=…, &click, &impression',
      });
      return z.NEVER;
    }
    return { timestampMs: q.timestamp, user: q.user, event: given[0]! };
  });
export type AnalyticsWriteQuery = z.infer<typeof AnalyticsWriteQuery>;

/** `GET /analytics?timestamp=<ms>`: the GMT clock hour holding `timestamp`. */
export const AnalyticsReadQuery = z.object({
  timestamp: epochParam('milliseconds'),
});
export type AnalyticsReadQuery = z.infer<typeof AnalyticsReadQuery>;
