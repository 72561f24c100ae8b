import { z } from 'zod';
import { SITE_PATTERN, SITE_RULE } from '../../site.js';
import { timezoneField } from '../params.js';

/** Per site: at most this many declared properties, and as many declared combinations. */
export const MAX_PROPS = 10;
export const MAX_COMBINATIONS = 10;

export const PROP_NAME_PATTERN = /^[a-z][a-z0-9_.]{0,63}$/;
const PROP_NAME_RULE = 'must be a property name: a lowercase letter, then lowercase letters, digits, "_" or ".", at most 64';

/** The dimensions a declared combination may join (not page or kind: those are rolled up with every event). */
export const COMBINABLE = [
  'referrer',
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_content',
  'utm_term',
  'country',
  'device',
  'browser',
  'os',
] as const;

const isDimension = (name: string): boolean =>
  (COMBINABLE as readonly string[]).includes(name) || (name.startsWith('props.') && PROP_NAME_PATTERN.test(name.slice(6)));

/**
 * The `dims` of a declared combination in headcount_rollups (and in the rollup rows): its
 * dimension names sorted (code unit order) and joined by commas, `country,device`.
 */
export const combinationDims = (names: readonly string[]): string => [...names].sort().join(',');

/** The `dims` of a declared property in headcount_rollups: `props.<name>`. */
export const propDims = (name: string): string => `props.${name}`;

const unique = <T>(items: readonly T[], key: (item: T) => string): boolean => new Set(items.map(key)).size === items.length;

const Combination = z
  .array(
    z.string({ error: 'must be a dimension name' }).refine(isDimension, {
      error: `must be one of ${COMBINABLE.join(', ')} or props.<name>`,
    }),
    { error: 'must be a list of 2 or 3 dimension names' },
  )
  .min(2, 'must name 2 or 3 dimensions')
  .max(3, 'must name 2 or 3 dimensions')
  .refine((names) => unique(names, (n) => n), 'must not name the same dimension twice')
  .meta({ example: ['country', 'device'] });

/** What POST /v1/sites and PATCH /v1/sites/{site} may set. */
const settings = {
  timezone: timezoneField()
    .nullable()
    .optional()
    .meta({ description: 'The default time zone of its stats and exports (null: UTC).', example: 'Europe/Warsaw' }),
  props: z
    .array(z.string({ error: 'must be a property name' }).regex(PROP_NAME_PATTERN, PROP_NAME_RULE), {
      error: 'must be a list of property names',
    })
    .max(MAX_PROPS, `must list at most ${MAX_PROPS} properties`)
    .refine((names) => unique(names, (n) => n), 'must not name the same property twice')
    .optional()
    .meta({
      description: `The properties (props.<name>) rolled up per hour and day, at most ${MAX_PROPS}; replaces the list.`,
      example: ['plan'],
    }),
  combinations: z
    .array(Combination, { error: 'must be a list of combinations (lists of 2 or 3 dimension names)' })
    .max(MAX_COMBINATIONS, `must list at most ${MAX_COMBINATIONS} combinations`)
    .refine((list) => unique(list, combinationDims), 'must not list the same combination twice (in any order)')
    .optional()
    .meta({
      description: `Combinations of 2 or 3 dimensions rolled up together, at most ${MAX_COMBINATIONS}; replaces the list.`,
      example: [['country', 'device']],
    }),
};

/** `PATCH /v1/sites/{site}`: what is given is set, the rest is left as it is. */
export const SiteSettings = z
  .strictObject(settings, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : undefined),
  })
  .meta({ id: 'SiteSettings' });
export type SiteSettings = z.infer<typeof SiteSettings>;

/** `POST /v1/sites` */
export const NewSite = z
  .strictObject(
    { site: z.string({ error: 'is required: a site name' }).regex(SITE_PATTERN, SITE_RULE), ...settings },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : undefined) },
  )
  .meta({ id: 'NewSite' });
export type NewSite = z.infer<typeof NewSite>;

/** The GET routes take no query parameters: one given is refused rather than ignored. */
export const NoQuery = z.strictObject(
  {},
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown parameter ${issue.keys.join(', ')}` : undefined) },
);

export const SitePath = z.object({ site: z.string().regex(SITE_PATTERN, SITE_RULE).meta({ example: 'shop' }) });

export const Site = z
  .object({
    site: z.string().meta({ example: 'shop' }),
    timezone: z.string().nullable().meta({ description: 'Its default time zone; null: UTC.' }),
    first_event: z
      .string()
      .nullable()
      .meta({ description: 'The time of its earliest event (null: none yet).', example: '2026-11-21T18:20:00.000Z' }),
    last_event: z.string().nullable().meta({ description: 'The time of its latest event.', example: '2026-11-22T02:00:00.000Z' }),
    events: z.int().nonnegative().meta({ description: 'Its events (the sum of their weights), acknowledged ones included.' }),
    props: z.array(z.string()).meta({ description: 'The properties it rolls up.', example: ['plan'] }),
    combinations: z
      .array(z.array(z.string()))
      .meta({ description: 'The combinations it rolls up.', example: [['country', 'device']] }),
  })
  .meta({ id: 'Site' });
export type Site = z.infer<typeof Site>;

export const SitesResponse = z.object({ data: z.array(Site) }).meta({ id: 'SitesResponse' });
