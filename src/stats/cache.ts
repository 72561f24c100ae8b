import { floorHour, HOUR_MS } from '../time.js';

interface Entry {
  value: Promise<unknown>;
  fromMs: number;
  toMs: number;
  expiresAt: number;
}

/**
 * Answers of read queries, kept until the data under them can have changed:
 *  - timescaledb mode: reads see the aggregates as of the last refresh, so everything
 *    is dropped after each refresh pass (invalidateAll);
 *  - postgres mode: each committed batch drops the answers whose time range holds one
 *    of its hours (invalidateHours), so a back-dated write drops old answers too.
 * `ttlMs` bounds what this process cannot see: writes by other instances or by psql.
 * Concurrent misses of one key share a single query.
 */
export class AnswerCache {
  private entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 5000,
  ) {}

  get<T>(key: string, fromMs: number, toMs: number, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > now) return hit.value as Promise<T>;
    const value = load();
    const entry: Entry = { value, fromMs, toMs, expiresAt: now + this.ttlMs };
    this.entries.delete(key);
    this.entries.set(key, entry);
    // A failed query is not an answer: the next read tries again.
    value.catch(() => this.entries.get(key) === entry && this.entries.delete(key));
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }

  invalidateAll(): void {
    this.entries.clear();
  }

  /** Drops the answers over any hour holding one of `timesMs`. */
  invalidateHours(timesMs: readonly number[]): void {
    if (this.entries.size === 0) return;
    const hours = new Set(timesMs.map(floorHour));
    for (const [key, e] of this.entries) {
      for (const h of hours) {
        if (h < e.toMs && h + HOUR_MS > e.fromMs) {
          this.entries.delete(key);
          break;
        }
      }
    }
  }
}
