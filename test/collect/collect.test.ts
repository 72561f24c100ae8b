import { describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { expectInvalid, useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first } from '../helpers/db.js';
import { compactDate, daysAgo, isoDate, seconds, today } from '../helpers/time.js';

describeEachModeWithCitus('collect API (seed 000)', (mode) => {
  const t = useTestApp(mode);

  const collect = (cid: string, atMs?: number) =>
    t.http.get('/collect').query(atMs === undefined ? { cid } : { cid, d: seconds(atMs) });
  const daily = async (d?: string) => {
    const res = await t.http.get('/daily_uniques').query(d === undefined ? {} : { d });
    expect(res.status).toBe(200);
    return res.text;
  };
  const monthly = async (d?: string) => {
    const res = await t.http.get('/monthly_uniques').query(d === undefined ? {} : { d });
    expect(res.status).toBe(200);
    return res.text;
  };

  it('answers /collect with 200 and an empty body once the event is stored', async () => {
    const res = await collect('5b7a3c2e-0000-4000-8000-000000000001');
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers['content-length']).toBe('0');
    const [row] = await t.db.sql`select kind, user_id, page, weight from events`;
    expect(row).toEqual({ kind: 'collect', user_id: '5b7a3c2e-0000-4000-8000-000000000001', page: '', weight: 1 });
  });

  it('counts each cid once per GMT day, as text/plain "N\\n"', async () => {
    for (const cid of ['a', 'b', 'a', 'c', 'b', 'a']) expect((await collect(cid)).status).toBe(200);
    const res = await t.http.get('/daily_uniques');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.text).toBe('3\n');
    expect(await daily(isoDate(today()))).toBe('3\n');
    expect(await daily(compactDate(today()))).toBe('3\n');
  });

  it('puts events in half-open GMT days: 23:59:59 is the day before, 00:00:00 the day itself', async () => {
    const day = daysAgo(3);
    await collect('late', day - 1000);
    await collect('midnight', day);
    await collect('end', day + DAY_MS - 1000);
    await collect('next', day + DAY_MS);
    expect(await daily(isoDate(day - DAY_MS))).toBe('1\n');
    expect(await daily(isoDate(day))).toBe('2\n');
    expect(await daily(isoDate(day + DAY_MS))).toBe('1\n');
  });

  it('counts the 30 GMT days ending on and including d for /monthly_uniques', async () => {
    const d = daysAgo(5);
    await collect('on-d', d + 12 * HOUR_MS);
    await collect('first-day', d - 29 * DAY_MS);
    await collect('too-old', d - 30 * DAY_MS + DAY_MS - 1000);
    await collect('after-d', d + DAY_MS);
    await collect('on-d', d - 10 * DAY_MS); // the same user on another day counts once
    expect(await monthly(isoDate(d))).toBe('2\n'); // on-d, first-day
    expect(await monthly(isoDate(d - DAY_MS))).toBe('3\n'); // too-old, first-day, on-d (10 days before d)
    expect(await monthly(compactDate(d + DAY_MS))).toBe('2\n'); // on-d, after-d
    expect(await monthly()).toBe('2\n'); // today's window: on-d, after-d
  });

  it('is exact for small sets', async () => {
    const cids = Array.from({ length: 150 }, (_, i) => `user-${i}`);
    await Promise.all(cids.map((cid) => collect(cid)));
    expect(await daily()).toBe('150\n');
    expect(await monthly()).toBe('150\n');
  });

  it('shows a back-dated event in the daily and monthly answers of the very next read', async () => {
    const backDated = daysAgo(30) + 5 * HOUR_MS;
    await collect('early', daysAgo(20));
    await collect('same-day', backDated + HOUR_MS);
    await t.materialize(); // both days are materialized: the next write lands below the watermark
    expect(await daily(isoDate(backDated))).toBe('1\n');
    expect((await collect('late-arrival', backDated)).status).toBe(200);
    expect(await daily(isoDate(backDated))).toBe('2\n');
    expect(await monthly(isoDate(daysAgo(20)))).toBe('3\n');
  });

  describe('rejects bad input with a 400 naming the parameter', () => {
    const expectError = async (path: string, query: Record<string, unknown>, parameter: string, pattern: RegExp) => {
      const res = await t.http.get(path).query(query);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expectInvalid(res, 'invalid_query', parameter, pattern);
    };

    it('a missing, empty, repeated or too long cid', async () => {
      await expectError('/collect', {}, 'cid', /required/);
      await expectError('/collect', { cid: '' }, 'cid', /empty/);
      await expectError('/collect', { cid: ['a', 'b'] }, 'cid', /once/);
      await expectError('/collect', { cid: 'x'.repeat(257) }, 'cid', /256/);
      expect((await collect('x'.repeat(256))).status).toBe(200);
    });

    it('a d that is not a number, in milliseconds, too old or in the future', async () => {
      await expectError('/collect', { cid: 'a', d: 'yesterday' }, 'd', /seconds since the Unix epoch/);
      await expectError('/collect', { cid: 'a', d: Date.now() }, 'd', /looks like milliseconds/);
      await expectError('/collect', { cid: 'a', d: seconds(daysAgo(61)) }, 'd', /60-day retention/);
      await expectError('/collect', { cid: 'a', d: seconds(Date.now() + 6 * 60_000) }, 'd', /5 minutes in the future/);
      expect((await collect('soon', Date.now() + 60_000)).status).toBe(200);
      const { n } = first(await t.db.sql`select count(*)::int as n from events`);
      expect(n).toBe(1);
    });

    it('a date that is malformed, impossible, in the future or wholly before retention', async () => {
      await expectError('/daily_uniques', { d: '2026-1-5' }, 'd', /YYYY-MM-DD or YYYYMMDD/);
      await expectError('/daily_uniques', { d: '2026-02-30' }, 'd', /calendar date/);
      await expectError('/daily_uniques', { d: '2026-0230' }, 'd', /calendar date/);
      await expectError('/monthly_uniques', { d: isoDate(today() + DAY_MS) }, 'd', /after today/);
      await expectError('/monthly_uniques', { d: isoDate(daysAgo(61)) }, 'd', /retention/);
    });
  });

  it('answers unknown routes with 404 and a known route with the wrong method with 405, in the envelope', async () => {
    const missing = await t.http.get('/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'not_found', message: 'no route for GET /nope' } });
    const wrong = await t.http.post('/collect');
    expect(wrong.status).toBe(405);
    expect(wrong.body.error.code).toBe('method_not_allowed');
    expect(wrong.headers.allow).toMatch(/GET/);
  });
});
