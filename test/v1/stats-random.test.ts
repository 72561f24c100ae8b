import { expect, it } from 'vitest';
import { DAY_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { daysAgo, isoDate } from '../helpers/time.js';
import { addDays, type Calendar, calendarNext, calendarStart, localMidnight } from '../helpers/zones.js';

/*
 * GET /v1/stats without dimensions, drawn at random (a fixed seed: the same shapes every
 * run): every granularity, dates and minute instants, zones with DST, +05:30, +05:45 and
 * offsets, kind and page filtered with every operator (and the kind= and page=
 * parameters), grouped by kind, page or both, top limits, the previous period. Each
 * answer must be the one computed here from the events sent, bucket by bucket, whichever
 * relations answer it (minutes, quarter hours, hours, days, continuous aggregates and
 * their stale hours): as written, once materialized with back-dated writes below the
 * watermarks, and once materialized again.
 */

const MINUTE_MS = 60_000;
const SITE = 'rnd';

interface Sent {
  timeMs: number;
  kind: string;
  user: string;
  page: string;
}

const KINDS = ['pageview', 'click', 'signup'];
const PAGES = ['/', '/blog/a', '/blog/b', '/products/x', '/pricing|sale'];

function generate(r: () => number, n: number, fromMs: number, toMs: number): Sent[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: n }, () => ({
    timeMs: fromMs + Math.floor(r() * (toMs - fromMs)),
    kind: pick(KINDS),
    user: `u${Math.floor(r() ** 2 * 80)}`,
    page: pick(PAGES),
  }));
}

interface Drawn {
  query: Record<string, string | string[] | number>;
  unit: Calendar | 'total';
  zone: string;
  fromMs: number;
  toMs: number;
  /** What a sent event must be to count. */
  keep: (e: Sent) => boolean;
  groupBy: ('kind' | 'page')[];
  limit: number;
  compare: boolean;
}

const ZONES = [
  'UTC',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'America/New_York',
  'Europe/Berlin',
  'Australia/Lord_Howe',
  '+05:45',
  '-03:30',
];
const escape = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('|', '\\|');

function draw(r: () => number): Drawn {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const zone = pick(ZONES);
  const unit = pick(['total', 'total', 'minute', 'hour', 'day', 'week', 'month'] as const);
  const query: Drawn['query'] = { site: SITE, granularity: unit, timezone: zone };
  let fromMs: number;
  let toMs: number;
  if (unit === 'minute' || r() < 0.35) {
    // Minute instants (the zone does not move them), at most 48 hours for minutes.
    const span =
      unit === 'minute'
        ? 1 + Math.floor(r() * 180)
        : unit === 'hour'
          ? 1 + Math.floor(r() * 3 * 1440)
          : 1 + Math.floor(r() * 40 * 1440);
    fromMs = Math.floor((daysAgo(41) + r() * 42 * DAY_MS) / MINUTE_MS) * MINUTE_MS;
    toMs = fromMs + span * MINUTE_MS;
    query.from = new Date(fromMs).toISOString();
    query.to = new Date(toMs).toISOString();
  } else {
    const days = unit === 'hour' ? 1 + Math.floor(r() * 3) : 1 + Math.floor(r() * 40);
    const from = addDays(isoDate(daysAgo(41)), Math.floor(r() * (43 - days)));
    query.from = from;
    query.to = addDays(from, days);
    fromMs = localMidnight(from, zone);
    toMs = localMidnight(query.to, zone);
  }
  // Filters: kind and page, every operator, or the kind= and page= parameters.
  const tests: ((e: Sent) => boolean)[] = [];
  const filters: string[] = [];
  for (let n = Math.floor(r() * 3); n > 0; n--) {
    const dimension = pick(['kind', 'page'] as const);
    const values = dimension === 'kind' ? KINDS : PAGES;
    const op = pick(['==', '!=', '^=', '*=', 'param'] as const);
    if (op === '==' || op === '!=' || op === 'param') {
      const chosen = [...new Set([pick(values), pick(values)].slice(0, 1 + Math.floor(r() * 2)))];
      if (op === 'param') query[dimension] = chosen;
      else filters.push(`${dimension}${op}${chosen.map(escape).join('|')}`);
      tests.push((e) => chosen.includes(e[dimension]) === (op !== '!='));
    } else {
      const v = pick(values);
      const start = op === '^=' ? 0 : Math.floor(r() * v.length);
      const part = v.slice(start, start + 1 + Math.floor(r() * (v.length - start)));
      filters.push(`${dimension}${op}${escape(part)}`);
      tests.push((e) => (op === '^=' ? e[dimension].startsWith(part) : e[dimension].includes(part)));
    }
  }
  if (filters.length > 0) query.filter = filters;
  const groupBy = pick([[], [], ['kind'], ['page'], ['kind', 'page']] as ('kind' | 'page')[][]);
  if (groupBy.length > 0) query.group_by = groupBy.join(',');
  // More than the 15 groups there can be (1,000 would pass the cap of 100,000 rows a request at minutes).
  const limit = groupBy.length > 0 && r() < 0.4 ? 1 + Math.floor(r() * 4) : 100;
  query.limit = limit;
  // The previous period inside the raw retention (60 days), else the request is refused, rightly.
  const compare = unit === 'total' && 2 * fromMs - toMs >= daysAgo(59) && r() < 0.5;
  if (compare) query.compare = 'previous_period';
  return { query, unit, zone, fromMs, toMs, keep: (e) => tests.every((f) => f(e)), groupBy, limit, compare };
}

