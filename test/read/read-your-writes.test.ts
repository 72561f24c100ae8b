import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS, RETENTION_MS } from '../../src/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { daysAgo, hoursAgo, isoDate, seconds, thisHour, today } from '../helpers/time.js';

/**
 * DESIGN.md, "Reads: read-your-writes": once any instance has acknowledged a write,
 * every read that starts afterwards, on any instance, reflects it — current or
 * back-dated, every read API; a request's events show together; reads never go back.
 * Two instances share one database here, each with its own background jobs; every
 * write goes through one and is read through the other at once: no waiting, no
 * refreshing and no cache clearing between a write and its read.
 */
describeEachModeWithCitus('read-your-writes across instances', (mode) => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp(mode);
    b = await startTestApp(mode, {}, a.db);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });
  beforeEach(async () => {
    await a.db.reset();
    // Every bucket before the current 10 minutes materialized (timescaledb mode), so
    // that a back-dated write lands below the watermark, where it would hide. Before
    // the writes only.
    await a.materialize();
  });

  const collect = (app: TestApp, cid: string, atMs?: number) =>
    app.http.get('/collect').query(atMs === undefined ? { cid } : { cid, d: seconds(atMs) });
  const daily = async (app: TestApp, dayMs: number) =>
    Number((await app.http.get('/daily_uniques').query({ d: isoDate(dayMs) })).text);
  const monthly = async (app: TestApp, dayMs: number) =>
    Number((await app.http.get('/monthly_uniques').query({ d: isoDate(dayMs) })).text);
  const click = (app: TestApp, user: string, atMs: number) =>
    app.http.post('/analytics').query({ timestamp: atMs, user, event: 'click' });
  const analytics = async (app: TestApp, atMs: number) => (await app.http.get('/analytics').query({ timestamp: atMs })).text;
  const report = async (app: TestApp, page: string, nowMs: number) =>
    (await app.http.get('/report').query({ page, now: new Date(nowMs).toISOString() })).body.data as { h: number; v: number }[];

  it('shows a write to the current hour in the very next read of the other instance, on every read API', async () => {
    expect((await click(a, 'ann', Date.now())).status).toBe(204);
    expect(await analytics(b, Date.now())).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
    expect((await collect(b, 'bob')).status).toBe(200);
    expect(await daily(a, today())).toBe(2);
    expect(await monthly(a, today())).toBe(2);
    // /report reads complete hours only: the last one.
    const res = await a.http.post('/page-views/single').send({ page: '/now', timestamp: new Date(thisHour() - 1).toISOString() });
    expect(res.status).toBe(200);
    expect((await report(b, '/now', Date.now())).at(-1)!.v).toBe(1);
  });

  it('shows back-dated writes below the watermark in the very next read: hours, days, months', async () => {
    const times = [hoursAgo(1) + 5 * 60_000, daysAgo(3) + 7 * HOUR_MS, daysAgo(20), daysAgo(40) + 13 * HOUR_MS + 59 * 60_000];
    for (const [i, at] of times.entries()) {
      const before = await daily(a, at);
      expect((await click(a, `user-${i}`, at)).status).toBe(204);
      expect(await analytics(b, at)).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
      expect((await collect(b, `cid-${i}`, at)).status).toBe(200);
      expect(await daily(a, at)).toBe(before + 2);
      expect(await monthly(a, today())).toBe(times.slice(0, i + 1).filter((t) => t > daysAgo(29)).length * 2);
      const multi = await b.http.post('/page-views/multi').send({ '/back': { [new Date(at).toISOString()]: 3 } });
      expect(multi.status).toBe(200);
      expect((await report(a, '/back', at + HOUR_MS)).at(-1)!.v).toBe(3);
    }
  });

  it('answers every day at once after a burst of thousands of writes back-dated across 60 days', async () => {
    const rand = prng(11);
    const expected = new Map<number, Set<string>>();
    const writes = Array.from({ length: 3000 }, () => {
      const at = Date.now() - 60_000 - Math.floor(rand() * (RETENTION_MS - 2 * HOUR_MS));
      const cid = `u${Math.floor(rand() * 700)}`;
      const day = Math.floor(at / DAY_MS) * DAY_MS;
      expected.set(day, (expected.get(day) ?? new Set()).add(cid));
      return { at, cid };
    });
    // A write is acknowledged with 200; one the service could not store within its
    // deadline is answered 503 with Retry-After (on a busy machine some of 100 at once
    // may be), and a client sends it again after that: every event is acknowledged in
    // the end, and only then read.
    const acknowledged = async (w: { at: number; cid: string }): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const res = await collect(a, w.cid, w.at);
        if (res.status !== 503 || attempt === 5) return res.status;
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers['retry-after'] ?? 1)));
      }
    };
    for (let i = 0; i < writes.length; i += 100) {
      const statuses = await Promise.all(writes.slice(i, i + 100).map(acknowledged));
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    for (const [day, users] of expected) expect(await daily(b, day), isoDate(day)).toBe(users.size);
    for (const end of [today(), daysAgo(17), daysAgo(31)]) {
      const window = new Set<string>();
      for (const [day, users] of expected) if (day > end - 30 * DAY_MS && day <= end) users.forEach((u) => window.add(u));
      expect(await monthly(b, end)).toBe(window.size);
    }
  });

  it('shows a multi-hour page-view upload whole in the very next read', async () => {
    const first = thisHour() - 24 * HOUR_MS;
    const upload: Record<string, Record<string, number>> = { '/a': {}, '/b': {} };
    for (let h = 0; h < 24; h++) {
      upload['/a']![new Date(first + h * HOUR_MS + 60_000).toISOString()] = h + 1;
      upload['/b']![new Date(first + h * HOUR_MS).toISOString()] = 100 + h;
    }
    expect((await a.http.post('/page-views/multi').send(upload)).status).toBe(200);
    const [pageA, pageB] = await Promise.all([report(b, '/a', thisHour()), report(b, '/b', thisHour())]);
    expect(pageA.map((d) => d.v)).toEqual(Array.from({ length: 24 }, (_, h) => h + 1));
    expect(pageB.map((d) => d.v)).toEqual(Array.from({ length: 24 }, (_, h) => 100 + h));
  });

  it('counts the oldest retained day and hour, before and after they are materialized', async () => {
    const oldest = Date.now() - RETENTION_MS + 10 * 60_000; // the day that is leaving the window
    const day = Math.floor(oldest / DAY_MS) * DAY_MS;
    await Promise.all(Array.from({ length: 40 }, (_, i) => collect(a, `old-${i}`, oldest + i * 1000)));
    expect((await click(a, 'old-click', oldest)).status).toBe(204);
    expect(await daily(b, day)).toBe(41);
    expect(await monthly(b, day + 29 * DAY_MS)).toBe(41);
    expect(await analytics(b, oldest)).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
    await b.materialize();
    expect(await daily(a, day)).toBe(41);
    expect(await monthly(a, day + 29 * DAY_MS)).toBe(41);
    expect(await analytics(a, oldest)).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
  });

  it('never goes backwards while the aggregates are re-materialized', async () => {
    const days = [daysAgo(2), daysAgo(9), daysAgo(33)];
    for (const [i, day] of days.entries()) {
      await Promise.all(Array.from({ length: 30 + i }, (_, j) => collect(a, `v${j}`, day + (j % 24) * HOUR_MS)));
    }
    const expected = days.map((_, i) => 30 + i);
    let reads = 0;
    let passes = 0;
    const started = Date.now();
    const reader = (async () => {
      while (Date.now() - started < 2500) {
        const seen = await Promise.all(days.map((d) => daily(b, d)));
        expect(seen).toEqual(expected);
        reads++;
      }
    })();
    while (Date.now() - started < 2500) {
      await a.materialize();
      passes++;
      await new Promise((r) => setTimeout(r, 50));
    }
    await reader;
    expect(reads).toBeGreaterThan(10);
    expect(passes).toBeGreaterThan(1);
  });
});
