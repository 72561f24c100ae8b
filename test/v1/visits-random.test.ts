import { expect, it } from 'vitest';
import { DAY_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { daysAgo, isoDate } from '../helpers/time.js';
import { calendarNext, calendarStart, localMidnight } from '../helpers/zones.js';

/*
 * Visits drawn at random (a fixed seed): visitors whose events lie minutes to days apart,
 * gaps of exactly 30 minutes among them (a new visit: a visit's gaps are under 30),
 * sent shuffled in batches of 1 to 40 events, two at once now and then, so that the
 * insert must extend, merge and cut the visits it finds stored. Every visit metric,
 * filtered and grouped by what visits start and end with, must equal the visits computed
 * here from the events, in UTC and in +05:45 local days.
 */

const MINUTE_MS = 60_000;
const GAP_MS = 30 * MINUTE_MS;

interface Sent {
  user: string;
  at: number;
  kind: string;
  page: string;
  country?: string;
}

interface Visit {
  start: number;
  end: number;
  pageviews: number;
  others: number;
  entryPage: string;
  exitPage: string;
  country: string | null;
}

function generate(r: () => number): Sent[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const gaps = [MINUTE_MS, 10 * MINUTE_MS, 29 * MINUTE_MS, GAP_MS, GAP_MS, 31 * MINUTE_MS, 90 * MINUTE_MS, DAY_MS];
  const out: Sent[] = [];
  for (let u = 0; u < 30; u++) {
    let at = daysAgo(6) + Math.floor(r() * 4 * DAY_MS);
    for (let n = 1 + Math.floor(r() * 10); n > 0; n--) {
      out.push({
        user: `v${u}`,
        at,
        kind: pick(['pageview', 'pageview', 'pageview', 'signup', 'click']),
        page: pick(['/', '/pricing', '/blog/a', '/docs']),
        ...(r() < 0.8 ? { country: pick(['DE', 'FR', 'NP']) } : {}),
      });
      // A gap of exactly 30 minutes stays exact; the others move by up to a second.
      const gap = pick(gaps);
      at += gap === GAP_MS ? gap : gap + Math.floor(r() * 1000) + 1;
    }
  }
  return out;
}

/** The visits of `events`: each visitor's events cut where two are 30 minutes or more apart. */
function visitsOf(events: Sent[]): Visit[] {
  const byUser = new Map<string, Sent[]>();
  for (const e of events) byUser.set(e.user, [...(byUser.get(e.user) ?? []), e]);
  const visits: Visit[] = [];
  for (const list of byUser.values()) {
    list.sort((a, b) => a.at - b.at);
    let current: Sent[] = [];
    const close = () => {
      if (current.length === 0) return;
      visits.push({
        start: current[0]!.at,
        end: current.at(-1)!.at,
        pageviews: current.filter((e) => e.kind === 'pageview').length,
        others: current.filter((e) => e.kind !== 'pageview').length,
        entryPage: current[0]!.page,
        exitPage: current.at(-1)!.page,
        country: current[0]!.country ?? null,
      });
      current = [];
    };
    for (const e of list) {
      if (current.length > 0 && e.at - current.at(-1)!.at >= GAP_MS) close();
      current.push(e);
    }
    close();
  }
  return visits;
}

interface Metrics {
  visits: number;
  bounce_rate: number | null;
  visit_duration: { mean: number; median: number } | null;
  pageviews_per_visit: number | null;
}

function metricsOf(visits: Visit[]): Metrics {
  if (visits.length === 0) return { visits: 0, bounce_rate: null, visit_duration: null, pageviews_per_visit: null };
  const d = visits.map((v) => (v.end - v.start) / 1000).sort((a, b) => a - b);
  const mid = (d.length - 1) / 2;
  return {
    visits: visits.length,
    bounce_rate: visits.filter((v) => v.pageviews === 1 && v.others === 0).length / visits.length,
    visit_duration: {
      mean: d.reduce((a, b) => a + b, 0) / d.length,
      median: (d[Math.floor(mid)]! + d[Math.ceil(mid)]!) / 2,
    },
    pageviews_per_visit: visits.reduce((n, v) => n + v.pageviews, 0) / visits.length,
  };
}

interface Shape {
  query: Record<string, string | number>;
  zone: string;
  unit: 'day' | 'total';
  keep: (v: Visit) => boolean;
  group?: (v: Visit) => string | null;
  groupName?: string;
}

describeEachModeWithCitus('GET /v1/stats: random visits', (mode) => {
  const t = useTestApp(mode);

  it('counts the visits computed from events sent shuffled, in batches, two at once now and then', async () => {
    const r = prng(2028);
    const events = generate(r);
    const shuffled = [...events];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const send = async (batch: Sent[]) => {
      const res = await t.http.post('/v1/events').send({
        events: batch.map((e) => ({
          site: 'visits',
          user: e.user,
          kind: e.kind,
          page: e.page,
          time: new Date(e.at).toISOString(),
          ...(e.country ? { country: e.country } : {}),
        })),
      });
      expect(res.body).toMatchObject({ accepted: batch.length, rejected: [] });
    };
    for (let i = 0; i < shuffled.length;) {
      const a = shuffled.slice(i, (i += 1 + Math.floor(r() * 40)));
      if (r() < 0.3 && i < shuffled.length) {
        const b = shuffled.slice(i, (i += 1 + Math.floor(r() * 40)));
        await Promise.all([send(a), send(b)]);
      } else await send(a);
    }
    const visits = visitsOf(events);
    expect(visits.length).toBeGreaterThan(60);

    const from = isoDate(daysAgo(7));
    const to = isoDate(daysAgo(-1));
    const all = 'visits,bounce_rate,visit_duration,pageviews_per_visit';
    const shapes: Shape[] = [
      { query: { granularity: 'day', timezone: 'UTC', metrics: all }, zone: 'UTC', unit: 'day', keep: () => true },
      { query: { granularity: 'day', timezone: '+05:45', metrics: all }, zone: '+05:45', unit: 'day', keep: () => true },
      {
        query: { metrics: all, group_by: 'entry_page', limit: 100 },
        zone: 'UTC',
        unit: 'total',
        keep: () => true,
        group: (v) => v.entryPage,
        groupName: 'entry_page',
      },
      {
        query: { metrics: 'visits,bounce_rate', group_by: 'exit_page', limit: 100 },
        zone: 'UTC',
        unit: 'total',
        keep: () => true,
        group: (v) => v.exitPage,
        groupName: 'exit_page',
      },
      {
        query: { metrics: 'visits,visit_duration', filter: 'country==DE|' },
        zone: 'UTC',
        unit: 'total',
        keep: (v) => v.country === 'DE' || v.country === null,
      },
      {
        query: { granularity: 'day', timezone: 'Asia/Kolkata', metrics: all, group_by: 'country', limit: 100 },
        zone: 'Asia/Kolkata',
        unit: 'day',
        keep: () => true,
        group: (v) => v.country,
        groupName: 'country',
      },
      {
        query: { granularity: 'day', timezone: '+05:45', metrics: all, filter: 'exit_page!=/docs' },
        zone: '+05:45',
        unit: 'day',
        keep: (v) => v.exitPage !== '/docs',
      },
    ];
    for (const shape of shapes) {
      const label = JSON.stringify(shape.query);
      const res = await t.http.get('/v1/stats').query({ site: 'visits', from, to, ...shape.query });
      expect(res.status, `${label}: ${JSON.stringify(res.body)}`).toBe(200);
      const fromMs = localMidnight(from, shape.zone);
      const toMs = localMidnight(to, shape.zone);
      const bucketOf = (ms: number) => (shape.unit === 'total' ? fromMs : calendarStart(ms, 'day', shape.zone));
      const want = new Map<string, Visit[]>();
      for (const v of visits.filter((v) => shape.keep(v) && v.start >= fromMs && v.start < toMs)) {
        const key = JSON.stringify([bucketOf(v.start), shape.group?.(v) ?? null]);
        want.set(key, [...(want.get(key) ?? []), v]);
      }
      const got = new Map<string, Metrics>();
      for (const row of res.body.data as (Metrics & { bucket: string } & Record<string, unknown>)[]) {
        const key = JSON.stringify([Date.parse(row.bucket), shape.groupName ? row[shape.groupName] : null]);
        got.set(key, {
          visits: row.visits,
          bounce_rate: row.bounce_rate ?? null,
          visit_duration: row.visit_duration ?? null,
          pageviews_per_visit: row.pageviews_per_visit ?? null,
        });
      }
      // Every bucket and group with visits is answered exactly; any other row answered holds none.
      for (const [key, of] of want) {
        const expected = metricsOf(of);
        const actual = got.get(key);
        expect(actual?.visits, `${label} ${key}`).toBe(expected.visits);
        for (const name of ['bounce_rate', 'pageviews_per_visit'] as const) {
          if (name in (res.body.data[0] ?? {})) expect(actual![name], `${label} ${key} ${name}`).toBeCloseTo(expected[name]!, 9);
        }
        if (String(shape.query.metrics).includes('visit_duration')) {
          expect(actual!.visit_duration!.mean, `${label} ${key} mean`).toBeCloseTo(expected.visit_duration!.mean, 3);
          expect(actual!.visit_duration!.median, `${label} ${key} median`).toBeCloseTo(expected.visit_duration!.median, 3);
        }
      }
      for (const [key, m] of got) if (!want.has(key)) expect(m.visits, `${label} ${key}: no visits expected`).toBe(0);
      // The buckets: the range's local days (or the one of total), whatever holds visits.
      if (shape.unit === 'day' && !shape.group) {
        const days: number[] = [];
        for (let s = fromMs; s < toMs; s = calendarNext(s, 'day', shape.zone)) days.push(s);
        expect(
          (res.body.data as { bucket: string }[]).map((row) => Date.parse(row.bucket)),
          label,
        ).toEqual(days);
      }
    }
  });
});
