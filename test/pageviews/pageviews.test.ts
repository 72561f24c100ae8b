import { expect, it } from 'vitest';
import { HOUR_MS } from '../../src/time.js';
import { expectInvalid, useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first } from '../helpers/db.js';
import { daysAgo, hoursAgo, thisHour } from '../helpers/time.js';

const iso = (ms: number): string => new Date(ms).toISOString();
/** The page-view key form `YYYY-MM-DD_HH:MM`. */
const keyForm = (ms: number): string => iso(ms).slice(0, 16).replace('T', '_');

describeEachModeWithCitus('page-view API (seed 003)', (mode) => {
  const t = useTestApp(mode);

  const single = (body: unknown) => t.http.post('/page-views/single').send(body as object);
  const multi = (body: unknown) => t.http.post('/page-views/multi').send(body as object);
  const report = async (query: Record<string, string | number>) => {
    const res = await t.http.get('/report').query(query);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    return res.body as { data: { h: number; v: number }[] };
  };
  const rows = async () => t.db.sql`select page, weight, time from events order by time, page`;
  const expectBodyError = (res: Parameters<typeof expectInvalid>[0], parameter: string, pattern: RegExp) =>
    expectInvalid(res, 'invalid_body', parameter, pattern);

  it('records a single page view and answers {"success":true}', async () => {
    const at = hoursAgo(2) + 5 * 60_000;
    const res = await single({ page: 'example.com/page', timestamp: iso(at) });
    expect(res.status).toBe(200);
    expect(res.text).toBe('{"success":true}');
    expect(await rows()).toEqual([{ page: 'example.com/page', weight: 1, time: new Date(at) }]);
  });

  it('stores each count of a multi upload as one row carrying its weight', async () => {
    const h1 = hoursAgo(3);
    const h2 = hoursAgo(2);
    const res = await multi({
      'example.com/page1': { [iso(h1)]: 5, [keyForm(h2)]: 3 },
      'example.com/page2': { [iso(h1)]: 2, [iso(h2 + 60_000)]: 0 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true });
    expect(await rows()).toEqual([
      { page: 'example.com/page1', weight: 5, time: new Date(h1) },
      { page: 'example.com/page2', weight: 2, time: new Date(h1) },
      { page: 'example.com/page1', weight: 3, time: new Date(h2) },
    ]);
  });

  it('stores nothing of a multi upload with one bad entry, and names the entry', async () => {
    const ok = iso(hoursAgo(1));
    const res = await multi({
      'a.com/x': { [ok]: 1 },
      'b.com/y': { [ok]: 2, 'not a time': 3, [iso(daysAgo(70))]: 1 },
      'c.com/z': { [ok]: -1 },
    });
    expectBodyError(res, '["b.com/y"]["not a time"]', /time must be an ISO 8601 date-time/);
    expectBodyError(res, `["b.com/y"]["${iso(daysAgo(70))}"]`, /60-day retention/);
    expectBodyError(res, `["c.com/z"]["${ok}"]`, /count must be a whole number/);
    expect(await rows()).toEqual([]);
  });

  it('accepts ISO 8601 with offsets and fractions, and reads a time without a zone as UTC', async () => {
    const at = hoursAgo(5);
    const plus2 = iso(at + 2 * HOUR_MS).replace('Z', '+02:00');
    await multi({ '/p': { [plus2]: 1, [iso(at).replace('Z', '')]: 1, [iso(at).replace('.000Z', '.250Z')]: 1 } });
    expect((await rows()).map((r) => (r.time as Date).getTime())).toEqual([at, at, at + 250]);
  });

  it('rejects malformed bodies with a 4xx that says why', async () => {
    const bad = await t.http.post('/page-views/single').set('Content-Type', 'application/json').send('{"page": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const empty = await t.http.post('/page-views/single').set('Content-Type', 'application/json').send('');
    expect(empty.status).toBe(400);
    const xml = await t.http.post('/page-views/single').set('Content-Type', 'application/xml').send('<a/>');
    expect(xml.status).toBe(415);
    expect(xml.body.error.code).toBe('unsupported_media_type');
    const huge = await multi({ ['/' + 'p'.repeat(1024 * 1024)]: {} });
    expect(huge.status).toBe(413);
    expectBodyError(await single({ timestamp: iso(Date.now()) }), 'page', /required/);
    expectBodyError(await single({ page: '', timestamp: iso(Date.now()) }), 'page', /empty/);
    expectBodyError(await single({ page: 42, timestamp: iso(Date.now()) }), 'page', /string/);
    expectBodyError(await single({ page: '/a', timestamp: 1763870400000 }), 'timestamp', /ISO 8601/);
    expectBodyError(await single({ page: '/a', timestamp: '2026-11-23' }), 'timestamp', /ISO 8601/);
    expectBodyError(await single({ page: '/a', timestamp: iso(Date.now() + HOUR_MS) }), 'timestamp', /future/);
    expectBodyError(await single([1, 2]), 'body', /JSON object/);
    expectBodyError(await multi({ '/a': 5 }), '["/a"]', /object of/);
    expectBodyError(await multi([]), 'body', /JSON object/);
    expect(await rows()).toEqual([]);
  });

  it('refuses with 413 a multi upload of more page and time pairs than a request may become, storing nothing', async () => {
    // 10,001 pairs over two pages: one more than HTTP_MAX_ROWS_PER_REQUEST's default.
    const start = hoursAgo(30);
    const times = (from: number, n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [iso(start + (from + i) * 1000), 1]));
    const res = await multi({ '/a': times(0, 5000), '/b': times(5000, 5001) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('too_many_rows');
    expect(res.body.error.message).toMatch(/at most 10000 rows, not 10001/);
    expect(await rows()).toEqual([]);
  });

  it('reports the 24 complete GMT hours before the hour of now, zero-filled, oldest first', async () => {
    const now = Date.now();
    const first = thisHour() - 24 * HOUR_MS;
    await multi({
      '/r': {
        [iso(first - 1)]: 100, // before the window
        [iso(first)]: 1, // the first hour of the window
        [iso(first + 30 * 60_000)]: 2,
        [iso(thisHour() - 1)]: 4, // the last complete hour
        [iso(thisHour())]: 1000, // the current hour: not complete, not reported
      },
      '/other': { [iso(first)]: 50 },
    });
    const { data } = await report({ page: '/r', now: iso(now) });
    expect(data).toHaveLength(24);
    expect(data.map((d) => d.h)).toEqual(Array.from({ length: 24 }, (_, i) => new Date(first + i * HOUR_MS).getUTCHours()));
    expect(data.map((d) => d.v)).toEqual([3, ...Array(22).fill(0), 4]);
    expect(await report({ page: '/r' })).toEqual({ data });
  });

  it('orders descending on request, and takes after ordering', async () => {
    const first = thisHour() - 24 * HOUR_MS;
    await multi({ '/r': { [iso(first)]: 1, [iso(first + HOUR_MS)]: 2, [iso(thisHour() - HOUR_MS)]: 9 } });
    const asc = (await report({ page: '/r', take: 2 })).data;
    expect(asc.map((d) => d.v)).toEqual([1, 2]);
    const desc = (await report({ page: '/r', order: 'desc', take: 3 })).data;
    expect(desc.map((d) => d.v)).toEqual([9, 0, 0]);
    expect(desc[0]!.h).toBe(new Date(thisHour() - HOUR_MS).getUTCHours());
    expect((await report({ page: '/r', take: 0 })).data).toEqual([]);
    expect((await report({ page: '/r', take: 100 })).data).toHaveLength(24);
  });

  it('rejects bad report parameters with a 400 naming them', async () => {
    const expectQueryError = async (query: Record<string, string>, parameter: string, pattern: RegExp) =>
      expectInvalid(await t.http.get('/report').query(query), 'invalid_query', parameter, pattern);
    await expectQueryError({}, 'page', /required/);
    await expectQueryError({ page: '/r', order: 'newest' }, 'order', /asc or desc/);
    await expectQueryError({ page: '/r', take: '-1' }, 'take', /whole number/);
    await expectQueryError({ page: '/r', take: 'ten' }, 'take', /whole number/);
    await expectQueryError({ page: '/r', now: 'yesterday' }, 'now', /ISO 8601/);
    await expectQueryError({ page: '/r', now: iso(Date.now() + 2 * HOUR_MS) }, 'now', /future/);
    await expectQueryError({ page: '/r', now: iso(daysAgo(90)) }, 'now', /retention/);
  });

  it('shows a back-dated page view in the very next report', async () => {
    const late = daysAgo(25) + 9 * HOUR_MS;
    await multi({ '/late': { [iso(late + 60_000)]: 2 } });
    await t.materialize(); // the hour is materialized: the next write lands below the watermark
    const probe = async () => (await report({ page: '/late', now: iso(late + HOUR_MS) })).data.at(-1)!.v;
    expect(await probe()).toBe(2);
    await multi({ '/late': { [iso(late)]: 7 } });
    expect(await probe()).toBe(9);
    expect(first(await t.db.sql`select count(*)::int as n from events where page = '/late'`).n).toBe(2);
  });
});
