import { expect, it } from 'vitest';
import { HOUR_MS } from '../../src/time.js';
import { expectInvalid, useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first } from '../helpers/db.js';
import { daysAgo, hoursAgo, seconds } from '../helpers/time.js';

describeEachModeWithCitus('analytics API (seeds 001, 002, 004)', (mode) => {
  const t = useTestApp(mode);

  const post = (query: Record<string, string | number>) => t.http.post('/analytics').query(query);
  const event = async (atMs: number, user: string, kind: 'click' | 'impression') => {
    const res = await post({ timestamp: atMs, user, event: kind });
    expect(res.status).toBe(204);
  };
  const read = async (atMs: number) => {
    const res = await t.http.get('/analytics').query({ timestamp: atMs });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    return res.text;
  };
  const stored = async () => first(await t.db.sql`select count(*)::int as n from events`).n as number;

  it('answers a POST with 204 and an empty body once the event is stored', async () => {
    const res = await post({ timestamp: Date.now(), user: 'piotr', event: 'click' });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const rows = await t.db.sql`select kind, user_id, page, weight from events`;
    expect(rows).toEqual([{ kind: 'click', user_id: 'piotr', page: '', weight: 1 }]);
  });

  it('takes the bare flag form &click / &impression (seed 004)', async () => {
    expect((await t.http.post(`/analytics?timestamp=${Date.now()}&user=a&click`)).status).toBe(204);
    expect((await t.http.post(`/analytics?timestamp=${Date.now()}&user=b&impression`)).status).toBe(204);
    expect((await t.http.post(`/analytics?timestamp=${Date.now()}&user=c&impression=true`)).status).toBe(204);
    expect(await read(Date.now())).toBe('unique_users,3\nclicks,1\nimpressions,2\n');
  });

  it('reads the GMT clock hour holding the timestamp, exactly, as three lines', async () => {
    const hour = hoursAgo(3);
    await event(hour, 'u1', 'click');
    await event(hour + 10 * 60_000, 'u1', 'impression'); // the same user, both kinds: counted once
    await event(hour + 20 * 60_000, 'u2', 'click');
    await event(hour + HOUR_MS - 1, 'u3', 'click'); // 59:59.999 belongs to this hour
    await event(hour - 1, 'before', 'click'); // the previous hour
    await event(hour + HOUR_MS, 'after', 'impression'); // the next hour
    const expected = 'unique_users,3\nclicks,3\nimpressions,1\n';
    expect(await read(hour)).toBe(expected);
    expect(await read(hour + 30 * 60_000)).toBe(expected);
    expect(await read(hour + HOUR_MS - 1)).toBe(expected);
    expect(await read(hour - 1)).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
    expect(await read(hour + HOUR_MS)).toBe('unique_users,1\nclicks,0\nimpressions,1\n');
  });

  it('answers zeros for an empty hour, and counts only clicks and impressions', async () => {
    expect(await read(Date.now())).toBe('unique_users,0\nclicks,0\nimpressions,0\n');
    await t.http.get('/collect').query({ cid: 'someone' });
    await t.http.post('/page-views/single').send({ page: '/a', timestamp: new Date().toISOString() });
    expect(await read(Date.now())).toBe('unique_users,0\nclicks,0\nimpressions,0\n');
  });

  it('counts the current hour while it is being written', async () => {
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => event(Date.now(), `user-${i % 120}`, i % 3 === 0 ? 'click' : 'impression')),
    );
    expect(await read(Date.now())).toBe('unique_users,120\nclicks,100\nimpressions,200\n');
  });

  it('shows a back-dated event in the very next read', async () => {
    const late = daysAgo(30) + 7 * HOUR_MS + 123;
    await event(late + 60_000, 'early', 'click');
    await t.materialize(); // the hour is materialized: the next write lands below the watermark
    expect(await read(late)).toBe('unique_users,1\nclicks,1\nimpressions,0\n');
    await event(late, 'late', 'impression');
    expect(await read(late)).toBe('unique_users,2\nclicks,1\nimpressions,1\n');
  });

  const expectError = (res: Parameters<typeof expectInvalid>[0], parameter: string, pattern: RegExp) =>
    expectInvalid(res, 'invalid_query', parameter, pattern);

  it('rejects a bad timestamp with a 400 that says why', async () => {
    const now = Date.now();
    expectError(await post({ user: 'a', event: 'click' }), 'timestamp', /required/);
    expectError(await post({ timestamp: 'now', user: 'a', event: 'click' }), 'timestamp', /milliseconds since the Unix epoch/);
    expectError(
      await post({ timestamp: seconds(now), user: 'a', event: 'click' }),
      'timestamp',
      /milliseconds.*looks like seconds/,
    );
    expectError(await post({ timestamp: daysAgo(61), user: 'a', event: 'click' }), 'timestamp', /60-day retention/);
    expectError(await post({ timestamp: now + 10 * 60_000, user: 'a', event: 'click' }), 'timestamp', /5 minutes in the future/);
    expectError(await t.http.get('/analytics').query({ timestamp: seconds(now) }), 'timestamp', /looks like seconds/);
    expectError(await t.http.get('/analytics'), 'timestamp', /required/);
    expectError(await t.http.get(`/analytics?timestamp=${now}&timestamp=${now}`), 'timestamp', /once/);
    expect(await stored()).toBe(0);
  });

  it('rejects a missing or bad user or event with a 400 naming it', async () => {
    const timestamp = Date.now();
    expectError(await post({ timestamp, event: 'click' }), 'user', /required/);
    expectError(await post({ timestamp, user: 'x'.repeat(257), event: 'click' }), 'user', /256/);
    expectError(await post({ timestamp, user: 'a' }), 'event', /required: event=click or event=impression/);
    expectError(await post({ timestamp, user: 'a', event: 'view' }), 'event', /click or impression/);
    expectError(await t.http.post(`/analytics?timestamp=${timestamp}&user=a&event=click&impression`), 'event', /once/);
    expectError(await t.http.post(`/analytics?timestamp=${timestamp}&user=a&click&impression`), 'event', /once/);
    expectError(await t.http.post(`/analytics?timestamp=${timestamp}&user=a&click=no`), 'click', /flag/);
    expect(await stored()).toBe(0);
  });
});
