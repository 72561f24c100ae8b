import { z } from 'zod';
import {
  type EventDimensions,
  PROP_NAME_PATTERN,
  PROP_NAME_RULE,
  PROP_VALUE_MAX_CHARS,
  PROPS_MAX_KEYS,
  STANDARD_DIMENSIONS,
  type StandardDimension,
} from '../../dimensions.js';
import { NUL_MESSAGE } from '../../http/params.js';

/*
 * The dimensions of one event of POST /v1/events (see src/dimensions.ts): each optional;
 * null and "" mean absent (trackers send document.referrer "" and empty utm_ parameters),
 * so a stored value is never empty. Values are labels that queries group by: besides NUL,
 * which PostgreSQL text cannot hold, control characters (C0, DEL, C1) and lone UTF-16
 * surrogates (which would reach the database as U+FFFD) are refused, and nothing is cut
 * short: a value over its limit is refused.
 */

export const REFERRER_MAX_CHARS = 2048;
export const UTM_MAX_CHARS = 500;
export const AGENT_MAX_CHARS = 100;
export const DEVICE_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

/** Why a value cannot be stored as sent, or undefined. */
export function textProblem(text: string): string | undefined {
  const bad = UNSTORABLE.exec(text)?.[0];
  if (bad === undefined) return undefined;
  if (text.includes('\0')) return NUL_MESSAGE;
  const code = `U+${bad.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  return bad.length === 1 && !/\p{Cs}/u.test(bad)
    ? `must not contain control characters (U+0000–U+001F, U+007F–U+009F): it holds ${code}`
    : `must be valid Unicode: it holds a lone surrogate (${code})`;
}
// eslint-disable-next-line no-control-regex -- finding control characters is its purpose
const UNSTORABLE = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;

/**
 * Whether `text` has more than `max` characters: Unicode code points, as PostgreSQL and
 * zod's max() count them (a UTF-16 pair is one). Counted only when its units exceed max.
 */
const longerThan = (text: string, max: number): boolean => text.length > max && [...text].length > max;

/** Refuses the event at `path` (`code`: the rejection's). */
const issue = (ctx: z.RefinementCtx, message: string, code: string, path: string[]): never => {
  ctx.addIssue({ code: 'custom', message, params: { code }, path });
  return z.NEVER;
};

/** A rule of one standard dimension: its limit, and how a value is stored (undefined: refused, with `rule`). */
interface DimensionRule {
  max: number;
  normalize?: (text: string) => string | undefined;
  rule?: string;
  /** The pattern of what normalize takes, for the OpenAPI document ("" included). */
  pattern?: string;
  description: string;
  example: string;
}

/** A scheme (`https:`, `android-app:`), not a host followed by its port (`localhost:8080`). */
const SCHEME = /^[a-z][a-z0-9+.-]*:(?!\d)/i;

/**
 * The host a referrer names, lowercase, without its port and a leading `www.`: from a URL
 * (`https://www.example.com:8443/page?q`, `android-app://com.example`) or a bare host with
 * or without a port and path (`example.com`, `localhost:8080/x`). Internationalized names
 * come out in their ASCII (punycode) form, as browsers send them. Undefined: no host.
 */
export function referrerHost(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(SCHEME.test(text) ? text : text.startsWith('//') ? `http:${text}` : `http://${text}`);
  } catch {
    return undefined;
  }
  // Opaque hosts (schemes other than http, https, ws, ftp) keep their case in URL.
  const host = url.hostname.toLowerCase();
  if (host === '') return undefined;
  return host.startsWith('www.') && host.length > 4 ? host.slice(4) : host;
}

const utm = (what: string, example: string): DimensionRule => ({
  max: UTM_MAX_CHARS,
  description: `${what} (at most ${UTM_MAX_CHARS} characters), stored as sent.`,
  example,
});
const agent = (what: string, example: string): DimensionRule => ({
  max: AGENT_MAX_CHARS,
  description: `${what} (at most ${AGENT_MAX_CHARS} characters), stored as sent.`,
  example,
});

const COUNTRY = /^[a-z]{2}$/i;

/** Each standard dimension's rule: what parseDimensions checks, and what the OpenAPI document says. */
const RULES: Record<StandardDimension, DimensionRule> = {
  referrer: {
    max: REFERRER_MAX_CHARS,
    normalize: referrerHost,
    rule: 'must be a URL with a host (https://example.com/page) or a host (example.com)',
    description: `Where the visitor came from: a URL or a host (at most ${REFERRER_MAX_CHARS} characters), stored as its host, lowercase, without port or leading "www.".`,
    example: 'https://www.google.com/',
  },
  utm_source: utm('utm_source of the landing URL', 'newsletter'),
  utm_medium: utm('utm_medium', 'email'),
  utm_campaign: utm('utm_campaign', 'black-friday'),
  utm_content: utm('utm_content', 'header-link'),
  utm_term: utm('utm_term', 'analytics'),
  country: {
    max: 2,
    normalize: (text) => (COUNTRY.test(text) ? text.toUpperCase() : undefined),
    rule: 'must be an ISO 3166-1 alpha-2 country code: two letters, such as DE',
    pattern: '^([A-Za-z]{2})?$',
    description: 'ISO 3166-1 alpha-2 country code, in any case; stored uppercase.',
    example: 'DE',
  },
  device: {
    max: 32,
    normalize: (text) => {
      if (DEVICE_PATTERN.test(text)) return text;
      const lower = text.toLowerCase();
      return DEVICE_PATTERN.test(lower) ? lower : undefined;
    },
    rule: 'must be a device type such as desktop, mobile or tablet: a letter, then letters, digits, "_" or "-", at most 32',
    pattern: '^([A-Za-z][A-Za-z0-9_-]{0,31})?$',
    description:
      'desktop, mobile, tablet or another short word (a letter, then letters, digits, "_" or "-", at most 32); stored lowercase.',
    example: 'mobile',
  },
  browser: agent('The browser', 'Firefox'),
  os: agent('The operating system', 'Android'),
  source: {
    max: UTM_MAX_CHARS,
    description:
      `Where the visitor came from, by name (at most ${UTM_MAX_CHARS} characters), stored as sent. ` +
      'Absent, the service derives it from utm_source, else referrer: a known one by its name ("Google", "Hacker News"), ' +
      'another as it is; "Direct / None" for an event of the tracker (sent without user) with neither.',
    example: 'Hacker News',
  },
};
const RULE_LIST = STANDARD_DIMENSIONS.map((name) => [name, RULES[name]] as const);

