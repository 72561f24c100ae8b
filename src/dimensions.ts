/**
 * The dimensions an event of POST /v1/events may carry besides its kind and page: the
 * standard ones, each a text column of events, and `props`, an object of string values
 * (events.props, jsonb). The one list in TypeScript (free of imports, as site.ts, so that
 * web/ may use it); the SQL one is headcount_dimensions(), which test/dimensions.test.ts
 * keeps in agreement with it.
 */
export const STANDARD_DIMENSIONS = [
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
  'source',
] as const;
export type StandardDimension = (typeof STANDARD_DIMENSIONS)[number];

/** A property's name: `props.<name>` in queries. */
export const PROP_NAME_PATTERN = /^[a-z][a-z0-9_.]{0,63}$/;
export const PROP_NAME_RULE =
  'must be a property name: a lowercase letter, then lowercase letters, digits, "_" or ".", at most 64';
export const PROPS_MAX_KEYS = 30;
export const PROP_VALUE_MAX_CHARS = 500;

/**
 * The dimensions of one event as stored: each absent one undefined (a null column), the
 * others normalized; `props` an object of string values, never empty.
 */
export type EventDimensions = { [D in StandardDimension]?: string | undefined } & {
  props?: Record<string, string> | undefined;
};
