import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';
import { addDays, localDate, localLabel, localMidnight } from '../helpers/zones.js';

const MINUTE_MS = 60_000;
interface Row {
  bucket: string;
  users: number;
  events: number;
}
const rows = (res: { body: unknown }): Row[] => (res.body as { data: Row[] }).data;
const floorMinute = (ms: number): number => Math.floor(ms / MINUTE_MS) * MINUTE_MS;

describeEachModeWithCitus('GET /v1/stats: times', (mode) => {
  const t = useTestApp(mode);
  const send = async (site: string, events: { time?: number; user: string }[]) => {
    const res = await t.http.post('/v1/events').send({
      events: events.map((e) => ({
        site,
        kind: 'visit',
        user: e.user,
        ...(e.time === undefined ? {} : { time: new Date(e.time).toISOString() }),
      })),
    });
    expect(res.body).toMatchObject({ accepted: events.length, rejected: [] });
  };
  const stats = (query: Record<string, string>) => t.http.get('/v1/stats').query(query);
  /** `ask`'s answer and the clock it was asked at, asked again until the minute did not change meanwhile. */
  const withinOneMinute = async <T>(ask: () => Promise<T>): Promise<{ value: T; nowMs: number }> => {
    for (;;) {
      const before = Date.now();
      const value = await ask();
      if (floorMinute(Date.now()) === floorMinute(before)) return { value, nowMs: before };
    }
  };

  describe('from and to', () => {
    const T = floorMinute(daysAgo(1) + 10 * 3_600_000); // 10:00 UTC yesterday
    const events = [
      { time: T - 1000, user: 'before' },
      { time: T + 10_000, user: 'a' },
      { time: T + 4 * MINUTE_MS + 59_000, user: 'b' },
      { time: T + 5 * MINUTE_MS + 10_000, user: 'after' },
    ];

    it('take any RFC 3339 instant, floored to its minute, and report the range answered in meta', async () => {
      await send('shop', events);
      const iso = (ms: number) => new Date(ms).toISOString();
      const from = iso(T + 59_000).replace('.000Z', '.999999999Z'); // 10:00:59.999999999Z
      const toKolkata = `${isoDate(T)}T15:35:30+05:30`; // 10:05:30Z
      for (const [f, to] of [
        [from, toKolkata],
        [from.toLowerCase(), toKolkata.replace('T', 't')],
        [iso(T + 30_000), iso(T + 5 * MINUTE_MS + 59_999)],
        [`${isoDate(T)}T10:00:01.5-00:00`, `${isoDate(T)}T10:05Z`],
      ]) {
        const res = await stats({ site: 'shop', from: f!, to: to!, granularity: 'minute' });
        expect(res.status, `${f} ${to}`).toBe(200);
        expect(res.body.meta).toMatchObject({ from: localLabel(T, 'UTC'), to: localLabel(T + 5 * MINUTE_MS, 'UTC') });
        expect(rows(res).map((r) => r.users)).toEqual([1, 0, 0, 0, 1]);
      }
      const kolkata = await stats({ site: 'shop', from: iso(T + 45_000), to: toKolkata, timezone: 'Asia/Kolkata' });
      expect(kolkata.body.meta).toMatchObject({ from: `${isoDate(T)}T15:30:00+05:30`, to: `${isoDate(T)}T15:35:00+05:30` });
      expect(kolkata.body.data).toEqual([expect.objectContaining({ users: 2, events: 2 })]);
    });

    it('refuse a range that flooring leaves empty, and period beside them', async () => {
      const same = await stats({ from: new Date(T + 10_000).toISOString(), to: new Date(T + 50_000).toISOString() });
      expect(same.status).toBe(400);
      expect(same.body.error.details).toEqual([{ parameter: 'to', message: expect.stringMatching(/same minute as from/) }]);
      const both = await stats({ from: isoDate(T), period: '7d' });
      expect(both.body.error.details).toEqual([
        { parameter: 'period', message: expect.stringMatching(/either period, or from and to/) },
      ]);
      const neither = await stats({ granularity: 'day' });
      expect(neither.body.error.details).toEqual([
        { parameter: 'from', message: expect.stringMatching(/is required \(or give period/) },
      ]);
      for (const period of ['week', '0d', '7', '7D', '10000d', '1y', ' 7d']) {
        const res = await stats({ period });
        expect(res.status, period).toBe(400);
        expect(res.body.error.details).toEqual([{ parameter: 'period', message: expect.stringMatching(/must be 5m, 30m, 24h/) }]);
      }
    });
  });

  describe('period', () => {
    it('5m: the five minutes up to and including the current one, an event sent a moment ago among them', async () => {
      await send('shop', [{ user: 'now' }, { time: Date.now() - 6 * MINUTE_MS, user: 'earlier' }]);
      const { value: res, nowMs } = await withinOneMinute(() => stats({ site: 'shop', period: '5m', granularity: 'minute' }));
      const end = floorMinute(nowMs) + MINUTE_MS;
      expect(res.body.meta).toMatchObject({ from: localLabel(end - 5 * MINUTE_MS, 'UTC'), to: localLabel(end, 'UTC') });
      expect(rows(res).map((r) => r.bucket)).toEqual([5, 4, 3, 2, 1].map((n) => localLabel(end - n * MINUTE_MS, 'UTC')));
      expect(rows(res).reduce((sum, r) => sum + r.events, 0)).toBe(1);
    });

    it('30m, 24h, 7d and 30d: N units back from the next whole minute, in any zone', async () => {
      for (const [period, ms] of [
        ['30m', 30 * MINUTE_MS],
        ['24h', 24 * 60 * MINUTE_MS],
        ['7d', 7 * 1440 * MINUTE_MS],
        ['30d', 30 * 1440 * MINUTE_MS],
      ] as const) {
        for (const zone of ['UTC', 'America/New_York', 'Asia/Kathmandu']) {
          const { value: res, nowMs } = await withinOneMinute(() => stats({ period, timezone: zone }));
          const end = floorMinute(nowMs) + MINUTE_MS;
          expect(res.status).toBe(200);
          expect(res.body.meta, `${period} ${zone}`).toMatchObject({
            from: localLabel(end - ms, zone),
            to: localLabel(end, zone),
          });
        }
      }
    });

    it("today, yesterday and month: from a local midnight of the request's zone, counted exactly", async () => {
      const zone = 'Asia/Kathmandu'; // +05:45: its midnight falls inside a UTC hour
      const nowMs = Date.now();
      const today = localDate(nowMs, zone);
      const yesterday = addDays(today, -1);
      const [todayStart, yesterdayStart] = [localMidnight(today, zone), localMidnight(yesterday, zone)];
      await send('shop', [
        { time: yesterdayStart - MINUTE_MS, user: 'a' }, // the day before yesterday
        { time: yesterdayStart, user: 'b' },
        { time: todayStart - MINUTE_MS, user: 'c' },
        { time: todayStart, user: 'd' },
        { user: 'e' }, // now
      ]);
      const y = await stats({ site: 'shop', period: 'yesterday', timezone: zone });
      expect(y.body.meta).toMatchObject({ from: localLabel(yesterdayStart, zone), to: localLabel(todayStart, zone) });
      expect(y.body.data).toEqual([expect.objectContaining({ users: 2, events: 2 })]);
      const { value: d, nowMs: at } = await withinOneMinute(() => stats({ site: 'shop', period: 'today', timezone: zone }));
      if (localDate(at, zone) === today) {
        expect(d.body.meta).toMatchObject({
          from: localLabel(todayStart, zone),
          to: localLabel(floorMinute(at) + MINUTE_MS, zone),
        });
        expect(d.body.data).toEqual([expect.objectContaining({ users: 2, events: 2 })]);
      }
      const { value: m, nowMs: mAt } = await withinOneMinute(() => stats({ site: 'shop', period: 'month', timezone: zone }));
      const firstOfMonth = `${localDate(mAt, zone).slice(0, 8)}01`;
      expect(m.body.meta).toMatchObject({ from: localLabel(localMidnight(firstOfMonth, zone), zone) });
    });

    it('12mo: this month so far and the eleven before it, a bucket each', async () => {
      const { value: res, nowMs } = await withinOneMinute(() => stats({ period: '12mo', granularity: 'month' }));
      expect(res.status).toBe(200);
      const month = new Date(nowMs);
      const starts = Array.from({ length: 12 }, (_, i) => Date.UTC(month.getUTCFullYear(), month.getUTCMonth() - 11 + i, 1));
      expect(rows(res).map((r) => r.bucket)).toEqual(starts.map((ms) => localLabel(ms, 'UTC')));
    });

    it("is read in the site's time zone when the request names none", async () => {
      await send('shop', [{ user: 'a' }]);
      await t.http.patch('/v1/sites/shop').send({ timezone: 'Asia/Kolkata' });
      const { value: res, nowMs } = await withinOneMinute(() => stats({ site: 'shop', period: 'today' }));
      expect(res.body.meta).toMatchObject({
        timezone: 'Asia/Kolkata',
        from: localLabel(localMidnight(localDate(nowMs, 'Asia/Kolkata'), 'Asia/Kolkata'), 'Asia/Kolkata'),
      });
    });
  });
});