/**
 * The standard dimensions' fields of an event, for zod: known (an unknown field is
 * refused) and documented, but checked by parseDimensions, in one pass over the event:
 * a chain of zod checks and transforms per field cost ~10 µs per event with every
 * dimension (bench/dimensions.ts), most of it garbage.
 */
export const DIMENSION_FIELDS = Object.fromEntries(
  RULE_LIST.map(([name, r]) => [
    name,
    z
      .unknown()
      .meta({
        description: `${r.description} Optional; "" and null mean absent.`,
        example: r.example,
        override: { type: ['string', 'null'], maxLength: r.max, ...(r.pattern ? { pattern: r.pattern } : {}) },
      })
      .optional(),
  ]),
) as Record<StandardDimension, z.ZodOptional<z.ZodUnknown>>;

/**
 * The standard dimensions and props of an event that zod found otherwise valid, as
 * stored (undefined: it has none), or its first problem as an issue at the field.
 */
export function parseDimensions(event: Record<string, unknown>, ctx: z.RefinementCtx): EventDimensions | undefined {
  let dims: EventDimensions | undefined;
  for (const [name, r] of RULE_LIST) {
    const value = event[name];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') return issue(ctx, 'must be a string', 'invalid_type', [name]);
    if (longerThan(value, r.max)) return issue(ctx, `must be at most ${r.max} characters`, 'out_of_range', [name]);
    const problem = textProblem(value);
    if (problem) return issue(ctx, problem, 'invalid_value', [name]);
    const stored = r.normalize ? r.normalize(value) : value;
    if (stored === undefined) return issue(ctx, r.rule ?? 'is invalid', 'invalid_format', [name]);
    (dims ??= {})[name] = stored;
  }
  const props = event.props === undefined ? undefined : propsOf(event.props, ctx);
  if (props !== undefined) (dims ??= {}).props = props;
  return dims;
}

/**
 * `props` as stored (undefined: absent), or an issue. A property whose value is "" is
 * absent, as an empty dimension is; an object left without properties is no props at all.
 */
function propsOf(value: unknown, ctx: z.RefinementCtx): Record<string, string> | undefined {
  if (value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    return issue(ctx, 'must be an object of string values', 'invalid_type', ['props']);
  }
  const record = value as Record<string, unknown>;
  let count = 0;
  let empty = 0;
  for (const name in record) {
    if (++count > PROPS_MAX_KEYS) return issue(ctx, `must hold at most ${PROPS_MAX_KEYS} properties`, 'out_of_range', ['props']);
    // A name is shown in the field at fault; a long one only by its start.
    const at = ['props', name.length > 64 ? `${name.slice(0, 64)}…` : name];
    if (!PROP_NAME_PATTERN.test(name)) return issue(ctx, PROP_NAME_RULE, 'invalid_format', at);
    const v = record[name];
    if (typeof v !== 'string') return issue(ctx, 'must be a string', 'invalid_type', at);
    if (longerThan(v, PROP_VALUE_MAX_CHARS))
      return issue(ctx, `must be at most ${PROP_VALUE_MAX_CHARS} characters`, 'out_of_range', at);
    const problem = textProblem(v);
    if (problem) return issue(ctx, problem, 'invalid_value', at);
    if (v === '') empty++;
  }
  if (count === empty) return undefined;
  if (empty === 0) return record as Record<string, string>;
  const kept: Record<string, string> = {};
  for (const name in record) if (record[name] !== '') kept[name] = record[name] as string;
  return kept;
}

/** `props`, for zod: known and documented, checked by parseDimensions. */
export const PROPS_FIELD = z
  .unknown()
  .meta({
    description:
      `Properties of the event: an object of string values, at most ${PROPS_MAX_KEYS}, names ${PROP_NAME_PATTERN.source}, ` +
      `values at most ${PROP_VALUE_MAX_CHARS} characters (a value "" is absent). Queries name them props.<name>. Optional; null means absent.`,
    example: { plan: 'pro', ab_test: 'b' },
    override: {
      type: ['object', 'null'],
      maxProperties: PROPS_MAX_KEYS,
      propertyNames: { pattern: PROP_NAME_PATTERN.source },
      additionalProperties: { type: 'string', maxLength: PROP_VALUE_MAX_CHARS },
    },
  })
  .optional();
