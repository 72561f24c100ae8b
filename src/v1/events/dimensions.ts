import { z } from 'zod';
import {
  PROP_NAME_PATTERN,
  PROP_NAME_RULE,
  PROP_VALUE_MAX_CHARS,
  PROPS_MAX_KEYS,
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
  if (text.includes('\0')) return NUL_MESSAGE;
  const bad = UNSTORABLE.exec(text)?.[0];
  if (bad === undefined) return undefined;
  const code = `U+${bad.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  return bad.length === 1 && !/\p{Cs}/u.test(bad)
    ? `must not contain control characters (U+0000–U+001F, U+007F–U+009F): it holds ${code}`
    : `must be valid Unicode: it holds a lone surrogate (${code})`;
}
const UNSTORABLE = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;

/** A refinement of a text field: textProblem as its issue. */
const storable = (text: string, ctx: z.RefinementCtx): void => {
  const problem = textProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

const issue = (ctx: z.RefinementCtx, message: string, code: string, path?: string[]): never => {
  ctx.addIssue({ code: 'custom', message, params: { code }, ...(path ? { path } : {}) });
  return z.NEVER;
};

/**
 * A dimension: a string (or null), checked, then `normalize`d; "" and null come out
 * undefined (absent). `rule` is the message of a value `normalize` refuses.
 */
function dimension(opts: {
  max: number;
  normalize?: (text: string) => string | undefined;
  rule?: string;
  /** The pattern of what normalize takes, for the OpenAPI document ("" included). */
  pattern?: string;
  description: string;
  example: string;
}) {
  const { normalize, rule } = opts;
  return z
    .string({ error: 'must be a string' })
    .max(opts.max, `must be at most ${opts.max} characters`)
    .superRefine(storable)
    .nullable()
    .transform((text, ctx): string | undefined => {
      if (text === null || text === '') return undefined;
      if (normalize === undefined) return text;
      return normalize(text) ?? issue(ctx, rule ?? 'is invalid', 'invalid_format');
    })
    .meta({
      description: `${opts.description} Optional; "" and null mean absent.`,
      example: opts.example,
      override: { type: ['string', 'null'], maxLength: opts.max, ...(opts.pattern ? { pattern: opts.pattern } : {}) },
    })
    .optional();
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

const Referrer = dimension({
  max: REFERRER_MAX_CHARS,
  normalize: referrerHost,
  rule: 'must be a URL with a host (https://example.com/page) or a host (example.com)',
  description: `Where the visitor came from: a URL or a host (at most ${REFERRER_MAX_CHARS} characters), stored as its host, lowercase, without port or leading "www.".`,
  example: 'https://www.google.com/',
});

const utm = (what: string, example: string) =>
  dimension({ max: UTM_MAX_CHARS, description: `${what} (at most ${UTM_MAX_CHARS} characters), stored as sent.`, example });

const Country = dimension({
  max: 2,
  normalize: (text) => (/^[a-z]{2}$/i.test(text) ? text.toUpperCase() : undefined),
  rule: 'must be an ISO 3166-1 alpha-2 country code: two letters, such as DE',
  pattern: '^([A-Za-z]{2})?$',
  description: 'ISO 3166-1 alpha-2 country code, in any case; stored uppercase.',
  example: 'DE',
});

const Device = dimension({
  max: 32,
  normalize: (text) => {
    const lower = text.toLowerCase();
    return DEVICE_PATTERN.test(lower) ? lower : undefined;
  },
  rule: 'must be a device type such as desktop, mobile or tablet: a letter, then letters, digits, "_" or "-", at most 32',
  pattern: '^([A-Za-z][A-Za-z0-9_-]{0,31})?$',
  description: 'desktop, mobile, tablet or another short word (a letter, then letters, digits, "_" or "-", at most 32); stored lowercase.',
  example: 'mobile',
});

const agent = (what: string, example: string) =>
  dimension({ max: AGENT_MAX_CHARS, description: `${what} (at most ${AGENT_MAX_CHARS} characters), stored as sent.`, example });

/** The standard dimensions' fields of an event, by name. */
export const DIMENSION_FIELDS = {
  referrer: Referrer,
  utm_source: utm('utm_source of the landing URL', 'newsletter'),
  utm_medium: utm('utm_medium', 'email'),
  utm_campaign: utm('utm_campaign', 'black-friday'),
  utm_content: utm('utm_content', 'header-link'),
  utm_term: utm('utm_term', 'analytics'),
  country: Country,
  device: Device,
  browser: agent('The browser', 'Firefox'),
  os: agent('The operating system', 'Android'),
} satisfies Record<StandardDimension, z.ZodType>;

/**
 * `props`: an object of string values, as the JSON text the insert sends (undefined:
 * absent). A property whose value is "" is absent, as an empty dimension is; an object
 * left without properties is no props at all.
 */
export const Props = z
  .unknown()
  .transform((value, ctx): string | undefined => {
    if (value === null || value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      return issue(ctx, 'must be an object of string values', 'invalid_type');
    }
    const record = value as Record<string, unknown>;
    let count = 0;
    let empty = 0;
    for (const name in record) {
      if (++count > PROPS_MAX_KEYS) {
        return issue(ctx, `must hold at most ${PROPS_MAX_KEYS} properties`, 'out_of_range');
      }
      // A name is shown in the field at fault; a long one only by its start.
      const at = [name.length > 64 ? `${name.slice(0, 64)}…` : name];
      if (!PROP_NAME_PATTERN.test(name)) return issue(ctx, PROP_NAME_RULE, 'invalid_format', at);
      const v = record[name];
      if (typeof v !== 'string') return issue(ctx, 'must be a string', 'invalid_type', at);
      if (v.length > PROP_VALUE_MAX_CHARS) {
        return issue(ctx, `must be at most ${PROP_VALUE_MAX_CHARS} characters`, 'out_of_range', at);
      }
      const problem = textProblem(v);
      if (problem) return issue(ctx, problem, 'invalid_value', at);
      if (v === '') empty++;
    }
    if (count === empty) return undefined;
    if (empty === 0) return JSON.stringify(record);
    const kept: Record<string, string> = {};
    for (const name in record) if (record[name] !== '') kept[name] = record[name] as string;
    return JSON.stringify(kept);
  })
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
