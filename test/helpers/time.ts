import { DAY_MS, floorDay, floorHour, HOUR_MS } from '../../src/time.js';

/** Fixed points relative to the wall clock, so tests stay inside the retention window. */
export const today = (): number => floorDay(Date.now());
export const daysAgo = (n: number): number => today() - n * DAY_MS;
export const thisHour = (): number => floorHour(Date.now());
export const hoursAgo = (n: number): number => thisHour() - n * HOUR_MS;
export const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const compactDate = (ms: number): string => isoDate(ms).replaceAll('-', '');
export const seconds = (ms: number): number => Math.floor(ms / 1000);

/** Polls `probe` until it returns `expected` or `withinMs` passes; returns the last value. */
export async function eventually<T>(probe: () => Promise<T>, expected: T, withinMs: number): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  let value = await probe();
  while (value !== expected && Date.now() - started < withinMs) {
    await new Promise((r) => setTimeout(r, 50));
    value = await probe();
  }
  return { value, ms: Date.now() - started };
}
