import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../src/time.js';
import { startTestApp, useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first } from '../helpers/db.js';
import { daysAgo } from '../helpers/time.js';

describeEachModeWithCitus('POST /v1/events', (mode) => {
  const t = useTestApp(mode);
  const at = daysAgo(2) + 5 * HOUR_MS;
  const iso = (ms: number) => new Date(ms).toISOString();
  const stored = async () => first(await t.db.sql`select count(*)::int as n, coalesce(sum(weight), 0)::int as w from events`);
  const dayUsers = async (site = 'default') =>
    (
      await t.http.get('/v1/stats').query({
        site,
        from: new Date(daysAgo(2)).toISOString().slice(0, 10),
        to: new Date(daysAgo(1)).toISOString().slice(0, 10),
      })
    ).body.data[0];

  it('stores the valid events of a mixed batch and reports each invalid one by index', async () => {
    const res = await t.http.post('/v1/events').send({
      events: [
        { user: 'anna', kind: 'signup', time: iso(at) },
        { user: 42, kind: 'signup', time: iso(at) },
        { user: 'piotr', kind: 'Signup' },
        { user: 'piotr', kind: 'click', time: at, page: '/pricing', weight: 3, site: 'shop' },
        { user: 'old', kind: 'click', time: iso(daysAgo(61)) },
        { user: 'future', kind: 'click', time: iso(Date.now() + 3_600_000) },
        { user: 'x', kind: 'click', time: '2026-11-23T10:00:00' },
        { user: 'x', kind: 'click', weight: 0 },
        { user: 'x', kind: 'click', colour: 'red' },
        'not an event',
        { user: 'x', kind: 'click', time: Math.floor(at / 1000) },
        { user: 'x', kind: 'click', id: '' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.duplicates).toBe(0);
    expect(
      (res.body.rejected as { index: number; code: string; field: string | null }[]).map((r) => [r.index, r.code, r.field]),
    ).toEqual([
      [1, 'invalid_type', 'user'],
      [2, 'invalid_format', 'kind'],
      [4, 'too_old', 'time'],
      [5, 'too_far_ahead', 'time'],
      [6, 'invalid_time', 'time'],
      [7, 'out_of_range', 'weight'],
      [8, 'unknown_field', 'colour'],
      [9, 'not_an_object', null],
      [10, 'invalid_time', 'time'],
      [11, 'out_of_range', 'id'],
    ]);
    expect(res.body.rejected[8].message).toMatch(/looks like seconds/);
    expect(await stored()).toEqual({ n: 2, w: 4 });
    const [shop] = await t.db.sql`select site, kind, user_id, page, weight, time from events where site = 'shop'`;
    expect(shop).toEqual({ site: 'shop', kind: 'click', user_id: 'piotr', page: '/pricing', weight: 3, time: new Date(at) });
    expect(await dayUsers()).toMatchObject({ users: 1, events: 1 });
    expect(await dayUsers('shop')).toMatchObject({ users: 1, events: 3 });
  });

  it('refuses with 400 a batch whose every event is invalid, with the same per-event details, and stores nothing', async () => {
    const res = await t.http.post('/v1/events').send({ events: [{ user: 'a' }, { kind: 'b', user: '' }] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_events');
    expect(res.body.error.details).toEqual([
      { index: 0, code: 'missing', message: 'kind is required', field: 'kind' },
      { index: 1, code: 'out_of_range', message: 'user must not be empty', field: 'user' },
    ]);
    expect((await stored()).n).toBe(0);
  });

  it('refuses bodies that are not {"events":[...]}', async () => {
    for (const body of [[{ user: 'a', kind: 'b' }], { event: [] }, { events: [] }, { events: 'x' }]) {
      const res = await t.http.post('/v1/events').send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_body');
    }
    const broken = await t.http.post('/v1/events').set('Content-Type', 'application/json').send('{"events": [');
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('invalid_json');
    const xml = await t.http.post('/v1/events').set('Content-Type', 'application/xml').send('<events/>');
    expect(xml.status).toBe(415);
  });

  it('refuses more than 10,000 events or 5 MiB with 413', async () => {
    const many = await t.http
      .post('/v1/events')
      .send({ events: Array.from({ length: 10_001 }, () => ({ user: 'a', kind: 'b' })) });
    expect(many.status).toBe(413);
    expect(many.body.error.code).toBe('too_many_events');
    const big = await t.http.post('/v1/events').send({ events: [{ user: 'a', kind: 'b', page: 'x'.repeat(5 * 1024 * 1024) }] });
    expect(big.status).toBe(413);
    expect((await stored()).n).toBe(0);
  });

  it('takes a text/plain body holding JSON (navigator.sendBeacon), and 10,000 events at once', async () => {
    const beacon = await t.http
      .post('/v1/events')
      .set('Content-Type', 'text/plain;charset=UTF-8')
      .send(JSON.stringify({ events: [{ user: 'b', kind: 'pageview', page: '/' }] }));
    expect(beacon.status).toBe(200);
    expect(beacon.body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    const full = await t.http
      .post('/v1/events')
      .send({ events: Array.from({ length: 10_000 }, (_, i) => ({ user: `u${i}`, kind: 'view' })) });
    expect(full.body).toEqual({ accepted: 10_000, duplicates: 0, rejected: [] });
    expect((await stored()).n).toBe(10_001);
  });

  it('answers CORS preflights and puts Access-Control-Allow-Origin on answers, errors included', async () => {
    const preflight = await t.http
      .options('/v1/events')
      .set('Origin', 'https://example.com')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-allow-methods']).toBe('POST,OPTIONS');
    expect(preflight.headers['access-control-allow-headers']).toBe('Content-Type,Authorization');
    const ok = await t.http
      .post('/v1/events')
      .set('Origin', 'https://example.com')
      .send({ events: [{ user: 'c', kind: 'k' }] });
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    const bad = await t.http
      .post('/v1/events')
      .set('Origin', 'https://example.com')
      .send({ events: [{}] });
    expect(bad.status).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe('*');
  });

  describe('idempotent ids', () => {
    const batch = () => ({
      events: Array.from({ length: 50 }, (_, i) => ({
        user: `u${i % 20}`,
        kind: 'click',
        time: iso(at + i * 1000),
        id: `e${i}`,
      })),
    });

    it('stores a resent batch once: the resend is all duplicates and the counts do not change', async () => {
      const first_ = await t.http.post('/v1/events').send(batch());
      expect(first_.body).toEqual({ accepted: 50, duplicates: 0, rejected: [] });
      const before = await dayUsers();
      expect(before).toMatchObject({ users: 20, events: 50 });
      const again = await t.http.post('/v1/events').send(batch());
      expect(again.body).toEqual({ accepted: 0, duplicates: 50, rejected: [] });
      expect(await dayUsers()).toEqual(before);
      expect((await stored()).n).toBe(50);
      // Same id at another time, or in another site, is another event.
      const other = await t.http.post('/v1/events').send({
        events: [
          { user: 'u1', kind: 'click', time: iso(at + 500), id: 'e0' },
          { user: 'u1', kind: 'click', time: iso(at), id: 'e0', site: 'shop' },
          { user: 'u1', kind: 'click', time: iso(at), id: 'e0' },
        ],
      });
      expect(other.body).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
    });

    it('counts a repeat inside one batch as a duplicate', async () => {
      const e = { user: 'u', kind: 'click', time: iso(at), id: 'same' };
      const res = await t.http.post('/v1/events').send({ events: [e, e, { ...e, id: 'other' }] });
      expect(res.body).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
    });

    it('stores two concurrent resends of one batch once', async () => {
      const sends = await Promise.all([1, 2, 3].map(() => t.http.post('/v1/events').send(batch())));
      expect(sends.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(sends.reduce((n, r) => n + (r.body.accepted as number), 0)).toBe(50);
      expect(sends.reduce((n, r) => n + (r.body.duplicates as number), 0)).toBe(100);
      expect((await stored()).n).toBe(50);
      expect(await dayUsers()).toMatchObject({ users: 20, events: 50 });
    });

    it('stores once what two instances receive at the same time (their transactions race on the unique key)', async () => {
      const other = await startTestApp(mode, {}, t.db);
      try {
        const sends = await Promise.all(
          [t.http, other.http, t.http, other.http].map((http) => http.post('/v1/events').send(batch())),
        );
        expect(sends.map((r) => r.status)).toEqual([200, 200, 200, 200]);
        expect(sends.reduce((n, r) => n + (r.body.accepted as number), 0)).toBe(50);
        expect(sends.reduce((n, r) => n + (r.body.duplicates as number), 0)).toBe(150);
        expect((await stored()).n).toBe(50);
        expect(await dayUsers()).toMatchObject({ users: 20, events: 50 });
        expect(other.openApiViolations).toEqual([]);
      } finally {
        await other.close();
      }
    });
  });
});
