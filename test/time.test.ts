import { describe, expect, it } from 'vitest';
import { DAY_MS, eventTimeProblem, parseIsoDate } from '../src/time.js';

describe('time rules', () => {
  const now = Date.UTC(2026, 10, 23, 12, 0, 0);

  it('parses ISO 8601 calendar dates in both forms, and only real dates', () => {
    expect(parseIsoDate('2026-11-23')).toBe(Date.UTC(2026, 10, 23));
    expect(parseIsoDate('20261123')).toBe(Date.UTC(2026, 10, 23));
    expect(parseIsoDate('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    for (const bad of ['2026-02-29', '2026-13-01', '2026-11-3', '2026-1123', '202611-23', '26-11-23', '', 'today']) {
      expect(parseIsoDate(bad), bad).toBeNull();
    }
  });

  it('accepts event times from 60 days back to 5 minutes ahead', () => {
    expect(eventTimeProblem(now - 60 * DAY_MS + 1, 'milliseconds', now)).toBeNull();
    expect(eventTimeProblem(now + 5 * 60_000, 'milliseconds', now)).toBeNull();
    expect(eventTimeProblem(now - 60 * DAY_MS - 1, 'milliseconds', now)).toMatch(/older than the 60-day retention window/);
    expect(eventTimeProblem(now + 5 * 60_000 + 1, 'milliseconds', now)).toMatch(/more than 5 minutes in the future/);
  });

  it('says when seconds and milliseconds look swapped', () => {
    expect(eventTimeProblem(now / 1000, 'milliseconds', now)).toMatch(
      /in milliseconds.*looks like seconds \(use 1795435200000\)/,
    );
    expect(eventTimeProblem(now, 'seconds', now)).toMatch(/in seconds.*looks like milliseconds \(use 1795435200\)/);
    expect(eventTimeProblem(now / 1000, 'seconds', now)).toBeNull();
  });
});
