import { DAY_MS, HOUR_MS } from '../../time.js';
import { badRequest } from '../../http/errors.js';
import type { RangeBound } from '../params.js';
import type { StatsRequest } from './queries.js';
import type { Granularity } from './schemas.js';

const MINUTE_MS = 60_000;

/** A bucket's length, at most (a month: 31 days is what makes the fewest; see bucketsIn). */
const BUCKET_MS: Record<Exclude<Granularity, 'total'>, number> = {
  minute: MINUTE_MS,
  hour: HOUR_MS,
  day: DAY_MS,
  week: 7 * DAY_MS,
  month: 28 * DAY_MS,
};

/** A bound as an instant: a date as its UTC midnight (its local one is within a day of it). */
const instantOf = (bound: RangeBound): number => ('date' in bound ? Date.parse(`${bound.date}T00:00:00Z`) : bound.instantMs);

/** About how many buckets of `granularity` [from, to) holds (a partial first one included). */
function bucketsIn(from: RangeBound, to: RangeBound, granularity: Granularity): number {
  if (granularity === 'total') return 1;
  const span = Math.max(0, instantOf(to) - instantOf(from));
  return Math.ceil(span / BUCKET_MS[granularity]) + (span % BUCKET_MS[granularity] === 0 ? 0 : 1);
}

const COARSER: Partial<Record<Granularity, Granularity>> = { minute: 'hour', hour: 'day', day: 'week', week: 'month' };

const n = (x: number): string => x.toLocaleString('en-US');

/**
 * Refuses (400) a request whose answer would have more than `maxRows` rows (buckets ×
 * groups, every bucket zero-filled): the cost of a stats query grows with it (a minute
 * series over two days grouped by 1,000 pages is 2.9 million rows and several seconds of
 * a core), and no chart shows that many. The message says what to ask instead. Returns
 * the rows asked for.
 */
export function costGuard(req: Pick<StatsRequest, 'from' | 'to' | 'granularity' | 'groupBy' | 'limit'>, maxRows: number): number {
  const groups = req.groupBy ? req.limit : 1;
  const buckets = bucketsIn(req.from, req.to, req.granularity);
  const rows = buckets * groups;
  if (rows <= maxRows) return rows;
  const coarser = COARSER[req.granularity];
  const alternatives = [
    coarser ? `granularity=${coarser} (about ${n(bucketsIn(req.from, req.to, coarser) * groups)} rows)` : undefined,
    'a shorter range',
    req.groupBy ? `a limit of at most ${n(Math.max(1, Math.floor(maxRows / buckets)))}` : undefined,
  ].filter((a) => a !== undefined);
  const asked = req.groupBy
    ? `about ${n(buckets)} buckets × ${n(groups)} ${req.groupBy.join(' and ')} groups = ${n(rows)} rows`
    : `about ${n(rows)} buckets`;
  const message = `granularity=${req.granularity} over this range asks for ${asked}; one request may ask for at most ${n(maxRows)}. Ask for ${alternatives.join(', or ')}`;
  throw badRequest('too_expensive', message, [{ parameter: coarser ? 'granularity' : 'limit', message }]);
}
