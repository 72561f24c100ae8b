/**
 * The page's filters: the `filter` parameters of /v1/stats (`<dimension><op><values>`,
 * values separated by `|`, `\|` and `\\` for `|` and `\` in a value), kept in the page's
 * URL in the same words so that a link or a reload restores them.
 */

import { PROP_NAME_PATTERN, STANDARD_DIMENSIONS, type StandardDimension } from '../src/dimensions.js';

/** A property's name, as events may carry it (`props.<name>`). */
export const PROP_NAME = PROP_NAME_PATTERN;

/** The most filters /v1/stats takes at once. */
export const MAX_FILTERS = 20;

export type Op = '==' | '!=' | '^=' | '*=';

export interface Filter {
  dimension: string;
  op: Op;
  /** An empty value in `==` or `!=` stands for "no value". */
  values: string[];
}

const FILTER = /^([a-z][a-z0-9_.]*)(==|!=|\^=|\*=)([\s\S]*)$/;

/** The dimensions /v1/stats groups and filters by (besides `props.<name>`), as the page names them. */
const LABELS: Record<StandardDimension | 'kind' | 'page', string> = {
  kind: 'Kind',
  page: 'Page',
  referrer: 'Referrer',
  utm_source: 'UTM source',
  utm_medium: 'UTM medium',
  utm_campaign: 'Campaign',
  utm_content: 'UTM content',
  utm_term: 'UTM term',
  country: 'Country',
  device: 'Device',
  browser: 'Browser',
  os: 'OS',
  source: 'Source',
};
const DIMENSIONS: ReadonlySet<string> = new Set(['kind', 'page', ...STANDARD_DIMENSIONS]);

export const isDimension = (name: string): boolean =>
  DIMENSIONS.has(name) || (name.startsWith('props.') && PROP_NAME.test(name.slice(6)));

/** Values split on `|` not escaped, with `\|` and `\\` read as `|` and `\`. */
function splitValues(text: string): string[] {
  const values: string[] = [];
  let value = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) value += text[++i];
    else if (c === '|') {
      values.push(value);
      value = '';
    } else value += c;
  }
  values.push(value);
  return values;
}

const escapeValue = (value: string): string => value.replace(/[\\|]/g, (c) => `\\${c}`);

/** A filter as /v1/stats reads it, or undefined when it is not one the page can show. */
export function parseFilter(text: string): Filter | undefined {
  const m = FILTER.exec(text);
  if (!m || !isDimension(m[1]!)) return undefined;
  const op = m[2] as Op;
  const values = splitValues(m[3]!);
  if ((op === '^=' || op === '*=') && values.includes('')) return undefined;
  return { dimension: m[1]!, op, values };
}

export const formatFilter = (f: Filter): string => `${f.dimension}${f.op}${f.values.map(escapeValue).join('|')}`;

/** The filter a table row stands for: its dimension is this value (or has none: null). */
export const rowFilter = (dimension: string, value: string | null): Filter => ({
  dimension,
  op: '==',
  values: [value ?? ''],
});

export const dimensionLabel = (dimension: string): string =>
  (DIMENSIONS.has(dimension) ? LABELS[dimension as keyof typeof LABELS] : undefined) ??
  (dimension.startsWith('props.') ? `Property ${dimension.slice(6)}` : dimension);

/** How a value shows in a table or a chip: "(none)" for no value. */
export const valueLabel = (value: string | null): string => (value === null || value === '' ? '(none)' : value);

const OP_WORDS: Record<Op, string> = { '==': 'is', '!=': 'is not', '^=': 'starts with', '*=': 'contains' };

/** "Country is DE or FR", "Referrer is (none)". */
export const describeFilter = (f: Filter): string =>
  `${dimensionLabel(f.dimension)} ${OP_WORDS[f.op]} ${f.values.map(valueLabel).join(' or ')}`;

/**
 * The filters with `added` in place of any other filter on its dimension: a row clicked
 * means "only this value" (two `==` filters on one dimension would select nothing).
 */
export function withFilter(filters: readonly Filter[], added: Filter): Filter[] {
  const kept = filters.filter((f) => f.dimension !== added.dimension);
  return [...kept, added].slice(-MAX_FILTERS);
}
