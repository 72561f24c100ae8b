import { z } from 'zod';
import type { Sql } from '../db/client.js';
import { stringOr } from '../http/params.js';
import { SITE_PATTERN, SITE_RULE } from '../site.js';
import { isNonIanaZoneName, parseIsoDate, parseIsoTimestamp } from '../time.js';
import { PERIOD_PATTERN, PERIOD_RULE } from './range.js';

export const KIND_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const KIND_RULE = 'must be an event kind: a lowercase letter, then lowercase letters, digits or "_", at most 63';
export const PAGE_MAX_CHARS = 2048;

const once = (what: string) => stringOr(`must be given once, as ${what}`);

/** `site` of a /v1 query; absent: the default site. */
export const siteParam = () =>
  once('a site name').regex(SITE_PATTERN, SITE_RULE).meta({ description: 'The site; default DEFAULT_SITE.', example: 'default' });

/**
 * `from` / `to` of a /v1 range: an ISO 8601 instant that carries its zone, or a calendar
 * date, which the database reads as the local midnight in the request's time zone.
 */
export type RangeBound = { instantMs: number } | { date: string };

const ZONED = /(?:[zZ]|[+-]\d{2}:?\d{2})$/;

export const rangeBoundParam = (description: string) =>
  once('an ISO 8601 instant or a date')
    .transform((text, ctx): RangeBound => {
      if (parseIsoDate(text) !== null && /^\d{4}-\d{2}-\d{2}$/.test(text)) return { date: text };
      const ms = parseIsoTimestamp(text);
      if (ms === null || !ZONED.test(text) || !/[Tt ]/.test(text)) {
        ctx.addIssue({
          code: 'custom',
          message: `must be an ISO 8601 instant with its zone (2026-11-23T10:00:00Z, 2026-11-23T10:00:00+05:30) or a date (2026-11-23), not ${JSON.stringify(text)}`,
        });
        return z.NEVER;
      }
      return { instantMs: ms };
    })
    .meta({ description, example: '2026-11-23' });

/** `period` of GET /v1/stats: a range relative to now (see periodRange). */
export const periodParam = () =>
  once('a period')
    .regex(PERIOD_PATTERN, PERIOD_RULE)
    .meta({
      description:
        'Instead of from and to: 5m, 30m, 24h, 7d, 30d (the last N minutes, hours or days up to the end of the current minute: ' +
        '[next minute - N units, next minute)), 12mo (this month so far and the 11 before it), today, yesterday or month ' +
        "(this month so far); months and days in the request's time zone. N is any whole number from 1 to 9999.",
      example: '7d',
    });

/**
 * `timezone`: an IANA name or an offset. Names the IANA database does not have are refused
 * here (isNonIanaZoneName: the server's localtime, Factory, posixrules, posix/…, right/…
 * too); the rest is checked by the database (headcount_zone), which knows what it can use.
 */
export const timezoneParam = () =>
  zoneChecks(once('a time zone')).meta({
    description:
      "An IANA time zone name (Asia/Kolkata, America/New_York; aliases such as Asia/Calcutta too) or an offset ±HH:MM (+05:30); default the site's time zone (PATCH /v1/sites/{site}), else UTC. The server-only names localtime, Factory, posixrules, posix/… and right/… are refused.",
    example: 'Asia/Kolkata',
  });

/** A time zone in a JSON body (a site's default), checked as timezoneParam. */
export const timezoneField = () =>
  zoneChecks(z.string({ error: 'must be a string: an IANA time zone name or an offset ±HH:MM' }));

const zoneChecks = (text: z.ZodString) =>
  text
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .refine((zone) => !isNonIanaZoneName(zone), {
      error: (issue) =>
        `timezone ${String(issue.input)} is not a time zone of the IANA database (an IANA name such as Asia/Kolkata, or an offset such as +05:30)`,
    });

/** The SQL expression of a range bound: an instant, or the local start of a date in `timezone`. */
export const boundSql = (sql: Sql, bound: RangeBound, timezone: string) =>
  'date' in bound
    ? sql`headcount_day_start(${bound.date}::date, ${timezone})`
    : sql`${new Date(bound.instantMs).toISOString()}::timestamptz`;