/** [calendar start, counted from, counted to) of each bucket of the range. */
function bucketsOf(d: Drawn): [number, number, number][] {
  if (d.unit === 'total') return [[d.fromMs, d.fromMs, d.toMs]];
  const out: [number, number, number][] = [];
  for (let s = calendarStart(d.fromMs, d.unit, d.zone); s < d.toMs; s = calendarNext(s, d.unit, d.zone)) {
    out.push([s, Math.max(s, d.fromMs), Math.min(calendarNext(s, d.unit, d.zone), d.toMs)]);
  }
  return out;
}

type Counts = { users: number; events: number };
const count = (of: Sent[]): Counts => ({ users: new Set(of.map((e) => e.user)).size, events: of.length });
const groupKey = (d: Drawn, e: Sent) => JSON.stringify(d.groupBy.map((g) => e[g]));

describeEachModeWithCitus('GET /v1/stats, random shapes without dimensions', (mode) => {
  const t = useTestApp(mode);
  const sent: Sent[] = [];
  const send = async (events: Sent[]) => {
    for (let i = 0; i < events.length; i += 1000) {
      const res = await t.http.post('/v1/events').send({
        events: events.slice(i, i + 1000).map((e) => ({
          site: SITE,
          kind: e.kind,
          user: e.user,
          page: e.page,
          time: new Date(e.timeMs).toISOString(),
        })),
      });
      expect(res.body).toMatchObject({ accepted: Math.min(1000, events.length - i), rejected: [] });
    }
    sent.push(...events);
  };

  async function check(d: Drawn, label: string): Promise<void> {
    const res = await t.http.get('/v1/stats').query(d.query);
    expect(res.status, `${label}: ${JSON.stringify(res.body)}`).toBe(200);
    expect(res.body.meta.approximate, label).toBe(false);
    const buckets = bucketsOf(d);
    const selected = sent.filter((e) => d.keep(e) && e.timeMs >= d.fromMs && e.timeMs < d.toMs);
    const groups = new Map<string, Sent[]>();
    for (const e of selected) groups.set(groupKey(d, e), [...(groups.get(groupKey(d, e)) ?? []), e]);
    if (d.groupBy.length === 0 && groups.size === 0) groups.set('[]', []);
    const want = new Map(
      [...groups].map(([key, of]) => [
        key,
        buckets.map(([, lo, hi]) => count(of.filter((e) => e.timeMs >= lo && e.timeMs < hi))),
      ]),
    );
    const rows = res.body.data as ({ bucket: string; previous?: Counts } & Counts & Record<string, unknown>)[];
    const got = new Map<string, Counts[]>();
    for (const row of rows) {
      const key = JSON.stringify(d.groupBy.map((g) => row[g]));
      const n = buckets.findIndex(([s]) => s === Date.parse(row.bucket));
      expect(n, `${label}: bucket ${row.bucket}`).toBeGreaterThanOrEqual(0);
      if (!got.has(key)) got.set(key, []);
      got.get(key)![n] = { users: row.users, events: row.events };
    }
    if (d.limit >= want.size) expect(got, label).toEqual(want);
    else {
      // Ties may go either way: every group returned is exact, and none left out ranks above one returned.
      expect(got.size, label).toBe(d.limit);
      for (const [key, counts] of got) expect(counts, `${label}: ${key}`).toEqual(want.get(key));
      const rank = (key: string) => count(groups.get(key)!);
      const worst = [...got.keys()].map(rank).sort((x, y) => x.users - y.users || x.events - y.events)[0]!;
      for (const key of want.keys()) {
        if (got.has(key)) continue;
        const { users, events } = rank(key);
        expect(users < worst.users || (users === worst.users && events <= worst.events), `${label}: ${key} left out`).toBe(true);
      }
    }
    if (d.compare) {
      const previous = res.body.meta.previous as { from: string; to: string };
      const [pf, pt] = [Date.parse(previous.from), Date.parse(previous.to)];
      expect([pt, pt - pf], label).toEqual([d.fromMs, d.toMs - d.fromMs]);
      for (const row of rows) {
        const key = JSON.stringify(d.groupBy.map((g) => row[g]));
        const before = sent.filter((e) => d.keep(e) && e.timeMs >= pf && e.timeMs < pt && groupKey(d, e) === key);
        expect(row.previous, `${label}: previous of ${key}`).toEqual(count(before));
      }
    }
  }

  // 150 reads: 6-16 s in CI; vitest's default of 30 s for a test is too close.
  it(
    'answers 50 random shapes exactly as written, with back-dated writes below the watermarks, and materialized again',
    { timeout: 120_000 },
    async () => {
      const r = prng(2027);
      const drawn = Array.from({ length: 50 }, () => draw(r));
      const checkAll = async (state: string) => {
        for (const [i, d] of drawn.entries()) await check(d, `${state}, shape ${i}: ${JSON.stringify(d.query)}`);
      };
      const data = prng(7);
      await send(generate(data, 3000, daysAgo(40), Date.now() - MINUTE_MS));
      await checkAll('as written');
      await t.materialize();
      // Back-dated into materialized hours and days, and into the current minutes.
      await send(generate(data, 400, daysAgo(40), Date.now() - 2 * DAY_MS));
      await send(generate(data, 100, Date.now() - 30 * MINUTE_MS, Date.now() - MINUTE_MS));
      await checkAll('back-dated after materializing');
      await t.materialize();
      await checkAll('materialized again');
    },
  );
});
