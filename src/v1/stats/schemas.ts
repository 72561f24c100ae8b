import { z } from 'zod';
import { enumParam, intParam, stringOr } from '../../http/params.js';
import { KIND_PATTERN, KIND_RULE, PAGE_MAX_CHARS, periodParam, rangeBoundParam, siteParam, timezoneParam } from '../params.js';

/** What a row of GET /v1/stats carries: metrics= (default users,events). */
export const EVENT_METRICS = ['users', 'events'] as const;
export const VISIT_METRICS = ['visits', 'bounce_rate', 'visit_duration', 'pageviews_per_visit'] as const;
export const METRICS = [...EVENT_METRICS, ...VISIT_METRICS] as const;
export type Metric = (typeof METRICS)[number];

export const GRANULARITIES = ['minute', 'hour', 'day', 'week', 'month', 'total'] as const;
export const Granularity = z.enum(GRANULARITIES);
export type Granularity = z.infer<typeof Granularity>;

/** A parameter that may be repeated (`kind=a&kind=b`): always a list. */
const repeatable = <S extends z.ZodString>(one: S, description: string) =>
  z
    .union([one, z.array(one)], { error: 'must be a string' })
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .meta({ description });

/** `GET /v1/stats` */
export const StatsQuery = z.strictObject(
  {
    site: siteParam().optional(),
    from: rangeBoundParam(
      'Start of the range (inclusive): an RFC 3339 instant (floored to its minute), or a date read in timezone. Required unless period is given.',
    ).optional(),
    to: rangeBoundParam(
      'End of the range (exclusive): an RFC 3339 instant (floored to its minute), or a date read in timezone. Required unless period is given.',
    ).optional(),
    period: periodParam().optional(),
    granularity: enumParam(GRANULARITIES)
      .optional()
      .meta({ description: 'Bucket size in the local calendar of timezone (weeks start on Monday); default total.' }),
    timezone: timezoneParam().optional(),
    kind: repeatable(
      stringOr('must be a string').regex(KIND_PATTERN, KIND_RULE),
      'Only events of these kinds (repeat the parameter for several).',
    ).optional(),
    page: repeatable(
      stringOr('must be a string').max(PAGE_MAX_CHARS, `must be at most ${PAGE_MAX_CHARS} characters`),
      'Only events of these pages (repeat the parameter for several).',
    ).optional(),
    group_by: stringOr('must be given once, as one or two dimensions')
      .max(200, 'must be at most 200 characters')
      .optional()
      .meta({
        description:
          'One dimension or two, comma-separated (country,device): kind, page, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os, source or props.<name>. One row per bucket and group, for the top `limit` groups by distinct users over the range; a row without a value shows null.',
        example: 'country',
      }),
    filter: repeatable(
      stringOr('must be a string').max(4096, 'must be at most 4096 characters'),
      'A filter, repeatable (all must hold): <dimension><op><values>, op == (is one of), != (is none of), ^= (starts with), *= (contains); values separated by | (\\| and \\\\ for | and \\ in a value). An empty value in == or != stands for "no value". Example: country==DE|FR, page^=/blog/.',
    ).optional(),
    compare: enumParam(['previous_period'])
      .optional()
      .meta({
        description:
          'previous_period: each row also carries the users and events of the same bucket and group in the period of the same length just before from.',
      }),
    metrics: stringOr('must be given once, as a comma-separated list')
      .max(200, 'must be at most 200 characters')
      .transform((v, ctx) => {
        const names = v.split(',').map((m) => m.trim());
        const unknown = names.find((m) => !(METRICS as readonly string[]).includes(m));
        if (unknown !== undefined) {
          ctx.addIssue({ code: 'custom', message: `${unknown || '(empty)'} is not a metric: ${METRICS.join(', ')}` });
          return z.NEVER;
        }
        return [...new Set(names)] as Metric[];
      })
      .optional()
      .meta({
        description:
          'What each row carries, comma-separated: users, events, visits, bounce_rate, visit_duration (mean and median seconds), pageviews_per_visit; default users,events. Visit metrics count a visit in the bucket where it starts; their filters and group_by name what it starts with (referrer, utm_*, country, device, browser, os, source, entry_page) or exit_page.',
        example: 'users,visits,bounce_rate,visit_duration',
      }),
    limit: intParam(1, 1000).optional().meta({ description: 'With group_by: how many groups; default 10.' }),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown parameter ${issue.keys.join(', ')}` : undefined) },
);
export type StatsQuery = z.infer<typeof StatsQuery>;

/** The visit metrics of a row (metrics=visits,bounce_rate,visit_duration,pageviews_per_visit). */
const VisitFigures = z.object({
  visits: z.int().nonnegative().optional().meta({ description: 'Visits that start in the bucket.' }),
  bounce_rate: z
    .number()
    .min(0)
    .max(1)
    .nullable()
    .optional()
    .meta({ description: 'The share of those visits with one page view and no other event; null without visits.' }),
  visit_duration: z
    .object({ mean: z.number().nonnegative().nullable(), median: z.number().nonnegative().nullable() })
    .optional()
    .meta({ description: 'Seconds from a visit\'s first event to its last: mean and (exact) median; null without visits.' }),
  pageviews_per_visit: z.number().nonnegative().nullable().optional().meta({ description: 'Page views / visits; null without visits.' }),
});

export const StatsRow = z
  .looseObject({
    bucket: z.string().meta({
      description: 'Local start of the bucket with its UTC offset (the first may start before from).',
      example: '2026-11-23T00:00:00+05:30',
    }),
    users: z
      .int()
      .nonnegative()
      .optional()
      .meta({ description: 'Distinct users in the bucket (a union of sketches, never a sum).' }),
    events: z.int().nonnegative().optional().meta({ description: 'Events in the bucket (the sum of their weights).' }),
    ...VisitFigures.shape,
    previous: z
      .looseObject({ users: z.int().nonnegative().optional(), events: z.int().nonnegative().optional(), ...VisitFigures.shape })
      .optional()
      .meta({ description: 'With compare=previous_period: the same bucket number and group in the previous period.' }),
  })
  .meta({
    id: 'StatsRow',
    description: 'With group_by, each dimension grouped by is a key of the row (country, props.plan) holding its value, or null.',
  });

export const StatsResponse = z
  .object({
    meta: z.object({
      site: z.string(),
      from: z.string().meta({ example: '2026-11-23T00:00:00+05:30' }),
      to: z.string().meta({ example: '2026-11-30T00:00:00+05:30' }),
      timezone: z.string(),
      granularity: Granularity,
      approximate: z.boolean().meta({ description: 'Whether any count left exact (explicit) hll mode.' }),
      relative_standard_error: z.number().meta({ description: 'Of an approximate count: 1.04/√16384.' }),
      previous: z
        .object({ from: z.string(), to: z.string() })
        .optional()
        .meta({ description: 'With compare=previous_period: the previous period.' }),
    }),
    data: z.array(StatsRow),
  })
  .meta({ id: 'StatsResponse' });
export type StatsResponse = z.infer<typeof StatsResponse>;
