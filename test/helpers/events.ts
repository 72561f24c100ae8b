import type { EventRow } from '../../src/ingest/writer.js';
import { DAY_MS } from '../../src/time.js';

/** One `collect` event of `userId` at `timeMs` on `site`, as the writer stores it. */
export const collectRow = (timeMs: number, userId: string, site = 'default'): EventRow => ({
  site,
  timeMs,
  kind: 'collect',
  userId,
  page: '',
  weight: 1,
});

/** A small deterministic PRNG (mulberry32), so generated data is the same every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` mixed events (every kind, pages with weights) spread over the last `days` days. */
export function mixedEvents(count: number, days: number, seed = 42): EventRow[] {
  const rand = prng(seed);
  const now = Date.now();
  const kinds = ['collect', 'click', 'impression', 'pageview'] as const;
  return Array.from({ length: count }, () => {
    const kind = kinds[Math.floor(rand() * kinds.length)]!;
    const timeMs = now - 60_000 - Math.floor(rand() * days * DAY_MS);
    return kind === 'pageview'
      ? {
          site: 'default',
          timeMs,
          kind,
          userId: null,
          page: `/page/${Math.floor(rand() * 5)}`,
          weight: 1 + Math.floor(rand() * 9),
        }
      : { site: 'default', timeMs, kind, userId: `user-${Math.floor(rand() * count * 0.6)}`, page: '', weight: 1 };
  });
}
