import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../../src/stats/cache.js';
import { HOUR_MS } from '../../src/time.js';

describe('answer cache', () => {
  const hour = Date.UTC(2026, 10, 23, 10);
  const counter = () => {
    let calls = 0;
    return { load: async () => ++calls, calls: () => calls };
  };

  it('answers a repeated read without a query, and shares one query among concurrent misses', async () => {
    const cache = new AnswerCache(60_000);
    const c = counter();
    const [a, b] = await Promise.all([
      cache.get('k', hour, hour + HOUR_MS, c.load),
      cache.get('k', hour, hour + HOUR_MS, c.load),
    ]);
    expect([a, b, await cache.get('k', hour, hour + HOUR_MS, c.load)]).toEqual([1, 1, 1]);
    expect(c.calls()).toBe(1);
  });

  it('drops only the answers whose range holds a written hour', async () => {
    const cache = new AnswerCache(60_000);
    const day = counter();
    const other = counter();
    await cache.get('day', hour - 10 * HOUR_MS, hour + 14 * HOUR_MS, day.load);
    await cache.get('other', hour - 48 * HOUR_MS, hour - 24 * HOUR_MS, other.load);
    cache.invalidateHours([hour + 30 * 60_000]);
    expect(await cache.get('day', hour - 10 * HOUR_MS, hour + 14 * HOUR_MS, day.load)).toBe(2);
    expect(await cache.get('other', hour - 48 * HOUR_MS, hour - 24 * HOUR_MS, other.load)).toBe(1);
    cache.invalidateHours([hour - 24 * HOUR_MS]); // the hour right after the range: untouched
    expect(await cache.get('other', hour - 48 * HOUR_MS, hour - 24 * HOUR_MS, other.load)).toBe(1);
    cache.invalidateAll();
    expect(await cache.get('other', hour - 48 * HOUR_MS, hour - 24 * HOUR_MS, other.load)).toBe(2);
  });

  it('forgets answers after the ttl, failed queries at once, and the oldest beyond its size', async () => {
    const expiring = new AnswerCache(0);
    const c = counter();
    await expiring.get('k', 0, 1, c.load);
    await new Promise((r) => setTimeout(r, 2));
    expect(await expiring.get('k', 0, 1, c.load)).toBe(2);

    const cache = new AnswerCache(60_000, 2);
    await expect(cache.get('bad', 0, 1, () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('bad', 0, 1, async () => 'ok')).toBe('ok');
    const first = counter();
    await cache.get('first', 0, 1, first.load);
    await cache.get('second', 0, 1, async () => 0);
    await cache.get('third', 0, 1, async () => 0);
    expect(await cache.get('first', 0, 1, first.load)).toBe(2);
  });
});
