import { badRequest } from '../http/errors.js';
import type { RangeBound } from './params.js';

const MINUTE_MS = 60_000;

/**
 * `period` of GET /v1/stats: `<N>m`, `<N>h`, `<N>d` (the last N minutes, hours or days
 * up to the end of the current minute), `<N>mo` (this local month so far and the N - 1
 * before it), `today`, `yesterday`, `month` (this local month so far). N is 1-9999.
 */
export const PERIOD_PATTERN = /^(?:([1-9][0-9]{0,3})(m|h|d|mo)|today|yesterday|month)$/;
export const PERIOD_RULE =
  'must be 5m, 30m, 24h, 7d, 30d, 12mo (any whole number from 1 to 9999 before m, h, d or mo), today, yesterday or month';

const UNIT_MS = { m: MINUTE_MS, h: 60 * MINUTE_MS, d: 24 * 60 * MINUTE_MS } as const;

const floorMinute = (ms: number): number => Math.floor(ms / MINUTE_MS) * MINUTE_MS;
const iso = (ms: number): string => new Date(ms).toISOString();

const OFFSET = /^([+-])(\d{2}):(\d{2})$/;
const dateFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * The local calendar date (YYYY-MM-DD) of instant `ms` in `timezone`: an offset ±HH:MM,
 * or an IANA name read with the runtime's zone data (Intl). The database then says when
 * that date starts (headcount_day_start), with its own.
 */
function localDate(ms: number, timezone: string): string {
  const offset = OFFSET.exec(timezone);
  if (offset) {
    const east = (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3])) * MINUTE_MS;
    return iso(ms + east).slice(0, 10);
  }
  let format = dateFormats.get(timezone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch {
      throw badRequest('invalid_query', `timezone ${timezone} is not a time zone of the IANA database`, [
        { parameter: 'timezone', message: `${timezone} is not a time zone of the IANA database` },
      ]);
    }
    // Bounded: only names Intl knows get here (about 600, and their aliases).
    dateFormats.set(timezone, format);
  }
  return format.format(ms);
}

/** A calendar date moved by whole days or months (to the first of a month when by months). */
function shiftDate(date: string, by: { days: number } | { months: number }): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return 'days' in by ? iso(Date.UTC(y, m - 1, d + by.days)).slice(0, 10) : iso(Date.UTC(y, m - 1 + by.months, 1)).slice(0, 10);
}

/**
 * The range `period` stands for at `nowMs` in `timezone`, as the bounds from/to would
 * give it. Rolling periods end at the end of the current minute (`to` is the next whole
 * minute, so an event of this minute is in) and are exactly N units long: `5m` is the
 * five minute buckets up to and including the current one, `7d` 7 × 24 hours whatever the
 * zone's clock changes. Calendar periods start at a local midnight (a date bound).
 */
export function periodRange(period: string, timezone: string, nowMs: number): { from: RangeBound; to: RangeBound } {
  const end = floorMinute(nowMs) + MINUTE_MS;
  const today = (): string => localDate(nowMs, timezone);
  const m = PERIOD_PATTERN.exec(period);
  if (!m) throw new Error(`periodRange: ${period} ${PERIOD_RULE}`);
  const [, n, unit] = m;
  if (unit === 'mo')
    return { from: { date: shiftDate(today().slice(0, 8) + '01', { months: 1 - Number(n) }) }, to: { instantMs: end } };
  if (unit) return { from: { instantMs: end - Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS] }, to: { instantMs: end } };
  if (period === 'today') return { from: { date: today() }, to: { instantMs: end } };
  if (period === 'yesterday') return { from: { date: shiftDate(today(), { days: -1 }) }, to: { date: today() } };
  return { from: { date: today().slice(0, 8) + '01' }, to: { instantMs: end } }; // month
}

const invalid = (parameter: string, message: string) =>
  badRequest('invalid_query', `${parameter} ${message}`, [{ parameter, message }]);

/**
 * The range of a GET /v1/stats request, in one place: `from` and `to`, each floored to
 * its minute (the finest sketches are per minute; meta.from and meta.to report what was
 * answered), or `period` resolved at `nowMs` in the request's time zone. Exactly one of
 * the two ways must be used.
 */
export function statsRange(
  q: { from?: RangeBound | undefined; to?: RangeBound | undefined; period?: string | undefined },
  timezone: string,
  nowMs: number,
): { from: RangeBound; to: RangeBound } {
  if (q.period !== undefined) {
    if (q.from !== undefined || q.to !== undefined) {
      throw invalid('period', `cannot be given with ${q.from !== undefined ? 'from' : 'to'}: give either period, or from and to`);
    }
    return periodRange(q.period, timezone, nowMs);
  }
  if (q.from === undefined) throw invalid('from', 'is required (or give period instead of from and to)');
  if (q.to === undefined) throw invalid('to', 'is required (or give period instead of from and to)');
  const floor = (b: RangeBound): RangeBound => ('instantMs' in b ? { instantMs: floorMinute(b.instantMs) } : b);
  const [from, to] = [floor(q.from), floor(q.to)];
  if ('instantMs' in q.from && 'instantMs' in q.to && 'instantMs' in from && 'instantMs' in to) {
    if (q.from.instantMs < q.to.instantMs && from.instantMs === to.instantMs) {
      throw invalid(
        'to',
        `is in the same minute as from: both are floored to the minute (${iso(from.instantMs)}), which leaves nothing; ask for at least up to the next minute`,
      );
    }
  }
  return { from, to };
}
