import { describe, expect, it } from 'vitest';
import { rangeOf, timeZones } from '../../web/time.js';
import { useTestApp } from '../helpers/app.js';

const HOUR_MS = 3_600_000;
const at = (iso: string): number => Date.parse(iso);

describe('the dashboard’s ranges', () => {
  it('asks for the last 24 whole local hours, the current one included, in a +05:45 zone', () => {
    const r = rangeOf({ key: '24h', timeZone: 'Asia/Kathmandu' }, at('2026-11-23T10:20:30Z'));
    // 16:05:30 in Kathmandu: its hour started at 10:15 UTC.
    expect(r).toMatchObject({ from: '2026-11-22T11:15:00Z', to: '2026-11-23T11:15:00Z', granularity: 'hour', live: true });
  });

  it('asks for whole local days, today included, by date', () => {
    // 23:30 on the 22nd in New York is the 23rd in UTC.
    const r = rangeOf({ key: '7d', timeZone: 'America/New_York' }, at('2026-11-23T04:30:00Z'));
    expect(r).toMatchObject({ from: '2026-11-16', to: '2026-11-23', granularity: 'day', timeZone: 'America/New_York' });
    expect(rangeOf({ key: '30d', timeZone: 'UTC' }, at('2026-11-23T04:30:00Z'))).toMatchObject({
      from: '2026-10-25',
      to: '2026-11-24',
    });
  });

  it('reads 12 months in UTC days, saying why, since only UTC day sketches outlive the raw retention', () => {
    const r = rangeOf({ key: '12m', timeZone: 'Europe/Berlin' }, at('2026-11-23T23:30:00Z'));
    expect(r).toMatchObject({ from: '2025-11-24', to: '2026-11-24', granularity: 'day', timeZone: 'UTC' });
    expect(r.note).toMatch(/UTC days/);
  });

  it('takes custom days in either order, by hour up to two days', () => {
    const now = at('2026-11-23T12:00:00Z');
    expect(
      rangeOf({ key: 'custom', timeZone: 'Asia/Tokyo', customFrom: '2026-11-21', customTo: '2026-11-20' }, now),
    ).toMatchObject({
      from: '2026-11-20',
      to: '2026-11-22',
      granularity: 'hour',
      timeZone: 'Asia/Tokyo',
      live: false,
    });
    expect(
      rangeOf({ key: 'custom', timeZone: 'Asia/Tokyo', customFrom: '2026-08-01', customTo: '2026-11-23' }, now),
    ).toMatchObject({
      granularity: 'day',
      timeZone: 'UTC',
      live: true,
    });
  });

  it('lists zones by their current names', () => {
    const zones = timeZones();
    expect(zones).toContain('UTC');
    expect(zones).toContain('Asia/Kolkata');
    expect(zones).not.toContain('Asia/Calcutta');
  });

  describe('as /v1/stats answers them', () => {
    const t = useTestApp('postgres', { resetEach: false });
    const ask = (r: ReturnType<typeof rangeOf>) =>
      t.http.get('/v1/stats').query({ from: r.from, to: r.to, granularity: r.granularity, timezone: r.timeZone });

    it('gives 24 hour buckets starting on the range in a +05:45 zone, and 365 days for 12 months', async () => {
      const day = await ask(rangeOf({ key: '24h', timeZone: 'Asia/Kathmandu' }, Date.now() - 5 * 60_000));
      expect(day.status).toBe(200);
      expect(day.body.data).toHaveLength(24);
      expect(Date.parse(day.body.data[1].bucket) - Date.parse(day.body.data[0].bucket)).toBe(HOUR_MS);
      const year = await ask(rangeOf({ key: '12m', timeZone: 'Europe/Berlin' }, Date.now()));
      expect(year.status).toBe(200);
      expect(year.body.data).toHaveLength(365);
    });
  });
});
