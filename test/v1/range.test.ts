import { describe, expect, it } from 'vitest';
import { periodRange, statsRange } from '../../src/v1/range.js';

const at = (iso: string): number => Date.parse(iso);
const instant = (iso: string) => ({ instantMs: at(iso) });

describe('periodRange', () => {
  const now = at('2026-11-23T20:17:42.500Z');

  it('ends rolling periods at the next whole minute, exactly N units long, whatever the zone', () => {
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/New_York', '+05:45']) {
      expect(periodRange('5m', zone, now)).toEqual({
        from: instant('2026-11-23T20:13:00Z'),
        to: instant('2026-11-23T20:18:00Z'),
      });
      expect(periodRange('30m', zone, now).from).toEqual(instant('2026-11-23T19:48:00Z'));
      expect(periodRange('24h', zone, now)).toEqual({
        from: instant('2026-11-22T20:18:00Z'),
        to: instant('2026-11-23T20:18:00Z'),
      });
      expect(periodRange('7d', zone, now).from).toEqual(instant('2026-11-16T20:18:00Z'));
      expect(periodRange('30d', zone, now).from).toEqual(instant('2026-10-24T20:18:00Z'));
    }
    // On a whole minute, that minute is the last one in.
    expect(periodRange('5m', 'UTC', at('2026-11-23T20:17:00Z')).to).toEqual(instant('2026-11-23T20:18:00Z'));
  });

  it("starts calendar periods at a local midnight of the request's zone", () => {
    // 20:17 UTC is already the 24th in Kolkata (+05:30) and Kathmandu (+05:45), still the 23rd in New York.
    expect(periodRange('today', 'UTC', now)).toEqual({ from: { date: '2026-11-23' }, to: instant('2026-11-23T20:18:00Z') });
    expect(periodRange('today', 'Asia/Kolkata', now).from).toEqual({ date: '2026-11-24' });
    expect(periodRange('today', '+05:45', now).from).toEqual({ date: '2026-11-24' });
    expect(periodRange('today', '-05:00', now).from).toEqual({ date: '2026-11-23' });
    expect(periodRange('today', 'America/New_York', now).from).toEqual({ date: '2026-11-23' });
    expect(periodRange('yesterday', 'Asia/Kolkata', now)).toEqual({ from: { date: '2026-11-23' }, to: { date: '2026-11-24' } });
    expect(periodRange('yesterday', 'UTC', at('2026-03-01T10:00:00Z'))).toEqual({
      from: { date: '2026-02-28' },
      to: { date: '2026-03-01' },
    });
    expect(periodRange('yesterday', 'UTC', at('2028-03-01T10:00:00Z')).from).toEqual({ date: '2028-02-29' });
    expect(periodRange('month', 'UTC', now)).toEqual({ from: { date: '2026-11-01' }, to: instant('2026-11-23T20:18:00Z') });
    // 2026-11-30T20:00Z is December 1st in Kolkata.
    expect(periodRange('month', 'Asia/Kolkata', at('2026-11-30T20:00:00Z')).from).toEqual({ date: '2026-12-01' });
    expect(periodRange('12mo', 'UTC', now).from).toEqual({ date: '2025-12-01' });
    expect(periodRange('12mo', 'UTC', at('2027-01-15T00:00:00Z')).from).toEqual({ date: '2026-02-01' });
    expect(periodRange('1mo', 'UTC', now).from).toEqual({ date: '2026-11-01' });
    expect(periodRange('3mo', 'UTC', at('2026-02-28T12:00:00Z')).from).toEqual({ date: '2025-12-01' });
  });
});

describe('statsRange', () => {
  const now = at('2026-11-23T20:17:42Z');

  it('floors from and to to their minute, leaves dates alone, and resolves period when given instead', () => {
    expect(
      statsRange({ from: instant('2026-11-23T10:00:59.999Z'), to: instant('2026-11-23T10:05:00.001Z') }, 'UTC', now),
    ).toEqual({
      from: instant('2026-11-23T10:00:00Z'),
      to: instant('2026-11-23T10:05:00Z'),
    });
    expect(statsRange({ from: { date: '2026-11-20' }, to: instant('2026-11-23T10:05:30Z') }, 'UTC', now)).toEqual({
      from: { date: '2026-11-20' },
      to: instant('2026-11-23T10:05:00Z'),
    });
    expect(statsRange({ period: '5m' }, 'UTC', now)).toEqual(periodRange('5m', 'UTC', now));
  });

  it('refuses period with from or to, neither, half of a range, and a range floored to nothing', () => {
    const problem = (q: Parameters<typeof statsRange>[0]) => {
      try {
        statsRange(q, 'UTC', now);
      } catch (err) {
        return { status: (err as { status: number }).status, details: (err as { details: unknown }).details };
      }
      return null;
    };
    expect(problem({ period: '7d', from: { date: '2026-11-20' } })).toEqual({
      status: 400,
      details: [{ parameter: 'period', message: 'cannot be given with from: give either period, or from and to' }],
    });
    expect(problem({ period: '7d', to: { date: '2026-11-20' } })?.details).toEqual([
      { parameter: 'period', message: 'cannot be given with to: give either period, or from and to' },
    ]);
    expect(problem({})?.details).toEqual([{ parameter: 'from', message: 'is required (or give period instead of from and to)' }]);
    expect(problem({ from: { date: '2026-11-20' } })?.details).toEqual([
      { parameter: 'to', message: 'is required (or give period instead of from and to)' },
    ]);
    expect(problem({ from: instant('2026-11-23T10:00:10Z'), to: instant('2026-11-23T10:00:50Z') })?.details).toEqual([
      {
        parameter: 'to',
        message:
          'is in the same minute as from: both are floored to the minute (2026-11-23T10:00:00.000Z), which leaves nothing; ask for at least up to the next minute',
      },
    ]);
  });
});
