import { describe, expect, it } from 'vitest';
import { DIRECT, withSource } from '../../src/tracker/sources.js';
import { HOUR_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';

describe('withSource', () => {
  it('keeps a source sent, derives one from utm_source or referrer, and says Direct / None only for the tracker', () => {
    expect(withSource({ source: 'Podcast', referrer: 'google.com' }, true)).toEqual({
      source: 'Podcast',
      referrer: 'google.com',
    });
    expect(withSource({ referrer: 'google.com' }, false)).toEqual({ referrer: 'google.com', source: 'Google' });
    expect(withSource({ country: 'DE' }, true)).toEqual({ country: 'DE', source: DIRECT });
    expect(withSource(undefined, true)).toEqual({ source: DIRECT });
    expect(withSource({ country: 'DE' }, false)).toEqual({ country: 'DE' });
    expect(withSource(undefined, false)).toBeUndefined();
  });
});

describeEachModeWithCitus('the source dimension', (mode) => {
  const t = useTestApp(mode);
  const at = daysAgo(2) + 9 * HOUR_MS;
  const time = (minutes: number) => new Date(at + minutes * 60_000).toISOString();
  const post = (events: object[]) => t.http.post('/v1/events').send({ events });
  const track = (event: object) =>
    t.http
      .post('/v1/events')
      .set('Content-Type', 'text/plain;charset=UTF-8')
      .set('User-Agent', FIREFOX)
      .send(JSON.stringify({ events: [{ kind: 'pageview', page: '/', screen_width: 1440, ...event }] }));

  it('is derived at ingest: utm_source over the referrer, known ones named, Direct / None for the tracker alone', async () => {
    const res = await post([
      { user: 'a', kind: 'pageview', time: time(0), referrer: 'https://www.google.de/search?q=x' },
      { user: 'b', kind: 'pageview', time: time(1), referrer: 'https://news.ycombinator.com/item?id=1' },
      { user: 'c', kind: 'pageview', time: time(2), referrer: 'https://news.ycombinator.com/', utm_source: 'newsletter' },
      { user: 'd', kind: 'pageview', time: time(3), utm_source: 'spring-mailing' },
      { user: 'e', kind: 'pageview', time: time(4), referrer: 'https://blog.example.org/post' },
      { user: 'f', kind: 'signup', time: time(5), referrer: 'google.com', source: 'Podcast' },
      // A server-side client without referrer says nothing of where its user came from.
      { user: 'g', kind: 'pageview', time: time(6) },
      { user: 'h', kind: 'pageview', time: time(7), utm_source: '' },
    ]);
    expect(res.body).toEqual({ accepted: 8, duplicates: 0, rejected: [] });
    expect((await track({ time: time(8) })).body).toMatchObject({ accepted: 1 });
    expect((await track({ time: time(9), kind: 'signup' })).body).toMatchObject({ accepted: 1 });
    expect((await track({ time: time(10), referrer: 'https://t.co/abc' })).body).toMatchObject({ accepted: 1 });
    // The seed APIs never get one.
    expect((await t.http.get('/collect').query({ cid: 'seed' })).status).toBe(200);
    const rows = await t.db.sql<{ who: string; source: string | null }[]>`
      select case when length(user_id) = 22 then 'tracker' else user_id end as who, source from events order by time, user_id
    `;
    expect(rows).toEqual([
      { who: 'a', source: 'Google' },
      { who: 'b', source: 'Hacker News' },
      { who: 'c', source: 'Newsletter' },
      { who: 'd', source: 'spring-mailing' },
      { who: 'e', source: 'blog.example.org' },
      { who: 'f', source: 'Podcast' },
      { who: 'g', source: null },
      { who: 'h', source: null },
      { who: 'tracker', source: DIRECT },
      { who: 'tracker', source: DIRECT },
      { who: 'tracker', source: 'Twitter' },
      { who: 'seed', source: null },
    ]);
  });

  it('refuses a bad source with the event’s own rejection, as the other dimensions', async () => {
    const res = await post([
      { user: 'a', kind: 'pageview', time: time(0), source: 'x'.repeat(501) },
      { user: 'a', kind: 'pageview', time: time(0), source: 'tab\there' },
      { user: 'a', kind: 'pageview', time: time(0), source: 42 },
      { user: 'a', kind: 'pageview', time: time(0), source: 'x'.repeat(500) },
    ]);
    expect(res.status).toBe(200);
    expect(
      (res.body.rejected as { index: number; code: string; field: string }[]).map((r) => [r.index, r.code, r.field]),
    ).toEqual([
      [0, 'out_of_range', 'source'],
      [1, 'invalid_value', 'source'],
      [2, 'invalid_type', 'source'],
    ]);
    expect(res.body.accepted).toBe(1);
  });

  describe('group_by and filter', () => {
    const referrers = [
      'https://www.google.com/',
      'https://news.ycombinator.com/',
      'https://duckduckgo.com/',
      'https://blog.example.org/',
    ];
    const events = Array.from({ length: 120 }, (_, i) => ({
      user: `u${(i * 7) % 45}`,
      kind: i % 5 === 0 ? 'signup' : 'pageview',
      time: new Date(at - 3 * HOUR_MS + i * 137_000).toISOString(),
      ...(i % 6 === 1 ? {} : { referrer: referrers[i % referrers.length] }),
      ...(i % 9 === 2 ? { utm_source: i % 2 === 0 ? 'hn' : 'spring' } : {}),
    }));
    const day = { from: isoDate(at), to: isoDate(at + 86_400_000), granularity: 'total', timezone: 'UTC' };
    /** users and events per source, from the raw events. */
    const truth = async (where = t.db.sql`true`) =>
      Object.fromEntries(
        (
          await t.db.sql<{ source: string | null; users: number; events: number }[]>`
            select source, count(distinct user_id)::int as users, sum(weight)::int as events
            from events where ${where} group by source
          `
        ).map((r) => [String(r.source), { users: r.users, events: r.events }]),
      );
    const answer = async (query: Record<string, string>) => {
      const res = await t.http.get('/v1/stats').query({ ...day, limit: 100, ...query });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return Object.fromEntries(
        (res.body.data as { source: string | null; users: number; events: number }[]).map((r) => [
          String(r.source),
          { users: r.users, events: r.events },
        ]),
      );
    };

    it('answers group_by=source exactly, queued and rolled up, and filters on it', async () => {
      await t.runtime.roller.stop();
      try {
        expect((await post(events)).body).toMatchObject({ accepted: events.length, rejected: [] });
        const expected = await truth();
        // Google, Hacker News, DuckDuckGo, blog.example.org, spring, and none.
        expect(Object.keys(expected).sort()).toEqual([
          'DuckDuckGo',
          'Google',
          'Hacker News',
          'blog.example.org',
          'null',
          'spring',
        ]);
        expect(await answer({ group_by: 'source' })).toEqual(expected);
        expect(await t.runtime.roller.pass()).toBe(events.length);
        expect(await answer({ group_by: 'source' })).toEqual(expected);
        const filtered = await answer({ filter: 'source==Google|Hacker News' });
        const [both] = await t.db.sql<{ users: number; events: number }[]>`
          select count(distinct user_id)::int as users, sum(weight)::int as events
          from events where source in ('Google', 'Hacker News')
        `;
        expect(Object.values(filtered)).toEqual([both]);
      } finally {
        t.runtime.roller.start();
      }
    });

    it('groups visits by the source of their first event', async () => {
      expect((await post(events)).body).toMatchObject({ accepted: events.length, rejected: [] });
      const res = await t.http.get('/v1/stats').query({ ...day, metrics: 'visits', group_by: 'source', limit: 100 });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const visits = Object.fromEntries(
        (res.body.data as { source: string | null; visits: number }[]).map((r) => [String(r.source), r.visits]),
      );
      const stored = await t.db.sql<{ source: string | null; n: number }[]>`
        select source, count(*)::int as n from headcount_visits group by source
      `;
      expect(visits).toEqual(Object.fromEntries(stored.map((r) => [String(r.source), r.n])));
      // Each visit's source is that of its first event.
      const [wrong] = await t.db.sql<{ n: number }[]>`
        select count(*)::int as n
        from headcount_visits v
        where v.source is distinct from (
          select e.source from events e
          where e.site = v.site and e.user_id = v.user_id and e.time = v.started
          order by e.page collate "C", e.kind collate "C" limit 1
        )
      `;
      expect(wrong!.n).toBe(0);
      expect(stored.length).toBeGreaterThan(2);
    });
  });
});
